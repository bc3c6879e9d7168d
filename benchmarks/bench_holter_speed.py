"""Speed of denoising a synthetic two-lead Holter (360 Hz) vs a read + band-pass + write process.

    .venv/bin/python benchmarks/bench_holter_speed.py [--hours 2] [--repeats 1] [--full]

The record is the synthetic Holter of ``bench_holter_memory.py`` (WFDB format 16). Every
case runs in a fresh child process, which reports its wall time, peak RSS (``ru_maxrss``)
and page faults (``resource.getrusage``, minor + major):

* ``reference``: ``engine.io.read`` the record, 0.5-40 Hz zero-phase 4th-order
  ``scipy.signal.sosfiltfilt`` per lead, write it with ``engine.export.signals.write_wfdb``.
* ``denoise``: ``denoise_task`` + ``write_denoised`` (what ``python -m engine denoise`` runs)
  with the levers on/off: intra-op threads (the thread policy's default vs 2), each batch split over two
  threads (the default on 2 cores) or not, BatchNorm
  folding, the malloc policy (:mod:`engine._shared.memory`, which the CLI applies; off =
  ``LATENT_MALLOC=default``) and the precision (``auto``: bf16 autocast on a CPU with native
  bf16, the CLI's default for ECG; ``float32``). OMP_WAIT_POLICY=PASSIVE is set by ``import engine`` in every case.

Ratios are denoise / reference in the same run (medians over ``--repeats``). Targets (issue
21): 24-h denoise <= 1.5x the reference (goal <= 1.0x), peak RSS < 1.5 GB.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

TARGET_RATIO = 1.5
TARGET_RSS_MB = 1500.0


def child(kind: str, record: str, out: str, threads: int, fold_bn: bool, bf16: str = "auto") -> None:
    import numpy as np

    from engine._shared.memory import apply_malloc_policy
    from engine._shared.threads import apply_thread_policy
    from engine.io import read

    policy = apply_thread_policy(threads or None)
    apply_malloc_policy()  # as the CLI's main does (LATENT_MALLOC=default switches it off)
    t0 = time.perf_counter()
    data = read(record)
    if kind == "reference":
        from scipy.signal import butter, sosfiltfilt

        from engine.data import Signal
        from engine.export.signals import write_wfdb

        sos = butter(4, [0.5, 40.0], btype="bandpass", fs=data.sfreq, output="sos")
        y = np.stack([sosfiltfilt(sos, data.read(0, data.n_samples)[c]).astype(np.float32)
                      for c in range(len(data.channels))])
        write_wfdb(Signal.from_array(y, sfreq=data.sfreq, modality="ecg", channels=data.channels,
                                     units=data.units), out, "reference", fmt="16")
    else:
        from engine.jobs import run_job
        from engine.tasks.denoise import denoise_task, write_denoised

        res = run_job(denoise_task(data, device="cpu", fold_bn=fold_bn,
                                   bf16={"auto": None, "float32": False, "bf16": True}[bf16],
                                   workers=1 if kind == "denoise-1call" else None))
        write_denoised(res, data, out)
    wall = time.perf_counter() - t0
    ru = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"wall_s": wall, "rss_mb": ru.ru_maxrss / 1024, "faults": ru.ru_minflt + ru.ru_majflt,
                      "threads": policy.intra_op_threads,
                      "bf16": int(kind != "reference" and res.params["precision"].startswith("bf16"))}))


def _run_child(kind, record, out, threads, fold_bn, malloc=True, bf16="auto") -> dict:
    cmd = [sys.executable, __file__, "--child", kind, record, out, str(threads), str(int(fold_bn)), bf16]
    env = {k: v for k, v in os.environ.items() if k != "LATENT_MALLOC"}
    if not malloc:
        env["LATENT_MALLOC"] = "default"
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, check=False, env=env)
    if res.returncode:
        raise RuntimeError(f"{kind} child failed: {res.stderr.strip()[-500:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


CASES = (  # name, kind, threads (0 = the policy's default), fold_bn, malloc policy, precision
    ("reference read+bandpass+write", "reference", 0, False, True, "auto"),
    ("denoise (defaults: CLI's policies, BN folded, auto)", "denoise", 0, True, True, "auto"),
    ("denoise (defaults, float32)", "denoise", 0, True, True, "float32"),
    ("denoise (defaults, float32, malloc default)", "denoise", 0, True, False, "float32"),
    ("denoise (float32, BN not folded)", "denoise", 0, False, True, "float32"),
    ("denoise (2 threads, float32)", "denoise", 2, True, True, "float32"),
    ("denoise (defaults, batches not split over 2 threads)", "denoise-1call", 0, True, True, "auto"),
)


def measure(hours: float, repeats: int = 1, cases=CASES) -> list[dict]:
    """Run every case *repeats* times on a fresh synthetic record; medians per case."""
    from bench_holter_memory import write_record

    with tempfile.TemporaryDirectory() as tmp:
        hea = write_record(Path(tmp), hours)
        record = os.fspath(hea.with_suffix(""))
        rows = []
        for j, (name, kind, threads, fold, malloc, bf16) in enumerate(cases):
            runs = []
            for i in range(repeats):
                out = Path(tmp) / f"out-{j}-{i}"
                out.mkdir()
                runs.append(_run_child(kind, record, os.fspath(out), threads, fold, malloc, bf16))
            rows.append({"case": name, "kind": kind, "hours": hours,
                         **{k: statistics.median(r[k] for r in runs) for k in runs[0]}})
    ref = rows[0]["wall_s"]
    for r in rows:
        r["ratio"] = r["wall_s"] / ref
    return rows


def run_all_rows(quick: bool = True, repeats: int | None = None) -> list[dict]:
    """Rows for ``benchmarks/run_all.py``: 2-h record (quick, one repeat) or 24-h (three repeats)."""
    hours, repeats = (2.0 if quick else 24.0), (repeats or (1 if quick else 3))
    rows = measure(hours, repeats, CASES[:2])
    ref, den = rows[0], rows[1]
    return [
        {"figure": f"ECG denoise {hours:g} h 2-lead (s)", "value": round(den["wall_s"], 2), "unit": "s",
         "reference": round(ref["wall_s"], 2), "ratio": round(den["ratio"], 2), "target": f"<= {TARGET_RATIO}x"},
        {"figure": f"ECG denoise {hours:g} h peak RSS", "value": round(den["rss_mb"]), "unit": "MB",
         "reference": round(ref["rss_mb"]), "ratio": round(den["rss_mb"] / ref["rss_mb"], 2),
         "target": f"< {TARGET_RSS_MB:g} MB"},
    ]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, default=2.0)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--child", nargs=6, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        kind, record, out, threads, fold, bf16 = args.child
        child(kind, record, out, int(threads), bool(int(fold)), bf16)
        return 0
    rows = measure(args.hours, args.repeats)
    print(f"synthetic Holter {args.hours:g} h, 2 leads, 360 Hz; medians of {args.repeats} run(s); "
          f"usable cores per engine._shared.threads")
    print(f"{'case':52s} {'wall s':>8s} {'ratio':>6s} {'RSS MB':>7s} {'faults':>9s} {'thr':>4s} {'bf16':>4s}")
    for r in rows:
        print(f"{r['case']:52s} {r['wall_s']:8.2f} {r['ratio']:6.2f} {r['rss_mb']:7.0f} {r['faults']:9.0f} "
              f"{r['threads']:4.0f} {r['bf16']:4.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
