"""CT anomaly maps a radiologist can read: one table per model family / recipe variant (issue 15).

    .venv/bin/python benchmarks/bench_ct_maps.py [--models ct-dae runs/dae16-lung-a0002.raw.safetensors ...]

Every row runs the real inference path (:func:`engine.inference.ct.ct_slice`), calibrated
on the split's held-out NORMAL planes with the row's own recipe, then:

* split ``a0002`` (trained on Lung_Dx-A0002 unmarked planes + liver; LIDC-IDRI-0001 unseen):
  LIDC-IDRI-0001's 8 planes with a >= 2-reader consensus outline: pixel AUROC (lesion vs every
  other body pixel; the map is 0 outside its mask), pointing game (slice maximum within 5 px of
  the lesion) with the distance per plane; LIDC-IDRI-0001 unmarked planes >= 10 from the
  nodule: fraction of body pixels above 1 (mean and worst plane).
* split ``lidc`` (trained on LIDC-IDRI-0001 planes >= 10 from any mark + liver): Lung_Dx-A0002's
  10 boxed planes: pointing game (maximum within 5 px of the box); its unboxed planes
  (not next to a box): fraction of body pixels above 1. No pixel masks there, so no AUROC.

Baselines on the same planes, calibrated the same way: ``hu-lung`` (HU clipped to
[-1000, 100], Gaussian sigma 2 px, inside the 20 mm-closed lung mask) and ``contrast-lung``
(HU minus its 15 mm median, same mask).
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

RECIPES = {  # anomaly-recipe overrides tried on every model (None: the model's own)
    "own": None,
    "body": {"error": "abs", "median_size": 5, "smooth_sigma": 2.0, "mask": "ct_body"},
    "lung20": {"error": "abs", "median_size": 5, "smooth_sigma": 2.0, "mask": "ct_lung", "lung_closing_mm": 20.0},
    "lung20-first-m9": {"error": "abs", "median_size": 9, "smooth_sigma": 2.0, "mask": "ct_lung",
                        "lung_closing_mm": 20.0, "mask_before_smoothing": True},
    "lung20-first-m9-clip100": {"error": "abs", "median_size": 9, "smooth_sigma": 2.0, "mask": "ct_lung",
                                "lung_closing_mm": 20.0, "mask_before_smoothing": True, "error_clip_hu": 100.0},
}


def _planes(data: Path):
    """(image, lesion masks per plane or boxes, normal planes, calibration planes) of both patients."""
    from eval_ct_anomaly import lidc_consensus

    from engine.io import read

    case = data / "ct/lidc_idri/LIDC-IDRI-0001"
    img = read(str(case))
    les = lidc_consensus(case, img)
    ks = [k for k in range(les.shape[0]) if les[k].any()]
    k_of = {u: k for k, u in enumerate(img.metadata["sop_instance_uids"])}
    rows = list(csv.DictReader(open(case / "slices.csv")))
    marked = [k_of[r["sop_instance_uid"]] for r in rows if r["readers_nodule"] != "0"
              or r["small_nodule_marks"] != "0" or r["non_nodule_marks"] != "0"]
    far = [k for k in range(img.array.shape[0]) if min(abs(k - j) for j in marked) >= 10]
    lidc = dict(image=img, lesions={k: les[k] for k in ks}, normal=far[::3], cal=far[::2][1::5][:3],
                outlines=True)
    case = data / "ct/lung_pet_ct_dx/Lung_Dx-A0002"
    im2 = read(str(case / "CT"))
    k_of = {u: k for k, u in enumerate(im2.metadata["sop_instance_uids"])}
    boxes = {}
    for r in csv.DictReader(open(case / "slices.csv")):
        if r["label"]:
            m = np.zeros(im2.array.shape[1:], bool)
            m[int(r["ymin"]):int(r["ymax"]) + 1, int(r["xmin"]):int(r["xmax"]) + 1] = True
            boxes[k_of[r["sop_instance_uid"]]] = m
    clean = [k for k in range(im2.array.shape[0]) if not ({k - 1, k, k + 1} & set(boxes))]
    a2 = dict(image=im2, lesions=boxes, normal=clean, cal=clean[2::6][:3], outlines=False)
    return {"a0002": (a2, lidc), "lidc": (lidc, a2)}  # split -> (its normal data, its test patient)


class Baseline:
    """A model-free score with the same interface as a loaded model for :func:`_maps`."""

    def __init__(self, kind: str):
        self.name, self.kind, self.meta = kind, kind, {"calibration": None}


def _maps(model, hu, sp, calibrated=True):
    """(anomaly, body mask, the map's own mask) of one plane: the engine pipeline, or a baseline."""
    from scipy import ndimage as ndi

    from engine.inference.anomaly import apply_calibration, ct_body_mask
    from engine.inference.ct import ct_mask, ct_slice
    from engine.jobs import run_job

    body = ct_body_mask(hu)
    if not isinstance(model, Baseline):
        _, amap, own = run_job(ct_slice(model, hu, sp, calibrated=calibrated))
        return amap, body, own
    lung = ct_mask(hu, "ct_lung", float(np.mean(sp)), lung_closing_mm=20.0)
    c = np.clip(hu, -1000.0, 100.0)
    if model.kind == "hu-lung":
        s = ndi.gaussian_filter(c, 2.0)
    else:
        s = c - ndi.median_filter(c, size=int(round(15.0 / float(np.mean(sp)))) | 1)
    s = s * lung
    return (apply_calibration(s, model.meta["calibration"]) if calibrated else s) * lung, body, lung


def _calibrate(model, normal_data) -> None:
    from engine.inference.anomaly import calibrate

    img = normal_data["image"]
    vals = []
    for k in normal_data["cal"]:  # as engine.inference.calibration: values inside the map's own mask
        a, _, own = _maps(model, img.array[k], img.spacing[1:], calibrated=False)
        vals.append(a[own])
    # one unit per plane: the engine's one definition of the scale (engine.inference.anomaly.calibrate)
    model.meta["calibration"] = calibrate(vals, data=f"planes {normal_data['cal']}")


def evaluate(model, normal_data, test) -> dict:
    """Pointing game, AUROC (when the test has outlines) and the normal-plane fractions above 1."""
    from scipy import ndimage as ndi

    from eval_ct_anomaly import auroc

    img = test["image"]
    sp = img.spacing[1:]
    pos, neg, dist = [], [], []
    for k, les in test["lesions"].items():
        a, body, _ = _maps(model, img.array[k], sp)
        y, x = np.unravel_index(np.argmax(a), a.shape)
        dist.append(float(ndi.distance_transform_edt(~les)[y, x]))
        pos.append(a[les & body])
        neg.append(a[body & ~les])
    fr = []
    nimg = test["image"]
    for k in test["normal"]:
        a, body, _ = _maps(model, nimg.array[k], nimg.spacing[1:])
        fr.append(float((a[body] > 1).mean()))
    d = np.array(dist)
    return dict(auroc=auroc(np.concatenate(pos), np.concatenate(neg)) if test["outlines"] else float("nan"),
                pg=float((d <= 5).mean()), n=len(d), dist=d, frac_mean=float(np.mean(fr)),
                frac_max=float(np.max(fr)), n_normal=len(fr))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--models", nargs="*", default=["ct-dae"],
                    help="bundled names or weights files; the split is read from a '-a0002'/'-lidc' suffix "
                         "(bundled ct-dae: a0002)")
    ap.add_argument("--recipes", nargs="*", default=list(RECIPES))
    ap.add_argument("--baselines", nargs="*", default=["hu-lung", "contrast-lung"])
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    from engine import weights

    sets = _planes(Path(args.data))
    rows = []
    for split in ("a0002", "lidc"):
        entries = [(b, None, Baseline(b)) for b in args.baselines]
        for m in args.models:
            msplit = "lidc" if "-lidc" in Path(m).name else "a0002"
            if msplit != split:
                continue
            for rname in args.recipes:
                loaded = weights.load(m)
                if RECIPES[rname] is not None:
                    loaded.meta["anomaly"] = dict(RECIPES[rname])
                entries.append((Path(m).name.replace(".raw.safetensors", "").replace(".safetensors", ""),
                                rname, loaded))
        if not any(e[1] for e in entries):
            continue
        normal_data, test = sets[split]
        for label, rname, model in entries:
            _calibrate(model, normal_data)
            r = evaluate(model, normal_data, test)
            rows.append((split, label, rname or "-", r))
            print(f"{split:6s} {label:24s} {rname or '-':24s} AUROC {r['auroc']:.3f} PG {r['pg']:.2f} "
                  f"({int(round(r['pg'] * r['n']))}/{r['n']}) frac>1 {r['frac_mean']:.4f} worst "
                  f"{r['frac_max']:.4f} | dist px {np.round(r['dist']).astype(int).tolist()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
