"""CT speed: the 77-slice LIDC-IDRI-0001 series through ``python -m engine reconstruct`` vs a plain
pydicom read of the same series (read every file + its pixel array), with a per-stage breakdown.

Run: ``python benchmarks/bench_ct_speed.py [--full] [--compare OTHER_CHECKOUT]``. The ratios are
measured in the same run (the machine is shared and noisy); medians of the repeats are quoted.
Target: <= 10x (goal <= 5x). ``--compare`` runs the CLI of this checkout and of another one (e.g. the
main branch before a change) alternately, with pydicom reads between runs, and prints both ratios.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # this checkout's engine, not another one installed in the venv
    sys.path.insert(0, str(REPO))
DATA = Path(os.environ.get("LATENT_SHARED_DATA", REPO.parent / "shared" / "data"))
SERIES = DATA / "ct" / "lidc_idri" / "LIDC-IDRI-0001"


def pydicom_read_s(series: Path = SERIES) -> float:
    """Seconds to read every DICOM file of *series* with pydicom and decode its pixels."""
    import pydicom

    t0 = time.perf_counter()
    for f in sorted(p for p in series.rglob("*.dcm")):
        pydicom.dcmread(str(f)).pixel_array
    return time.perf_counter() - t0


def cli_reconstruct_s(series: Path = SERIES, *, repo: Path = REPO) -> float:
    """Wall seconds of ``python -m engine reconstruct`` on *series* (process start included),
    run in checkout *repo* (its ``engine`` package wins over an installed one)."""
    with tempfile.TemporaryDirectory(prefix="bench-ct-") as out:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "engine", "reconstruct", str(series), "--out", out,
                        "--device", "cpu"], check=True, cwd=repo, capture_output=True)
        return time.perf_counter() - t0


def compare_rows(other: Path, reps: int = 3) -> list[dict]:
    """CLI seconds of this checkout and of *other*, alternating (ABBA...), pydicom reads in between."""
    runs: dict[Path, list[float]] = {REPO: [], Path(other): []}
    reads, floors = [pydicom_read_s()], []
    for i in range(reps):
        for repo in (REPO, Path(other)) if i % 2 == 0 else (Path(other), REPO):
            reads += [pydicom_read_s(), pydicom_read_s()]
            runs[repo].append(cli_reconstruct_s(repo=repo))
        floors.append(import_floor_s())
    base = statistics.median(reads)
    rows = [{"figure": "CT 77 slices: pydicom read", "value": base, "unit": "s", "reference": "", "ratio": 1.0,
             "target": ""}]
    for repo, v in runs.items():
        m = statistics.median(v)
        rows.append({"figure": f"CLI reconstruct, {repo.name}", "value": m, "unit": "s",
                     "reference": "pydicom read", "ratio": m / base, "target": "<= 10x (goal <= 5x)"})
    f = statistics.median(floors)
    rows.append({"figure": "python start + import torch, engine.cli", "value": f, "unit": "s",
                 "reference": "pydicom read", "ratio": f / base, "target": ""})
    return rows


def import_floor_s() -> float:
    """Wall seconds of ``python -c "import torch, engine.cli"``: what any CLI run pays before reading."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import torch, engine.cli"], check=True, cwd=REPO, capture_output=True)
    return time.perf_counter() - t0


