"""CT anomaly-map evaluation on annotated lesions, with models that never saw the patient.

    .venv/bin/python benchmarks/eval_ct_anomaly.py [--model ct-dae] [--reverse-model runs/ct-dae-lidc.raw.safetensors]

1. LIDC-IDRI-0001 (nodule, 50 % consensus of 4 readers = >= 2 readers, as in
   ../shared/data/README.md): pixel AUROC of the anomaly map, lesion pixels vs every other
   pixel inside the lung mask, and inside the body mask, over the slices with a consensus
   outline. Baseline for context: the windowed HU value itself as the score.
   The bundled ct-dae was trained on Lung_Dx-A0002 + dcmqi liver slices only.
2. Normal slices (no reader mark, >= 10 slices from the nodule): calibrated anomaly
   statistics (a normal case must stay low: p99 ~ 1 by construction of the scale).
3. Reverse check (optional): a model trained on LIDC-IDRI-0001 unmarked slices
   (``--train-reverse`` writes it) on Lung_Dx-A0002's boxed slices: pointing game (is the
   anomaly peak inside the body inside the radiologist's box?).
"""
from __future__ import annotations

import argparse
import csv
import glob
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def lidc_consensus(case: Path, image) -> np.ndarray:
    """Voxels inside the outlines of >= 2 of the 4 readers (the README's reference code)."""
    from PIL import Image as PILImage
    from PIL import ImageDraw

    uids = image.metadata["sop_instance_uids"]
    k_of = {u: k for k, u in enumerate(uids)}
    shape = image.array.shape
    root = ET.parse(glob.glob(str(case / "*.xml"))[0]).getroot()
    ns = {"n": root.tag.split("}")[0][1:]}
    votes = np.zeros(shape, np.uint8)
    for session in root.findall("n:readingSession", ns):
        inc = np.zeros(shape, bool)
        exc = np.zeros(shape, bool)
        for nod in session.findall("n:unblindedReadNodule", ns):
            for roi in nod.findall("n:roi", ns):
                k = k_of.get(roi.find("n:imageSOP_UID", ns).text.strip())
                pts = [(int(e.find("n:xCoord", ns).text), int(e.find("n:yCoord", ns).text))
                       for e in roi.findall("n:edgeMap", ns)]
                if k is None or len(pts) < 3:
                    continue
                m = PILImage.new("1", (shape[2], shape[1]))
                ImageDraw.Draw(m).polygon(pts, fill=1, outline=1)
                (inc if roi.find("n:inclusion", ns).text.strip().upper() == "TRUE" else exc)[k] |= np.array(m)
        votes += inc & ~exc
    return votes >= 2


