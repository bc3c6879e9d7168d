"""Fit (and check) the pixel-size estimator of :mod:`engine.tasks.nuclei.scale`.

Calibration images (known magnification): every 2nd CRCHisto image (20x, 0.5 um/px), the
13 MoNuSeg *training* images (40x, 0.25), the MICCAI 2015 images (20x and 40x); each
also resampled by 2 to the other magnification (so stain and organ are not confounded
with scale). Prints the least-squares coefficients of ``log(mpp)`` on (1, LoG-spectrum
centroid, log inscribed radius), a leave-one-image-out error table, the snapping-threshold
choice, and the held-out check on the MoNuSeg *test* images (never used to fit)::

    .venv/bin/python scripts/calibrate_nuclei_scale.py [--data ../shared/data] [--workers 2]
"""
from __future__ import annotations

import argparse
import glob
import sys
from multiprocessing import Pool
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MICCAI_MPP = {"image01": 0.5, "image02": 0.5, "image06": 0.5, "image08": 0.25, "image14": 0.25}


def _job(item):
    from PIL import Image as PILImage
    from scipy import ndimage as ndi

    from engine.tasks.nuclei.scale import scale_features
    from engine.tasks.nuclei.stain import hematoxylin

    set_name, path, mpp = item
    h0 = hematoxylin(np.asarray(PILImage.open(path).convert("RGB"))).astype(np.float32)
    out = []
    for fac in ((1.0, 0.5) if mpp < 0.4 else (1.0, 2.0)):
        h = h0 if fac == 1 else ndi.zoom(h0, fac, order=1)
        f = scale_features(h)
        out.append((set_name, Path(path).name, mpp / fac, fac, f["log_centroid"], np.log(f["radius_p75"])))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    h = Path(args.data) / "histo"
    items = [("crchisto", f, 0.5) for f in sorted(glob.glob(str(h / "crchisto/img*/img*.png")))[::2]]
    items += [("monuseg_train", f, 0.25) for f in sorted(glob.glob(str(h / "monuseg_train/*.png")))]
    items += [("miccai", f, MICCAI_MPP[Path(f).stem]) for f in sorted(glob.glob(str(h / "miccai2015_seg/*.png")))]
    items += [("monuseg_test", f, 0.25) for f in sorted(glob.glob(str(h / "monuseg/*.png")))]
    with Pool(args.workers) as pool:
        rows = [r for part in pool.map(_job, items) for r in part]
    S = np.array([r[0] for r in rows])
    files = np.array([r[1] for r in rows])
    Y = np.log([r[2] for r in rows])
    F = np.array([r[3] for r in rows])
    X = np.column_stack([np.ones(len(rows)), [r[4] for r in rows], [r[5] for r in rows]])
    cal = S != "monuseg_test"
    w = np.where(S == "crchisto", 0.3, 1.0)  # 40 CRCHisto images would outweigh the 18 others

    def fit(mask):
        sw = np.sqrt(w[mask])
        return np.linalg.lstsq(X[mask] * sw[:, None], Y[mask] * sw, rcond=None)[0]

    coef = fit(cal)
    print("coef", np.round(coef, 4).tolist())
    pred = np.zeros(len(rows))
    for f in set(files[cal]):
        pred[files == f] = X[files == f] @ fit(cal & (files != f))
    pred[~cal] = X[~cal] @ coef
    std = np.array([0.125, 0.25, 0.5, 1.0, 2.0])
    print("| set | scale | images | raw error, octaves (mean ± sd) | magnification right |")
    print("|---|---|---|---|---|")
    for s in ("crchisto", "monuseg_train", "miccai", "monuseg_test"):
        for fac in sorted(set(F[S == s])):
            m = (S == s) & (F == fac)
            e = (pred[m] - Y[m]) / np.log(2)
            snapped = std[np.abs(np.log2(np.exp(pred[m])[:, None] / std)).argmin(1)]
            right = np.mean(np.abs(np.log2(snapped / np.exp(Y[m]))) < 0.1)
            mpps = "/".join(f"{v:g}" for v in sorted({round(float(np.exp(y)), 4) for y in Y[m]}))
            print(f"| {s} | {mpps} um/px ({'original' if fac == 1 else f'resampled x{fac:g}'}) | "
                  f"{m.sum()} | {e.mean():+.2f} ± {e.std():.2f} | {right:.2f} |")
    print("snap threshold (octaves) -> share of calibration images whose used mpp is off by > 25 %:")
    for th in (0.2, 0.3, 0.4, 0.5):
        bad = []
        for i in np.flatnonzero(cal):
            raw = np.exp(pred[i])
            off = np.abs(np.log2(raw / std))
            use = std[off.argmin()] if off.min() <= th else raw
            bad.append(abs(use / np.exp(Y[i]) - 1) > 0.25)
        print(f"  {th}: {np.mean(bad):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
