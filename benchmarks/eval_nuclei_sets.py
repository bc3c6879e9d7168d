"""F1 per data set on the images no multi-set model was trained or tuned on, models beside the LoG baseline.

Sets (fixed in ``scripts/nuclei_sets.py``): CRCHisto SFCN-OPI validation images (20x, r = 6 px), the
3 held-out MoNuSeg *training* images (40x, r = 12 px at mpp 0.25), the 7 MoNuSeg *test* images (external
check; with ``mpp 0.25`` and read as plain PNGs without a pixel size, scale estimated), and the 2
held-out MICCAI 2015 images (r = 6 px at 20x, 12 px at 40x). Pooled P/R/F1 (Hungarian matching) and the
worst image of each set. The LoG baseline (hematoxylin channel) is tuned on the CRCHisto tune images
like ``bench_nuclei.py``; it needs the pixel size, so it has no "without mpp" cell::

    .venv/bin/python benchmarks/eval_nuclei_sets.py [--data ../shared/data] [--models histo-nuclei runs/x.safetensors]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

MODEL_MPP = 0.5


def held_out_sets(root: Path) -> dict:
    """``{set: [(name, png, mpp or None, radius, truth), ...]}``; ``mpp None`` = read without a pixel size."""
    from nuclei_sets import (crchisto_split, crchisto_truth, miccai_split, miccai_truth, monuseg_train_split,
                             monuseg_truth)
    from PIL import Image as PILImage

    def mon(folder, stems, mpp):
        out = []
        for s in stems:
            png = folder / f"{s}.png"
            w, h = PILImage.open(png).size
            out.append((s, png, mpp, 12.0, monuseg_truth(folder / f"{s}.xml.gz", (h, w))))
        return out

    crc = root / "crchisto"
    _, _, val = crchisto_split(crc)
    _, _, mtrain = monuseg_train_split(root / "monuseg_train")
    test = sorted(p.stem for p in (root / "monuseg").glob("*.png"))
    _, mic = miccai_split(root / "miccai2015_seg")
    return {
        "CRCHisto val (10, r=6)": [(n, crc / n / f"{n}.png", 0.5, 6.0, crchisto_truth(crc / n / f"{n}_detection.mat"))
                                   for n in val],
        "MoNuSeg train held-out (3, r=12)": mon(root / "monuseg_train", mtrain, 0.25),
        "MoNuSeg test (7, r=12, mpp 0.25)": mon(root / "monuseg", test, 0.25),
        "MoNuSeg test (7, r=12, no mpp)": mon(root / "monuseg", test, None),
        "MICCAI held-out (2, r=6/12)": [
            (r["image"], root / "miccai2015_seg" / r["image"], 0.25 if r["magnification"] == "40x" else 0.5,
             12.0 if r["magnification"] == "40x" else 6.0, miccai_truth(root / "miccai2015_seg" / r["mask_file"]))
            for r in mic],
    }


def score(detect, items):
    """Pooled (P, R, F1, tp, fp, fn) and the per-image F1 list of *detect(png, mpp)* on *items*."""
    from engine.tasks.nuclei.evaluate import precision_recall_f1

    tp = fp = fn = 0
    per = []
    for name, png, mpp, radius, truth in items:
        r = precision_recall_f1(detect(png, mpp), truth, radius)
        tp, fp, fn = tp + r["tp"], fp + r["fp"], fn + r["fn"]
        per.append((r["f1"], name))
    return (tp / max(1, tp + fp), tp / max(1, tp + fn), 2 * tp / max(1, 2 * tp + fp + fn), tp, fp, fn), per


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    ap.add_argument("--models", nargs="+", default=["histo-nuclei"], help="model names or safetensors paths")
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)

    import torch
    from bench_nuclei import baseline_points, load_sets, tune_baseline
    from nuclei_baselines import log_blobs

    import engine.io
    from engine.jobs import run_job
    from engine.tasks.nuclei import detect_task, load_detector

    torch.set_num_threads(args.threads)
    sets = held_out_sets(Path(args.data) / "histo")
    rgb_cache: dict = {}

    def rgb(png):
        if png not in rgb_cache:
            rgb_cache[png] = np.asarray(engine.io.read(str(png)).array)[..., :3]
        return rgb_cache[png]

    methods = {}
    for m in args.models:
        loaded = load_detector(m)

        def ours(png, mpp, loaded=loaded):
            with engine.io.opened(png, mpp=mpp) as data:
                return run_job(detect_task(data, model=loaded, device="cpu", mpp=mpp, outlines=False)).xy
        methods[f"{Path(m).stem} ({loaded.sha256[:8]})"] = ours
    if not args.no_baseline:
        tune_items, _ = load_sets(Path(args.data))
        images = {p: rgb(p) for p, *_ in tune_items}
        grid = {"min_sigma": [2.0, 3.0], "max_sigma": [6.0], "threshold": [0.03, 0.05, 0.08, 0.12, 0.16]}
        log_f1, log_kw = tune_baseline(log_blobs, grid, tune_items, images)
        print(f"LoG tuned on CRCHisto tune images: F1 {log_f1:.3f} {log_kw}", file=sys.stderr)

        def log_detect(png, mpp):
            if mpp is None:
                return None
            return baseline_points(log_blobs, rgb(png), mpp / MODEL_MPP, **log_kw)
        methods["LoG on H (tuned)"] = log_detect

    names = list(sets)
    print("| method | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    worst = []
    for mname, fn in methods.items():
        cells = []
        for s in names:
            if mname.startswith("LoG") and sets[s][0][2] is None:
                cells.append("–")
                continue
            (p, r, f1, tp, fp, fn_), per = score(fn, sets[s])
            cells.append(f"{f1:.3f} (P {p:.2f} R {r:.2f})")
            lo = min(per)
            worst.append(f"{mname} / {s}: worst {lo[1]} F1 {lo[0]:.3f}; per image "
                         + ", ".join(f"{f:.2f}" for f, _ in per))
        print(f"| {mname} | " + " | ".join(cells) + " |", flush=True)
    print()
    for w in worst:
        print(w)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
