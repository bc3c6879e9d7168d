"""Speed of nucleus detection on a 4000 x 4000 H&E region at native resolution vs a scikit-image LoG.

    .venv/bin/python benchmarks/bench_nuclei_speed.py [--side 4000] [--repeats 3] [--data ../shared/data]

The region is real H&E: a mosaic of the CRCHistoPhenotypes images (500 x 500 px each, 20x,
about 0.5 um/px), placed in file-number order (8 x 8 = 64 images for 4000 px; cropped when
*side* is not a multiple of 500) and written once as an uncompressed TIFF. Every case runs in
a fresh child process that reads that file and reports wall time, peak RSS (``ru_maxrss``)
and page faults:

* ``detect-nuclei``: what ``python -m engine detect-nuclei REGION.tif --mpp 0.5 --out DIR``
  runs, in-process: the CLI's thread and malloc policies, ``engine.io.opened``,
  ``detect_task(mpp=0.5)`` (no rescale: the model's own 0.5 um/px; outlines on, the CLI's
  default) and ``write_detections``;
* ``detection only``: the same without outlines and without writing (the network + peaks);
* ``detect-nuclei, malloc default``: the CLI path with ``LATENT_MALLOC=default``;
* ``detect-nuclei, outlines not overlapped``: the CLI path with ``overlap=False`` (each tile is
  outlined after its network pass, on the same thread; the default overlaps them when a core is free);
* ``detect-nuclei --precision bf16``: the CLI path with bfloat16 autocast (not the default:
  about 0.1% of detections differ; see ``eval_nuclei_unseen.py --precision bf16`` for F1);
* ``LoG baseline``: read the TIFF, ``skimage.color.rgb2hed`` hematoxylin channel,
  ``skimage.feature.blob_log(min_sigma=3, max_sigma=7, num_sigma=5, threshold=0.015,
  overlap=0.5)``: sigma 3-7 px is a blob radius of sqrt(2) x sigma = 4-10 px = 2-5 um at
  0.5 um/px, a nucleus; the threshold is the best of 0.01-0.04 by pooled F1 (r = 6 px) on
  the CRCHisto *tune* images (0.702 there, 0.621 on the validation images).

Ratios are each case / the LoG time in the same run (medians over ``--repeats``). Targets
(issue 21): detect-nuclei <= 0.8x the LoG time, goal >= 1 Mpx/s.
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

TARGET_RATIO = 0.8
GOAL_MPX_S = 1.0
MPP = 0.5
TILE = 500
LOG_PARAMS = {"min_sigma": 3, "max_sigma": 7, "num_sigma": 5, "threshold": 0.015, "overlap": 0.5}
DEFAULT_DATA = REPO.parent / "shared" / "data"


def crchisto_images(data: Path) -> list[Path]:
    """The CRCHistoPhenotypes PNGs in file-number order."""
    root = Path(data) / "histo" / "crchisto"
    dirs = sorted((p for p in root.glob("img*") if p.is_dir()), key=lambda p: int(p.name[3:]))
    paths = [d / f"{d.name}.png" for d in dirs if (d / f"{d.name}.png").exists()]
    if not paths:
        raise FileNotFoundError(f"no CRCHistoPhenotypes images under {root}")
    return paths


def write_region(out: Path, side: int, data: Path = DEFAULT_DATA) -> Path:
    """Write a *side* x *side* RGB mosaic of CRCHisto images to *out* (uncompressed TIFF)."""
    import numpy as np
    import tifffile
    from PIL import Image as PILImage

    paths = crchisto_images(data)
    n = -(-side // TILE)
    mosaic = np.zeros((n * TILE, n * TILE, 3), np.uint8)
    for k in range(n * n):
        rgb = np.asarray(PILImage.open(paths[k % len(paths)]).convert("RGB"))[:TILE, :TILE]
        r, c = divmod(k, n)
        mosaic[r * TILE:r * TILE + rgb.shape[0], c * TILE:c * TILE + rgb.shape[1]] = rgb
    tifffile.imwrite(out, mosaic[:side, :side], photometric="rgb")
    return out


def child(kind: str, region: str, out: str, precision: str = "float32") -> None:
    t0 = time.perf_counter()
    count = 0
    if kind == "log":
        import tifffile
        from skimage.color import rgb2hed
        from skimage.feature import blob_log

        rgb = tifffile.imread(region)
        blobs = blob_log(rgb2hed(rgb)[..., 0], exclude_border=False, **LOG_PARAMS)
        count = len(blobs)
    else:
        from engine._shared.memory import apply_malloc_policy
        from engine._shared.threads import apply_thread_policy

        import engine.io
        from engine.jobs import run_job
        from engine.tasks.nuclei import detect_task, write_detections

        apply_thread_policy(None)  # as the CLI's main does for detect-nuclei
        apply_malloc_policy()  # LATENT_MALLOC=default switches it off
        outlines = kind != "detect"
        with engine.io.opened(region, mpp=MPP) as data:
            res = run_job(detect_task(data, mpp=MPP, outlines=outlines, bf16=precision == "bf16",
                                      overlap=False if kind == "cli-serial" else None))
            if kind in ("cli", "cli-serial"):
                write_detections(res, data, out)
        count = len(res.xy)
        assert abs(res.params["scale"] - 1.0) < 1e-9  # native resolution: no rescale
    wall = time.perf_counter() - t0
    ru = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"wall_s": wall, "rss_mb": ru.ru_maxrss / 1024, "faults": ru.ru_minflt + ru.ru_majflt,
                      "count": int(count)}))


def _run_child(kind: str, region: str, out: str, malloc: bool = True, precision: str = "float32") -> dict:
    env = {k: v for k, v in os.environ.items() if k != "LATENT_MALLOC"}
    if not malloc:
        env["LATENT_MALLOC"] = "default"
    res = subprocess.run([sys.executable, __file__, "--child", kind, region, out, precision], capture_output=True,
                         text=True, cwd=REPO, check=False, env=env)
    if res.returncode:
        raise RuntimeError(f"{kind} child failed: {res.stderr.strip()[-800:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


CASES = (  # name, kind, malloc policy, precision
    ("LoG baseline (rgb2hed + blob_log)", "log", True, "float32"),
    ("detect-nuclei (CLI path, outlines)", "cli", True, "float32"),
    ("detection only (no outlines, no write)", "detect", True, "float32"),
    ("detect-nuclei --precision bf16", "cli", True, "bf16"),
    ("detect-nuclei, malloc default", "cli", False, "float32"),
    ("detect-nuclei, outlines not overlapped with the network", "cli-serial", True, "float32"),
)


def measure(side: int, repeats: int = 1, cases=CASES, data: Path = DEFAULT_DATA) -> list[dict]:
    """Run every case *repeats* times on one mosaic; medians per case, ratio to the first case."""
    with tempfile.TemporaryDirectory() as tmp:
        region = os.fspath(write_region(Path(tmp) / "region.tif", side, data))
        rows = []
        for j, (name, kind, malloc, precision) in enumerate(cases):
            runs = []
            for i in range(repeats):
                out = Path(tmp) / f"out-{j}-{i}"
                out.mkdir()
                runs.append(_run_child(kind, region, os.fspath(out), malloc, precision))
            rows.append({"case": name, "kind": kind, "side": side,
                         **{k: statistics.median(r[k] for r in runs) for k in runs[0]}})
    ref = rows[0]["wall_s"]
    for r in rows:
        r["ratio"] = r["wall_s"] / ref
        r["mpx_s"] = side * side / 1e6 / r["wall_s"]
    return rows


def run_all_rows(quick: bool = True, side: int | None = None, repeats: int | None = None) -> list[dict]:
    """Rows for ``benchmarks/run_all.py``: a 2000^2 region, one repeat (quick) or 4000^2, three."""
    side, repeats = (side or (2000 if quick else 4000)), (repeats or (1 if quick else 3))
    rows = measure(side, repeats, CASES[:4])
    log, cli, det, bf = rows
    name = f"Nuclei {side}x{side} @0.5 um/px"
    return [
        {"figure": f"{name}: detect-nuclei (s)", "value": round(cli["wall_s"], 2), "unit": "s",
         "reference": f"LoG {log['wall_s']:.2f} s", "ratio": round(cli["ratio"], 2),
         "target": f"<= {TARGET_RATIO}x", "pass": cli["ratio"] <= TARGET_RATIO},
        {"figure": f"{name}: detect-nuclei throughput", "value": round(cli["mpx_s"], 2), "unit": "Mpx/s",
         "reference": f"LoG {log['mpx_s']:.2f} Mpx/s", "ratio": round(cli["mpx_s"] / log["mpx_s"], 2),
         "target": f">= {GOAL_MPX_S:g} Mpx/s (goal)", "pass": cli["mpx_s"] >= GOAL_MPX_S},
        {"figure": f"{name}: detection only (s)", "value": round(det["wall_s"], 2), "unit": "s",
         "reference": f"LoG {log['wall_s']:.2f} s", "ratio": round(det["ratio"], 2), "target": "",
         "pass": None},
        {"figure": f"{name}: detect-nuclei --precision bf16 (s)", "value": round(bf["wall_s"], 2), "unit": "s",
         "reference": f"LoG {log['wall_s']:.2f} s", "ratio": round(bf["ratio"], 2),
         "target": f"<= {TARGET_RATIO}x (not default)", "pass": bf["ratio"] <= TARGET_RATIO},
        {"figure": f"{name}: detect-nuclei peak RSS", "value": round(cli["rss_mb"]), "unit": "MB",
         "reference": f"LoG {log['rss_mb']:.0f} MB", "ratio": round(cli["rss_mb"] / log["rss_mb"], 2),
         "target": "", "pass": None},
    ]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--side", type=int, default=4000)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(*args.child)
        return 0
    rows = measure(args.side, args.repeats, data=args.data)
    print(f"CRCHisto mosaic {args.side}x{args.side} at {MPP} um/px (no rescale); medians of {args.repeats} "
          f"run(s); a fresh process per run")
    print(f"{'case':42s} {'wall s':>8s} {'ratio':>6s} {'Mpx/s':>6s} {'RSS MB':>7s} {'faults':>9s} {'nuclei':>7s}")
    for r in rows:
        print(f"{r['case']:42s} {r['wall_s']:8.2f} {r['ratio']:6.2f} {r['mpx_s']:6.2f} {r['rss_mb']:7.0f} "
              f"{r['faults']:9.0f} {r['count']:7.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