def stage_breakdown(series: Path = SERIES, *, optimize: bool = True, serial: bool = False) -> dict[str, float]:
    """In-process seconds per stage of the CT pipeline (read, mask, error post-processing, resize, model).

    *serial*: no post-processing threads beside the network (``CT_POST_WORKERS = 0``), so the stage
    times add up to the pipeline's; with the threads (the default run) they overlap the network's.
    """
    import engine.inference.ct as ct
    from engine import weights
    from engine.inference.pipelines import image_pipeline
    from engine.io import read
    from engine.jobs import run_job

    spent = {"mask": 0.0, "error post-processing": 0.0, "resize back": 0.0, "resample in": 0.0}
    names = {"ct_mask": "mask", "ct_error": "error post-processing", "_resize": "resize back",
             "resample_slice": "resample in"}
    saved = {n: getattr(ct, n) for n in names}

    def timed(fn, key):
        def wrapper(*a, **kw):
            t = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                spent[key] += time.perf_counter() - t
        return wrapper

    t0 = time.perf_counter()
    img = read(str(series))
    t_read = time.perf_counter() - t0
    loaded = weights.load("ct-dae")
    run_job(image_pipeline(loaded, img, device="cpu", optimize=optimize, planes=[0]))  # warm-up (oneDNN kernels)
    workers = ct.CT_POST_WORKERS
    try:
        if serial:
            ct.CT_POST_WORKERS = 0
        for n, key in names.items():
            setattr(ct, n, timed(saved[n], key))
        t1 = time.perf_counter()
        run_job(image_pipeline(loaded, img, device="cpu", optimize=optimize))
        total = time.perf_counter() - t1
    finally:
        ct.CT_POST_WORKERS = workers
        for n, fn in saved.items():
            setattr(ct, n, fn)
    return {"engine read": t_read, **spent, "model + rest": total - sum(spent.values()), "pipeline": total}


def run_all_rows(quick: bool = True, repeats: int | None = None) -> list[dict]:
    """Rows for ``benchmarks/run_all.py``: keys figure, value, unit, reference, ratio, target."""
    from engine._shared.threads import apply_thread_policy

    apply_thread_policy(None)
    reps = repeats or (1 if quick else 3)
    base = statistics.median(pydicom_read_s() for _ in range(reps + 1))
    cli = statistics.median(cli_reconstruct_s() for _ in range(reps))
    floor = statistics.median(import_floor_s() for _ in range(reps))
    fast = stage_breakdown(optimize=True)
    plain = stage_breakdown(optimize=False)
    serial = stage_breakdown(optimize=True, serial=True)
    rows = [
        {"figure": "CT 77 slices: pydicom read", "value": base, "unit": "s", "reference": "", "ratio": 1.0,
         "target": ""},
        {"figure": "CT 77 slices: engine reconstruct (CLI)", "value": cli, "unit": "s",
         "reference": "pydicom read", "ratio": cli / base, "target": "<= 10x (goal <= 5x)"},
        {"figure": "CT: python start + import torch, engine.cli", "value": floor, "unit": "s",
         "reference": "pydicom read", "ratio": floor / base, "target": ""},
        {"figure": "CT 77 slices: read + pipeline in-process", "value": fast["engine read"] + fast["pipeline"],
         "unit": "s", "reference": "pydicom read", "ratio": (fast["engine read"] + fast["pipeline"]) / base,
         "target": ""},
        {"figure": "CT pipeline, BN folded + channels_last", "value": fast["pipeline"], "unit": "s",
         "reference": "unfolded network", "ratio": fast["pipeline"] / plain["pipeline"], "target": "< 1"},
    ]
    rows.append({"figure": "CT pipeline without post-processing threads", "value": serial["pipeline"], "unit": "s",
                 "reference": "pipeline with them", "ratio": serial["pipeline"] / fast["pipeline"], "target": ""})
    for k, v in serial.items():  # stages of the serial run: they add up to its pipeline time
        if k != "pipeline":
            rows.append({"figure": f"CT stage (serial run): {k}", "value": v, "unit": "s",
                         "reference": "serial pipeline", "ratio": v / serial["pipeline"], "target": ""})
    return rows


def print_table(rows: list[dict]) -> None:
    print(f"{'figure':48s} {'value':>9s} {'unit':5s} {'ratio':>7s}  reference / target")
    for r in rows:
        print(f"{r['figure']:48s} {r['value']:9.3f} {r['unit']:5s} {r['ratio']:7.2f}  "
              f"{r['reference']} {r['target']}".rstrip())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="three repeats instead of one")
    ap.add_argument("--compare", type=Path, default=None, metavar="CHECKOUT",
                    help="also time the CLI of another checkout, interleaved with this one's")
    args = ap.parse_args(argv)
    if args.compare is not None:
        print_table(compare_rows(args.compare, reps=3))
        return 0
    print_table(run_all_rows(quick=not args.full))
    return 0


if __name__ == "__main__":
    sys.exit(main())