def auroc(pos: np.ndarray, neg: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    y = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
    return float(roc_auc_score(y, np.r_[pos, neg]))


def eval_lidc(loaded, data: Path) -> None:
    from engine.inference.anomaly import anomaly_stats, ct_lung_mask
    from engine.inference.ct import ct_slice
    from engine.io import read
    from engine.jobs import run_job

    case = data / "ct/lidc_idri/LIDC-IDRI-0001"
    img = read(str(case))
    lesion = lidc_consensus(case, img)
    ks = [k for k in range(lesion.shape[0]) if lesion[k].any()]
    print(f"LIDC-IDRI-0001: {int(lesion.sum())} consensus voxels on {len(ks)} slices (planes {ks})")
    sp = img.spacing[1:]
    pos_a, neg_lung, neg_body, pos_hu, neg_hu_lung, rows = [], [], [], [], [], []
    t0 = time.time()
    for k in ks:
        hu = img.array[k]
        _, amap, body = run_job(ct_slice(loaded, hu, sp))
        lung = ct_lung_mask(hu, spacing_mm=float(np.mean(sp)))
        les = lesion[k]
        in_lung = les & lung
        pos_a.append(amap[les]); neg_lung.append(amap[lung & ~les]); neg_body.append(amap[body & ~les])
        pos_hu.append(hu[les]); neg_hu_lung.append(hu[lung & ~les])
        rows.append((k, int(les.sum()), float(in_lung.sum() / max(1, les.sum())),
                     auroc(amap[les], amap[lung & ~les]), float(np.median(amap[les])),
                     float(np.percentile(amap[lung & ~les], 99))))
    dt = (time.time() - t0) / len(ks)
    print(f"\n{'plane':>5} {'lesion px':>9} {'in lung':>7} {'AUROC(lung)':>11} {'lesion median':>13} {'lung p99':>8}")
    for r in rows:
        print(f"{r[0]:>5} {r[1]:>9} {r[2]:>7.2f} {r[3]:>11.3f} {r[4]:>13.2f} {r[5]:>8.2f}")
    P = np.concatenate(pos_a)
    print(f"\nPixel AUROC, lesion vs rest of the LUNG mask  : {auroc(P, np.concatenate(neg_lung)):.4f}")
    print(f"Pixel AUROC, lesion vs rest of the BODY mask  : {auroc(P, np.concatenate(neg_body)):.4f}")
    print(f"Baseline (HU value as score), lung mask       : {auroc(np.concatenate(pos_hu), np.concatenate(neg_hu_lung)):.4f}")
    print(f"({dt:.2f} s per slice on CPU)")
    # normal slices far from the nodule and with no reader marks
    rowsn = list(csv.DictReader(open(case / "slices.csv")))
    uids = img.metadata["sop_instance_uids"]
    k_of = {u: k for k, u in enumerate(uids)}
    clean = [k_of[r["sop_instance_uid"]] for r in rowsn
             if r["readers_nodule"] == "0" and r["small_nodule_marks"] == "0" and r["non_nodule_marks"] == "0"]
    far = [k for k in clean if min(abs(k - j) for j in ks) >= 10][::6]
    print("\nNormal (unmarked) LIDC slices, calibrated anomaly inside the body mask (0 = typical, 1 = p99 of normal):")
    print("(left: inside the body mask; right: inside the lung mask)")
    print(f"{'plane':>6} {'mean':>6} {'p95':>6} {'p99':>6} {'max':>6} {'frac>1':>7} | "
          f"{'mean':>6} {'p99':>6} {'max':>6} {'frac>1':>7}")
    k_nod = ks[len(ks) // 2]
    for k in far + [k_nod]:
        _, amap, body = run_job(ct_slice(loaded, img.array[k], sp))
        s = anomaly_stats(amap, body)
        t = anomaly_stats(amap, ct_lung_mask(img.array[k], spacing_mm=float(np.mean(sp))))
        tag = "  <- nodule slice for comparison" if k == k_nod else ""
        print(f"{k:>6} {s['mean']:>6.2f} {s['p95']:>6.2f} {s['p99']:>6.2f} {s['max']:>6.2f} {s['fraction_above_1']:>7.3f} | "
              f"{t['mean']:>6.2f} {t['p99']:>6.2f} {t['max']:>6.2f} {t['fraction_above_1']:>7.3f}{tag}")


def eval_reverse(loaded, data: Path) -> None:
    from engine.inference.ct import ct_slice
    from engine.io import read
    from engine.jobs import run_job

    case = data / "ct/lung_pet_ct_dx/Lung_Dx-A0002"
    img = read(str(case / "CT"))
    k_of = {u: k for k, u in enumerate(img.metadata["sop_instance_uids"])}
    hits, rows = 0, []
    boxes = [r for r in csv.DictReader(open(case / "slices.csv")) if r["label"]]
    for r in boxes:
        k = k_of[r["sop_instance_uid"]]
        _, amap, body = run_job(ct_slice(loaded, img.array[k], img.spacing[1:]))
        y, x = np.unravel_index(np.argmax(np.where(body, amap, -1)), amap.shape)
        inside = int(r["ymin"]) <= y <= int(r["ymax"]) and int(r["xmin"]) <= x <= int(r["xmax"])
        hits += inside
        box = np.zeros_like(body)
        box[int(r["ymin"]):int(r["ymax"]) + 1, int(r["xmin"]):int(r["xmax"]) + 1] = True
        rows.append((k, inside, float(amap[box & body].mean()), float(amap[body & ~box].mean())))
    print(f"\nReverse check: model {loaded.name} (trained on LIDC-IDRI-0001 unmarked slices) on Lung_Dx-A0002")
    print(f"{'plane':>5} {'peak in box':>11} {'mean in box':>11} {'mean outside':>12}")
    for r in rows:
        print(f"{r[0]:>5} {str(r[1]):>11} {r[2]:>11.2f} {r[3]:>12.2f}")
    print(f"Pointing game: {hits}/{len(boxes)} anomaly peaks inside the box")


def train_reverse(data: Path, out: Path) -> None:
    """ct-dae's recipe, trained on LIDC-IDRI-0001 slices with no mark >= 5 slices from the nodule."""
    import torch

    sys.path.insert(0, str(REPO / "scripts"))
    import train_bundled as tb

    from engine import weights
    from engine.io import read
    from engine.jobs import run_job
    from engine.models import build_model
    from engine.training.datasets import RandomCropFlip, ct_slices_model
    from engine.training.loop import train

    torch.set_num_threads(1)
    spec = tb.SPECS["ct-dae"]
    case = data / "ct/lidc_idri/LIDC-IDRI-0001"
    img = read(str(case))
    marked = tb.lidc_marked_planes(img, case)
    clean = [k for k in range(img.array.shape[0]) if min(abs(k - j) for j in marked) >= 5][::2]
    sl = ct_slices_model(img, spec["preprocessing"], planes=clean)
    size = tb.common_size(sl, spec["input"]["size_multiple"])
    x = np.stack([tb.pad_to(s, size) for s in sl])
    t = spec["train"]
    xtr, xva = np.repeat(x[1:], max(1, 288 // len(x)), axis=0), x[:1]
    torch.manual_seed(0)
    model = build_model(spec["architecture"], **spec["hparams"])
    res = run_job(train(model, xtr, xva, loss=t["loss"], epochs=t["epochs"], batch_size=t["batch_size"],
                        lr=t["lr"], seed=0, device="cpu", patience=t["patience"],
                        augment=RandomCropFlip(t["crop"], flips=(-1,))))
    meta = {k: spec[k] for k in ("modality", "task", "architecture", "preprocessing", "input", "anomaly")}
    meta.update(name="ct-dae-lidc", hparams=model.hparams, training={"data": f"LIDC-IDRI-0001 planes {clean}"},
                metrics={"val_loss": res.metrics["best_val_loss"]})
    weights.save(res.model, out, meta)
    print(f"wrote {out} ({res.metrics})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--model", default="ct-dae")
    ap.add_argument("--reverse-model", default=None)
    ap.add_argument("--train-reverse", default=None, metavar="OUT.safetensors")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    from engine import weights

    data = Path(args.data)
    if args.train_reverse:
        train_reverse(data, Path(args.train_reverse))
        return 0
    loaded = weights.load(args.model)
    print(f"model {loaded.name} sha256 {loaded.sha256[:12]} trained on: "
          f"{loaded.meta.get('training', {}).get('data', {})}")
    eval_lidc(loaded, data)
    if args.reverse_model:
        eval_reverse(weights.load(args.reverse_model), data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
