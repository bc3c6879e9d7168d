"""Batch throughput (inputs per second) with 1 and 2 local Dask workers, and the speed-up.

    .venv/bin/python benchmarks/bench_batch.py [--data ../shared/data] [--task detect-nuclei]
                                               [--n 12] [--workers 1 2] [--repeats 3]

detect-nuclei runs over the first N CRCHistoPhenotypes tiles (500 x 500 px); score-beats
over the first N MIT-BIH records. Throughput counts the inputs over the time from the
workers being ready to the last row written (cluster start-up is shown apart); the table
gives the median of the repeats. Each run writes into a fresh temporary folder.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _inputs(data: Path, task: str, n: int) -> list[Path]:
    if task == "detect-nuclei":
        files = sorted((data / "histo" / "crchisto").glob("img*/img*.png"), key=lambda p: int(p.stem[3:]))
    elif task in ("score-beats", "denoise"):
        files = sorted((data / "ecg" / "mitdb").glob("*.hea"))
    else:
        raise SystemExit(f"no benchmark inputs for {task}")
    if len(files) < n:
        raise SystemExit(f"only {len(files)} inputs found under {data}")
    return files[:n]


def run_once(task: str, inputs: list[Path], workers: int) -> tuple[float, float, int]:
    """(start-up seconds, processing seconds, ok rows) of one batch on a fresh local cluster."""
    from engine.batch import batch_task
    from engine.jobs import run_job

    t0 = time.perf_counter()
    ready = {}

    def on_progress(p):
        if "cluster" in p.info and "t" not in ready:
            ready["t"] = time.perf_counter()

    with tempfile.TemporaryDirectory() as out:
        result = run_job(batch_task(inputs, task=task, out_dir=out, options={"device": "cpu"},
                                    workers=workers, gpus=0), on_progress)
    t1 = time.perf_counter()
    return ready["t"] - t0, t1 - ready["t"], result.count("ok")


def main(argv=None) -> int:
    from engine.batch.cluster import cpu_cores

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--task", default="detect-nuclei")
    ap.add_argument("--n", type=int, default=12, help="inputs per batch")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    inputs = _inputs(args.data, args.task, args.n)
    cores = cpu_cores()
    print(f"task {args.task}, {len(inputs)} inputs, {cores} CPU cores, device cpu, "
          f"median of {args.repeats} runs")
    print(f"{'workers':>7} {'torch thr':>9} {'start-up s':>10} {'process s':>9} {'inputs/s':>8} {'speed-up':>8}")
    base = None
    for w in args.workers:
        runs = [run_once(args.task, inputs, w) for _ in range(args.repeats)]
        if any(ok != len(inputs) for _, _, ok in runs):
            raise SystemExit(f"a batch with {w} worker(s) had failed inputs")
        start = statistics.median(r[0] for r in runs)
        proc = statistics.median(r[1] for r in runs)
        rate = len(inputs) / proc
        base = base or rate
        print(f"{w:>7} {max(1, cores // w):>9} {start:>10.2f} {proc:>9.2f} {rate:>8.2f} {rate / base:>7.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
