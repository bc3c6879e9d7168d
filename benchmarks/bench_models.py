"""Throughput and peak memory of every bundled model: eager fp32 vs optimised paths.

    .venv/bin/python benchmarks/bench_models.py [--threads 1] [--seconds 5] [--compile] [--device cpu|cuda]

Each (model, path) runs in a fresh subprocess so the peak resident memory (``ru_maxrss``;
``torch.cuda.max_memory_allocated`` on CUDA) belongs to that configuration alone.
Paths:
- ``eager fp32``      : ``torch.no_grad``, batch 1 tile/window (what naive code does);
- ``inference b8``    : ``torch.inference_mode``, batch 8 (the engine's default path);
- ``+channels_last``  : 2-D models only, channels_last memory format, batch 8;
- ``+bf16 autocast``  : bf16 autocast on top (channels_last for 2-D), batch 8 (CPU: fast only with
  AMX/AVX512-BF16); max |diff| vs fp32 is printed since it changes the numerics;
- ``torch.compile``   : with ``--compile`` (compiles first; not timed).
Units: tiles/s for images (256x256 model tiles), samples/s for signals (windows x window).
A second table times ``reconstruct`` end to end on real files of the shared data.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
PATHS = ("eager fp32", "inference b8", "+channels_last", "+bf16 autocast", "torch.compile")
# "+channels_last" (2-D) / "inference b8" (1-D) is what engine.tasks.reconstruct runs; bf16 is opt-in (changes numerics)


def _input_shape(meta, batch):
    inp = meta["input"]
    if meta["modality"] in ("ecg", "eeg"):
        return (batch, int(inp["channels"]) if inp.get("channel_mode") == "multi_channel" else 1, int(inp["window"]))
    t = int(inp["tile"])
    return (batch, int(inp["channels"]), t, t)


def one(name: str, path: str, seconds: float, device: str) -> dict:
    import resource

    import torch

    from engine import weights

    loaded = weights.load(name)
    dev = torch.device(device)
    m = loaded.module.eval().to(dev)
    batch = 1 if path == "eager fp32" else 8
    shape = _input_shape(loaded.meta, batch)
    if path == "+channels_last" and len(shape) != 4:
        return {"skip": "1-D model"}
    x = torch.rand(shape, device=dev)
    ctx = torch.no_grad if path == "eager fp32" else torch.inference_mode
    fn = m
    with torch.inference_mode():
        ref = m(x).float()
    if path in ("+channels_last", "+bf16 autocast") and x.dim() == 4:
        m = m.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
        fn = m
    if path == "torch.compile":
        fn = torch.compile(m)
    amp = path == "+bf16 autocast"

    def step():
        with ctx(), torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
            y = fn(x)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        return y

    diff = float((step().float() - ref).abs().max() / ref.abs().max())
    step()  # warm-up (and compilation)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds or n < 3:
        step()
        n += 1
    dt = (time.perf_counter() - t0) / n
    per_item = shape[-1] if len(shape) == 3 else 1
    rate = batch * per_item / dt
    out = {"rate": rate, "unit": "samples/s" if len(shape) == 3 else "tiles/s", "batch": batch,
           "ms_per_batch": 1000 * dt, "rel_diff": diff, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if dev.type == "cuda":
        out["peak_cuda_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def end_to_end(data: Path, device: str) -> list[tuple]:
    from engine.io import read
    from engine.jobs import run_job
    from engine.tasks.reconstruct import reconstruct_task

    rows = []
    for label, path, opts in (("ct-dae", data / "ct/dcmqi_liver_ct3", {}),
                              ("histo-cae", data / "histo/crchisto/img1/img1.png", {}),
                              ("eeg-cae", data / "eeg/eegmmidb/S001R04.edf", {})):
        d = read(str(path), **opts)
        t0 = time.perf_counter()
        r = run_job(reconstruct_task(d, device=device))
        dt = time.perf_counter() - t0
        size = "x".join(map(str, d.shape))
        rows.append((label, path.name, size, dt, r.summary["anomaly"]["stats"]["p99"]))
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--device", default=None)
    ap.add_argument("--one", nargs=2, metavar=("MODEL", "PATH"), help=argparse.SUPPRESS)
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--no-e2e", action="store_true")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if args.one:
        print(json.dumps(one(args.one[0], args.one[1], args.seconds, device)))
        return 0
    from engine._shared.device import device_name
    from engine.weights import list_bundled

    names = [r["name"] for r in list_bundled() if r["name"] in ("ct-dae", "histo-cae", "eeg-cae", "ecg-dae")]
    paths = [p for p in PATHS if p != "torch.compile" or args.compile]
    print(f"device: {device_name(device)}, torch {torch.__version__}, {args.threads} thread(s)")
    print(f"{'model':<10} {'path':<16} {'batch':>5} {'throughput':>22} {'ms/batch':>9} {'peak RSS MB':>11} {'max|d|/max':>10}"
          + ("  peak CUDA MB" if device.startswith("cuda") else ""))
    for name in names:
        for path in paths:
            cmd = [sys.executable, __file__, "--one", name, path, "--threads", str(args.threads),
                   "--seconds", str(args.seconds), "--device", device]
            env = {**os.environ, "PYTHONWARNINGS": "ignore"}
            res = subprocess.run(cmd, capture_output=True, text=True, env=env)
            try:
                r = json.loads(res.stdout.strip().splitlines()[-1])
            except (IndexError, json.JSONDecodeError):
                err = (res.stderr.strip().splitlines() or ["?"])[-1][:60]
                print(f"{name:<10} {path:<16} failed: {err}")
                continue
            if "skip" in r:
                continue
            line = (f"{name:<10} {path:<16} {r['batch']:>5} {r['rate']:>12,.1f} {r['unit']:<9} "
                    f"{r['ms_per_batch']:>9.1f} {r['peak_rss_mb']:>11.0f} {r['rel_diff']:>10.1e}")
            if "peak_cuda_mb" in r:
                line += f"  {r['peak_cuda_mb']:>12.0f}"
            print(line, flush=True)
    if not args.no_e2e:
        print(f"\nreconstruct end to end (read + tiles/windows + anomaly), default batch, {device}:")
        print(f"{'model':<10} {'input':<22} {'shape':<16} {'seconds':>8} {'anomaly p99':>11}")
        for row in end_to_end(Path(args.data), device):
            print(f"{row[0]:<10} {row[1]:<22} {row[2]:<16} {row[3]:>8.2f} {row[4]:>11.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
