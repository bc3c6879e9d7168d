"""Peak memory of denoising a synthetic 24-hour two-lead Holter (360 Hz) with ecg-dae.

    .venv/bin/python benchmarks/bench_holter_memory.py [--hours 24] [--threads 2]

1. A synthetic ECG-like record (beats at 72/min with a slow baseline wander and
   a little 50 Hz hum; 2 leads; 31.1 M samples per lead at 24 h) is written as a
   WFDB record (format 16) into a temporary folder, chunk by chunk.
2. A fresh child process reads it lazily with ``engine.io.read`` and runs the real
   ``denoise`` task and writer (WFDB + .npy + summary), exactly as
   ``python -m engine denoise`` does. The child reports its tracemalloc peak
   (numpy/Python allocations) and the parent reads the child's peak resident set
   size (``ru_maxrss`` of RUSAGE_CHILDREN: everything, torch included).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
FS = 360.0


def synthetic_reader(n: int):
    """``sample_reader(start, stop)`` of a deterministic 2-lead ECG-like signal in mV."""
    rr = FS * 60 / 72

    def beat(phase: np.ndarray) -> np.ndarray:  # P, QRS, T as Gaussians (phase in samples)
        g = lambda mu, sd, a: a * np.exp(-0.5 * ((phase - mu) / sd) ** 2)  # noqa: E731
        return g(60, 9, 0.12) + g(100, 3, -0.1) + g(108, 4, 1.1) + g(116, 3, -0.25) + g(200, 18, 0.3)

    def reader(start: int, stop: int) -> np.ndarray:
        t = np.arange(start, min(stop, n), dtype=np.float64)
        ph = np.mod(t, rr)
        base = 0.15 * np.sin(2 * np.pi * 0.25 * t / FS) + 0.02 * np.sin(2 * np.pi * 50 * t / FS)
        b = beat(ph)
        return np.stack([b + base, -0.6 * b + 0.5 * base]).astype(np.float32)

    return reader


def write_record(folder: Path, hours: float) -> Path:
    from engine.data import Signal
    from engine.export.signals import write_wfdb

    n = int(hours * 3600 * FS)
    sig = Signal(modality="ecg", sfreq=FS, channels=("MLII", "V1"), units=("mV", "mV"), n_samples=n,
                 path="synthetic-holter", sample_reader=synthetic_reader(n))
    return write_wfdb(sig, folder, "holter", fmt="16")


def child(record: str, out: str, threads: int, model: str) -> None:
    import tracemalloc

    import torch

    torch.set_num_threads(threads)
    tracemalloc.start()
    from engine.io import read
    from engine.jobs import run_job
    from engine.tasks.denoise import denoise_task, write_denoised

    t0 = time.perf_counter()
    data = read(record)
    lazy = data.sample_reader is not None
    res = run_job(denoise_task(data, model=model, device="cpu", batch_size=16))
    t1 = time.perf_counter()
    paths = write_denoised(res, data, out)
    t2 = time.perf_counter()
    _, peak = tracemalloc.get_traced_memory()
    print(json.dumps({"tracemalloc_peak_mb": peak / 2**20, "lazy_read": lazy, "n_samples": data.n_samples,
                      "channels": len(data.channels), "denoise_s": t1 - t0, "write_s": t2 - t1,
                      "outputs": [p.name for p in paths]}))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--model", default="ecg-dae")
    ap.add_argument("--child", nargs=2, metavar=("RECORD", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(*args.child, args.threads, args.model)
        return 0
    with tempfile.TemporaryDirectory(prefix="holter-") as tmp:
        t0 = time.perf_counter()
        hea = write_record(Path(tmp), args.hours)
        t_write = time.perf_counter() - t0
        size = sum(p.stat().st_size for p in Path(tmp).glob("holter.*")) / 2**20
        r = subprocess.run([sys.executable, __file__, "--threads", str(args.threads), "--model", args.model, "--child",
                            str(hea.with_suffix("")), str(Path(tmp) / "out")],
                           capture_output=True, text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
        if r.returncode != 0:
            print(r.stderr, file=sys.stderr)
            return 1
        rep = json.loads(r.stdout.strip().splitlines()[-1])
        rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB -> MiB on Linux
        n = rep["n_samples"]
        print(f"synthetic Holter: {args.hours:g} h, {rep['channels']} leads, {n} samples/lead at {FS:g} Hz, "
              f"WFDB {size:.0f} MiB (written in {t_write:.0f} s); lazily read: {rep['lazy_read']}")
        print()
        print("| measure                         | value      |")
        print("|---------------------------------|------------|")
        print(f"| peak RSS of the denoise process | {rss:7.0f} MiB |")
        print(f"| tracemalloc peak (numpy/Python) | {rep['tracemalloc_peak_mb']:7.0f} MiB |")
        print(f"| denoise time (CPU, {args.threads} threads)    | {rep['denoise_s']:8.0f} s |")
        print(f"| write time (WFDB + .npy)        | {rep['write_s']:8.0f} s |")
        print(f"| throughput                      | {2 * n / rep['denoise_s'] / 1e3:6.0f} k samples/s |")
        print(f"\nlimit 1.5 GB: {'PASS' if rss < 1536 else 'FAIL'} (outputs: {', '.join(rep['outputs'])})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
