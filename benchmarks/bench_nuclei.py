"""Nucleus detection benchmark: the bundled detector against scikit-image baselines.

Prints one table: pooled F1 (Hungarian matching) and speed (ms per input megapixel)
on CRCHistoPhenotypes validation images (r = 6 px), MoNuSeg 40x (``mpp 0.25``,
r = 12 px) and MICCAI 2015 (20x: r = 6; 40x: r = 12), plus the median time of a
1000 x 1000 tile processed at the model's resolution (the worst case: no downscaling).

Baselines (tuned by grid search on the CRCHisto *tune* images, never on the
validation images): LoG blobs on the hematoxylin channel, and Otsu + distance
transform + watershed centroids. All inputs are rescaled to 0.5 um/px first, like
the detector. Run::

    .venv/bin/python benchmarks/bench_nuclei.py --data /work/shared/data [--threads 1] [--model histo-nuclei]
"""
from __future__ import annotations

import argparse
import csv
import itertools
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))  # benchmark data helpers

MODEL_MPP = 0.5


def _rescaled(rgb: np.ndarray, scale: float) -> np.ndarray:
    if scale == 1.0:
        return rgb
    from skimage.transform import rescale

    out = rescale(rgb, scale, channel_axis=2, anti_aliasing=True, preserve_range=True)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def baseline_points(fn, rgb, scale, **kw) -> np.ndarray:
    pts = fn(_rescaled(rgb, scale), **kw)
    return (pts + 0.5) / scale - 0.5


