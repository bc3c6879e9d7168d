"""Detection without a known pixel size, and nucleus outlines, on unseen MoNuSeg images.

For every MoNuSeg test image (40x, ``histo/monuseg``; never used to calibrate the scale
estimator or to train): F1 at r = 12 px when the image is read as a plain PNG without
``--mpp`` (scale estimated by :func:`engine.tasks.nuclei.scale.estimate_mpp`) and with
``--mpp 0.25``; and, for detections matched to a reference nucleus, the Dice of the
outline with the reference polygon and the relative area error. The same for CRCHisto
validation images (20x, r = 6 px) and the MICCAI 2015 images (known magnification)::

    .venv/bin/python benchmarks/eval_nuclei_scale.py [--data ../shared/data] [--sets monuseg,crchisto,miccai]
"""
from __future__ import annotations

import argparse
import gzip
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))


def monuseg_polygons(xml_gz) -> list[np.ndarray]:
    with gzip.open(str(xml_gz), "rb") as fh:
        root = ET.fromstring(fh.read())
    out = []
    for region in root.iter("Region"):
        v = np.array([(float(p.get("X")), float(p.get("Y"))) for p in region.iter("Vertex")])
        if len(v) >= 3:
            out.append(v)
    return out


def _mask(poly: np.ndarray, box) -> np.ndarray:
    from skimage.draw import polygon

    x0, y0, x1, y1 = box
    m = np.zeros((y1 - y0, x1 - x0), bool)
    rr, cc = polygon(poly[:, 1] - y0, poly[:, 0] - x0, shape=m.shape)
    m[rr, cc] = True
    return m


def outline_scores(pred_polys, truth_polys, pairs) -> tuple[list[float], list[float]]:
    """Dice and relative area error (pred / truth - 1) of each matched (pred, truth) pair."""
    dice, area_err = [], []
    for i, j in pairs:
        p, t = pred_polys[i], truth_polys[j]
        if len(p) < 3:
            continue
        both = np.vstack([p, t])
        box = (int(np.floor(both[:, 0].min())) - 1, int(np.floor(both[:, 1].min())) - 1,
               int(np.ceil(both[:, 0].max())) + 2, int(np.ceil(both[:, 1].max())) + 2)
        mp, mt = _mask(p, box), _mask(t, box)
        if not mt.any():
            continue
        dice.append(2 * (mp & mt).sum() / max(1, mp.sum() + mt.sum()))
        area_err.append(mp.sum() / mt.sum() - 1)
    return dice, area_err


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    ap.add_argument("--sets", default="monuseg,crchisto,miccai")
    ap.add_argument("--model", default=None)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)

    import torch
    from nuclei_sets import crchisto_split, crchisto_truth, miccai_truth, monuseg_truth

    import engine.io
    from engine.jobs import run_job
    from engine.tasks.nuclei import detect_task
    from engine.tasks.nuclei.evaluate import match_points, precision_recall_f1

    torch.set_num_threads(args.threads)
    root = Path(args.data) / "histo"
    jobs = []  # (set, name, png, known mpp, radius, truth loader, polygons loader)
    sets = args.sets.split(",")
    if "monuseg" in sets:
        for png in sorted((root / "monuseg").glob("*.png")):
            xml = png.with_suffix(".xml.gz")
            jobs.append(("monuseg", png.stem, png, 0.25, 12.0,
                         lambda shape, xml=xml: monuseg_truth(xml, shape), lambda xml=xml: monuseg_polygons(xml)))
    if "crchisto" in sets:
        _, _, val = crchisto_split(root / "crchisto")
        for n in val:
            d = root / "crchisto" / n
            jobs.append(("crchisto-val", n, d / f"{n}.png", 0.5, 6.0,
                         lambda shape, d=d, n=n: crchisto_truth(d / f"{n}_detection.mat"), None))
    if "miccai" in sets:
        import csv

        with open(root / "miccai2015_seg" / "pairs.csv") as fh:
            for r in csv.DictReader(fh):
                mpp = 0.25 if r["magnification"] == "40x" else 0.5
                mask = root / "miccai2015_seg" / r["mask_file"]
                jobs.append(("miccai", r["image"], root / "miccai2015_seg" / r["image"], mpp, 6.0 * 0.5 / mpp,
                             lambda shape, mask=mask: miccai_truth(mask), None))
    pooled: dict = {}
    dice_all: dict = {}
    print("| set | image | known mpp | estimated mpp (conf.) | F1 estimated | F1 known | outline Dice | area error |")
    print("|---|---|---|---|---|---|---|---|")
    for set_name, name, png, mpp, radius, truth_fn, poly_fn in jobs:
        row = {}
        for mode in ("estimated", "known"):
            with engine.io.opened(png, mpp=mpp if mode == "known" else None) as data:
                res = run_job(detect_task(data, model=args.model, device="cpu",
                                          mpp=mpp if mode == "known" else None))
                shape = tuple(data.shape[:2])
                truth = truth_fn(shape)
            r = precision_recall_f1(res.xy, truth, radius)
            c = pooled.setdefault((set_name, mode), np.zeros(3, int))
            c += (r["tp"], r["fp"], r["fn"])
            row[mode] = (res, r)
        est = row["estimated"][0].params.get("mpp_estimate") or {}
        dtxt = atxt = ""
        if poly_fn is not None:
            res = row["known"][0]
            truth_polys = poly_fn()
            pairs = match_points(res.xy, truth_fn(shape), radius)
            dice, aerr = outline_scores(res.outlines, truth_polys, pairs)
            dice_all.setdefault(set_name, ([], []))
            dice_all[set_name][0].extend(dice)
            dice_all[set_name][1].extend(aerr)
            dtxt, atxt = f"{np.mean(dice):.3f}", f"{np.median(aerr):+.2f}"
        print(f"| {set_name} | {name} | {mpp} | {est.get('mpp', float('nan')):.3f} ({est.get('confidence', 0):.2f}) | "
              f"{row['estimated'][1]['f1']:.3f} | {row['known'][1]['f1']:.3f} | {dtxt} | {atxt} |", flush=True)
    print()
    for (set_name, mode), c in sorted(pooled.items()):
        f1 = 2 * c[0] / max(1, 2 * c[0] + c[1] + c[2])
        print(f"{set_name:13s} {mode:9s} pooled F1 {f1:.3f} (tp {c[0]} fp {c[1]} fn {c[2]})")
    for set_name, (dice, aerr) in dice_all.items():
        print(f"{set_name:13s} outlines: mean Dice {np.mean(dice):.3f}, median Dice {np.median(dice):.3f}, "
              f"median area error {np.median(aerr):+.3f}, median |area error| {np.median(np.abs(aerr)):.3f} "
              f"({len(dice)} matched nuclei)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