def load_sets(data: Path):
    from nuclei_sets import crchisto_split, crchisto_truth, miccai_truth, monuseg_truth

    import engine.io

    crc = data / "histo" / "crchisto"
    _, tune, val = crchisto_split(crc)

    def crc_items(names):
        return [(str(crc / n / f"{n}.png"), crchisto_truth(crc / n / f"{n}_detection.mat"), 0.5, 6.0)
                for n in names]

    mon = data / "histo" / "monuseg"
    monuseg = []
    for png in sorted(mon.glob("*.png")):
        shape = engine.io.read(str(png)).shape[:2]
        monuseg.append((str(png), monuseg_truth(mon / (png.stem + ".xml.gz"), shape), 0.25, 12.0))
    mic = data / "histo" / "miccai2015_seg"
    miccai = []
    with open(mic / "pairs.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            forty = row["magnification"].startswith("40")
            miccai.append((str(mic / row["image"]), miccai_truth(mic / row["mask_file"]),
                           0.25 if forty else 0.5, 12.0 if forty else 6.0))
    return crc_items(tune), {"CRCHisto val (r=6)": crc_items(val), "MoNuSeg 40x (r=12)": monuseg,
                             "MICCAI15 (r=6/12)": miccai}


def pooled(detect, items, images):
    from engine.tasks.nuclei.evaluate import precision_recall_f1

    tp = fp = fn = 0
    secs = mpix = 0.0
    for (path, truth, mpp, radius) in items:
        rgb = images[path]
        t0 = time.perf_counter()
        pts = detect(path, rgb, mpp)
        secs += time.perf_counter() - t0
        mpix += rgb.shape[0] * rgb.shape[1] / 1e6
        r = precision_recall_f1(pts, truth, radius)
        tp, fp, fn = tp + r["tp"], fp + r["fp"], fn + r["fn"]
    return 2 * tp / max(1, 2 * tp + fp + fn), 1e3 * secs / mpix


def tune_baseline(fn, grid: dict, tune_items, images):
    best = None
    for values in itertools.product(*grid.values()):
        kw = dict(zip(grid, values))
        f1, _ = pooled(lambda p, rgb, mpp: baseline_points(fn, rgb, mpp / MODEL_MPP, **kw), tune_items, images)
        if best is None or f1 > best[0]:
            best = (f1, kw)
    return best


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    ap.add_argument("--model", default="histo-nuclei")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5, help="runs of the 1000x1000 timing")
    ap.add_argument("--quick", action="store_true", help="smaller baseline grids")
    args = ap.parse_args(argv)

    import torch
    from nuclei_baselines import log_blobs, watershed_centroids

    import engine.io
    from engine.data import Image
    from engine.jobs import run_job
    from engine.tasks.nuclei import detect_task, load_detector

    torch.set_num_threads(args.threads)
    tune_items, sets = load_sets(Path(args.data))
    paths = {it[0] for it in tune_items} | {it[0] for items in sets.values() for it in items}
    images = {p: np.asarray(engine.io.read(p).array)[..., :3] for p in paths}
    loaded = load_detector(args.model)

    log_grid = {"min_sigma": [2.0, 3.0], "max_sigma": [6.0], "threshold": [0.03, 0.05, 0.08, 0.12, 0.16]}
    ws_grid = {"smooth": [1.0, 2.0], "min_distance": [3, 5, 7], "offset": [-0.05, 0.0]}
    if args.quick:
        log_grid["min_sigma"] = [2.5]
        ws_grid["smooth"] = [1.5]
    print("tuning baselines on the CRCHisto tune images ...", file=sys.stderr)
    log_f1, log_kw = tune_baseline(log_blobs, log_grid, tune_items, images)
    ws_f1, ws_kw = tune_baseline(watershed_centroids, ws_grid, tune_items, images)

    def ours(device):
        def run(path, rgb, mpp):
            img = Image(modality="histology", shape=rgb.shape, spacing=None, units="RGB8", path=path,
                        dtype="uint8", array=rgb)
            return run_job(detect_task(img, model=loaded, device=device, mpp=mpp)).xy
        return run

    methods = {
        "histo-nuclei (CPU)": ours("cpu"),
        "LoG blobs on H (tuned)": lambda p, rgb, mpp: baseline_points(log_blobs, rgb, mpp / MODEL_MPP, **log_kw),
        "distance transform + watershed on H (tuned)": lambda p, rgb, mpp: baseline_points(watershed_centroids, rgb,
                                                                         mpp / MODEL_MPP, **ws_kw),
    }
    if torch.cuda.is_available():
        methods["histo-nuclei (GPU)"] = ours("cuda")
    names = list(sets)
    rows = []
    for mname, fn in methods.items():
        cells = [pooled(fn, sets[s], images) for s in names]
        rows.append((mname, cells))

    # 1000x1000 tile at the model resolution (mpp 0.5: no downscaling), median of repeats.
    big = next(p for p in sorted(paths) if images[p].shape[:2] == (1000, 1000))
    img = engine.io.read(big)
    times = []
    for _ in range(args.repeats + 1):
        t0 = time.perf_counter()
        run_job(detect_task(img, model=loaded, device="cpu", mpp=MODEL_MPP))
        times.append(time.perf_counter() - t0)
    median = statistics.median(times[1:])

    print(f"\nNucleus detection, pooled F1 and speed (ms / input megapixel, CPU {args.threads} thread(s))")
    print(f"model {loaded.name} sha256 {loaded.sha256[:12]}; baselines tuned on CRCHisto tune images "
          f"(LoG tune F1 {log_f1:.3f}, watershed tune F1 {ws_f1:.3f})")
    head = f"| {'method':<46} | " + " | ".join(f"{n:>24}" for n in names) + " |"
    print(head)
    print("|" + "-" * 48 + "|" + "|".join("-" * 26 for _ in names) + "|")
    for mname, cells in rows:
        print(f"| {mname[:46]:<46} | " + " | ".join(f"F1 {f1:.3f}  {ms:7.0f} ms/MP" for f1, ms in cells) + " |")
    print(f"LoG parameters: {log_kw}; watershed parameters: {ws_kw}")
    print(f"\n1000x1000 tile at 0.5 um/px on CPU ({args.threads} thread(s)): median {median:.2f} s "
          f"over {args.repeats} runs ({', '.join(f'{t:.2f}' for t in times[1:])})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
