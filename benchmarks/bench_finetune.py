"""Transfer-learning evidence (issue 16): fine-tune a bundled model on one patient / lab, measure before vs after.

    nice .venv/bin/python benchmarks/bench_finetune.py --part ct|ecg|nuclei [--data ../shared/data] [--threads 2]
        [--steps N] [--device cpu|cuda] [--json OUT.json] [--parent FILE --record R]

Every part runs the product's own generator (``engine.training.finetune.finetune``, the same one
``python -m engine finetune`` and the GUI drive) with its defaults unless ``--steps`` is given,
and times it.

* ``ct``: LIDC-IDRI-0001 (IV contrast; ct-dae never saw this patient, it was trained on
  Lung_Dx-A0002 + dcmqi liver). Lesion-free planes = no reader mark of any kind and >= 5 planes
  from any marked plane. They are cut into blocks of 5 consecutive planes; even blocks are the
  fine-tuning data (finetune holds out its last 20 % of planes for its validation and the new
  calibration), odd blocks minus their first and last plane are the TEST normals (never trained
  or calibrated on). Measured before (ct-dae, bundled calibration) and after (adapted model, its
  new calibration), plus ct-dae with its bundled scale measured again by the current definition
  (engine.inference.anomaly.calibrate) on its own validation planes (Lung_Dx-A0002), and ct-dae
  re-calibrated on the same held-out planes (``calibrate`` alone):
  fraction of body pixels above 1 on the test normals; on the planes with a >= 2-reader nodule
  outline: pixel AUROC lesion vs rest of the body and vs rest of the lung mask, and the pointing
  game (is the anomaly peak inside the body inside the outline's bounding box?).
* ``ecg``: an MIT-BIH record never used in training (not in the parent's ``training.records``;
  default 100). The shipped ecg-dae was trained on all 35 shared records, so the part needs
  ``--parent FILE``: an ecg-dae trained without the record (``scripts/train_ecg_dae.py --fold K``);
  a parent whose metadata lists the record, or lists no records, is refused. Fine-tune on its
  first 5 minutes (finetune holds out the last minute of these), then on minutes 5-30:
  clean-input floor and SNR improvement at 0 dB for bw, ma and em, noise from the TEST halves
  of NSTDB (scripts/ecg_noise; the shipped resources/noise excerpts come from the training
  halves), through the real ``denoise`` task, as benchmarks/bench_ecg_denoise.py. With a gated parent
  (``gate_window`` > 0) both networks are also measured with the gate off (diagnostic rows).
* ``nuclei``: MICCAI 2015 images (centroids of the instance masks, written as CSV x,y beside
  each image as a user would): fine-tune on 2 (default image01, image02; finetune holds one out
  to re-tune the operating point), F1 on the other 3 with each model's own operating point,
  radius 6 px at 20x and 12 px at 40x (3 um), 20x = 0.5 um/px and 40x = 0.25 um/px.
"""
from __future__ import annotations

import argparse
import copy
import csv
import dataclasses
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO / "benchmarks"))


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, flush=True)


def _progress():
    last = [0.0]

    def cb(p):
        if time.time() - last[0] > 30 or p.fraction >= 1.0:
            last[0] = time.time()
            log(f"  {100 * p.fraction:5.1f}% {p.message}")
    return cb


# ------------------------------------------------------------------------------------------ CT

def _parent_same_definition(data: Path, parent):
    """ct-dae with its calibration measured again by the CURRENT definition
    (engine.inference.anomaly.calibrate) on its own validation planes (Lung_Dx-A0002, listed in
    its training metadata; never this patient): the bundled scale under the rule the fine-tune uses."""
    import re

    from engine.inference.calibration import calibrate_on
    from engine.io import read

    note = parent.meta["training"]["data"]["validation"]
    planes = [int(k) for k in re.search(r"planes \[([\d, ]+)\]", note).group(1).split(",")]
    img = read(str(data / "ct/lung_pet_ct_dx/Lung_Dx-A0002/CT"))
    cal = calibrate_on(parent, [(img, planes)], data_note=f"Lung_Dx-A0002 planes {planes}, current definition")
    return dataclasses.replace(parent, meta={**parent.meta, "calibration": cal})


def part_ct(data: Path, args, out: Path) -> dict:
    from eval_ct_anomaly import auroc, lidc_consensus

    from engine import weights
    from engine.inference.anomaly import ct_lung_mask
    from engine.inference.ct import ct_slice
    from engine.io import read
    from engine.jobs import run_job
    from engine.training.finetune import calibrate_model, finetune, split_units

    case = data / "ct/lidc_idri/LIDC-IDRI-0001"
    img = read(str(case))
    uids = img.metadata["sop_instance_uids"]
    k_of = {u: k for k, u in enumerate(uids)}
    rows = list(csv.DictReader(open(case / "slices.csv")))
    file_of = {k_of[r["sop_instance_uid"]]: case / r["file"] for r in rows}
    marked = [k_of[r["sop_instance_uid"]] for r in rows
              if r["readers_nodule"] != "0" or r["small_nodule_marks"] != "0" or r["non_nodule_marks"] != "0"]
    clean = [k for k in range(len(uids)) if min(abs(k - j) for j in marked) >= 5]
    blocks = [clean[i:i + 5] for i in range(0, len(clean), 5)]
    ft_planes = [k for b in blocks[0::2] for k in b]
    test_planes = [k for b in blocks[1::2] for k in b[1:-1]]
    lesion = lidc_consensus(case, img)
    les_planes = [k for k in range(lesion.shape[0]) if lesion[k].any()]
    log(f"LIDC-IDRI-0001: {len(uids)} planes; fine-tuning planes {ft_planes} ({len(ft_planes)}); "
        f"test normals {test_planes}; nodule planes {les_planes}")
    work = Path(tempfile.mkdtemp(prefix="bench_ft_ct_"))
    ft_dir = work / "normals"
    ft_dir.mkdir()
    for k in ft_planes:
        os.symlink(file_of[k], ft_dir / file_of[k].name)
    t0, c0 = time.time(), time.process_time()
    res = run_job(finetune("ct-dae", [str(ft_dir)], out_dir=out, name="ct-dae-lidc0001", steps=args.steps,
                           device=args.device, command="benchmarks/bench_finetune.py --part ct"), _progress())
    t_ft, cpu_ft = time.time() - t0, time.process_time() - c0
    log(f"fine-tune: {t_ft:.0f} s wall, {cpu_ft:.0f} s CPU (fit {res['seconds_fit']:.0f} s); "
        f"held out: {res['validation']['held_out']}")
    # calibrate-only baseline on the very planes finetune held out
    _, ho_idx = split_units(len(ft_planes), 0.2)  # finetune's own by-file split of the planes
    ho_planes = [ft_planes[i] for i in ho_idx]
    cal_dir = work / "heldout"
    cal_dir.mkdir()
    for k in ho_planes:
        os.symlink(file_of[k], cal_dir / file_of[k].name)
    t0 = time.time()
    cres = run_job(calibrate_model("ct-dae", [str(cal_dir)], out_dir=out, name="ct-dae-lidc0001-calibrated"))
    t_cal = time.time() - t0
    log(f"calibrate only (planes {ho_planes}): {t_cal:.0f} s")
    parent_now = _parent_same_definition(data, weights.load("ct-dae"))
    log(f"ct-dae, current definition on its own validation planes: {parent_now.meta['calibration']}")
    models = {"before (ct-dae)": weights.load("ct-dae"), "before (ct-dae, current definition)": parent_now,
              "calibrate only": weights.load(cres["model"]), "after (fine-tuned)": weights.load(res["model"])}
    # a diagnostic, not the acceptance: the adapted network read on the bundled scale (the same
    # fixed scale before and after, so only the network changed)
    ft = models["after (fine-tuned)"]
    models["after, on ct-dae's bundled scale"] = dataclasses.replace(
        ft, meta={**ft.meta, "calibration": models["before (ct-dae)"].meta["calibration"]})
    sp = img.spacing[1:]
    table = {}
    for tag, lm in models.items():
        t0 = time.time()
        above, n_body = 0, 0
        for k in test_planes:
            _, amap, body = run_job(ct_slice(lm, img.array[k], sp))
            above += int((amap[body] > 1).sum())
            n_body += int(body.sum())
        pos, neg_body, neg_lung, hits = [], [], [], 0
        for k in les_planes:
            _, amap, body = run_job(ct_slice(lm, img.array[k], sp))
            les = lesion[k]
            lung = ct_lung_mask(img.array[k], spacing_mm=float(np.mean(sp)))
            pos.append(amap[les])
            neg_body.append(amap[body & ~les])
            neg_lung.append(amap[lung & ~les])
            y, x = np.unravel_index(np.argmax(np.where(body, amap, -1)), amap.shape)
            rr, cc = np.nonzero(les)
            hits += int(rr.min() <= y <= rr.max() and cc.min() <= x <= cc.max())
        P = np.concatenate(pos)
        table[tag] = {"fraction_above_1_test_normals": above / max(1, n_body),
                      "auroc_body": auroc(P, np.concatenate(neg_body)),
                      "auroc_lung": auroc(P, np.concatenate(neg_lung)),
                      "pointing_game": f"{hits}/{len(les_planes)}", "seconds_eval": round(time.time() - t0, 1)}
        log(f"{tag}: {table[tag]}")
    b, a = table["before (ct-dae)"], table["after (fine-tuned)"]
    fa, fb = a["fraction_above_1_test_normals"], b["fraction_above_1_test_normals"]
    acc = {"fraction_above_1_falls_by": 1 - fa / max(1e-12, fb),
           "auroc_body_change": a["auroc_body"] - b["auroc_body"],
           "auroc_lung_change": a["auroc_lung"] - b["auroc_lung"]}
    acc["pass"] = (acc["fraction_above_1_falls_by"] >= 0.5
                   and min(acc["auroc_body_change"], acc["auroc_lung_change"]) >= -0.01)
    return {"part": "ct", "finetune_seconds": round(t_ft, 1), "finetune_cpu_seconds": round(cpu_ft, 1),
            "calibrate_seconds": round(t_cal, 1),
            "fine_tuning_planes": ft_planes, "held_out_planes": ho_planes, "test_normal_planes": test_planes,
            "nodule_planes": les_planes, "table": table, "acceptance": acc, "model": res["model"],
            "validation": res["validation"]}


# ------------------------------------------------------------------------------------------ ECG

def check_unseen(parent, record: str) -> set:
    """The records *parent* was trained on (its ``training.records``); SystemExit naming the
    model file when *record* is one of them or the metadata does not list them."""
    tr = parent.meta.get("training") or {}
    if "records" not in tr:
        raise SystemExit(f"{parent.path}: its metadata lists no training.records, so record {record} "
                         "cannot be shown to be unseen; pass a parent trained by scripts/train_ecg_dae.py")
    trained = {str(r) for r in tr["records"]}
    if str(record) in trained:
        raise SystemExit(f"{parent.path}: record {record} was used to train this model ({sorted(trained)}); "
                         "pick another record or pass --parent FILE trained without it "
                         "(scripts/train_ecg_dae.py --fold K)")
    return trained


def part_ecg(data: Path, args, out: Path) -> dict:
    from ecg_noise import NOISE_KINDS, clean_reference, load_noise, mix_at_snr, noise_segment, snr_db

    from engine import weights
    from engine.data import Signal
    from engine.io import read
    from engine.jobs import run_job
    from engine.tasks.denoise import denoise_task
    from engine.training.finetune import finetune

    fs = 360.0
    parent = weights.load(args.parent or "ecg-dae")
    rec = args.record
    trained = check_unseen(parent, rec)
    mitdb, nstdb = data / "ecg" / "mitdb", data / "ecg" / "nstdb"
    sig = read(str(mitdb / rec))
    cut = int(5 * 60 * fs)
    first = Signal.from_array(sig.read(0, cut).astype(np.float32), sfreq=sig.sfreq, modality="ecg",
                              channels=sig.channels, units=sig.units, path=f"mitdb/{rec} [0, 5 min)")
    log(f"record {rec} ({parent.path} trained on {sorted(trained)}): fine-tuning on its first 5 minutes")
    t0, c0 = time.time(), time.process_time()
    res = run_job(finetune(parent, [first], out_dir=out, name=f"ecg-dae-{rec}", steps=args.steps,
                           device=args.device, command="benchmarks/bench_finetune.py --part ecg"), _progress())
    t_ft, cpu_ft = time.time() - t0, time.process_time() - c0
    log(f"fine-tune: {t_ft:.0f} s wall, {cpu_ft:.0f} s CPU (fit {res['seconds_fit']:.0f} s)")
    after = weights.load(res["model"])
    # test segments from minutes 5-30 (lead 0), noise from the NSTDB test halves
    n = int(args.seconds * fs)
    m = int(2 * fs)
    rng = np.random.default_rng(7)
    starts = np.linspace(cut + m, sig.n_samples - n - m, args.segments).astype(int)
    clean = []
    for s in starts:
        c = clean_reference(sig.read(s - m, s + n + m)[0], fs)[m:m + n]
        clean.append(c - c.mean())
    clean = np.asarray(clean)
    noise = {k: load_noise(nstdb, k, part="test", mitdb_dir=mitdb) for k in NOISE_KINDS}
    noisy = {k: np.asarray([mix_at_snr(c, noise_segment(noise[k], n, rng), 0.0) for c in clean]) for k in NOISE_KINDS}

    def den(lm, x):
        s = Signal.from_array(x.astype(np.float32), sfreq=fs, modality="ecg", path="bench")
        return run_job(denoise_task(s, model=lm, device="cpu")).signal.data.astype(np.float64)
    table = {}
    models = [("before (parent)", parent), ("after (fine-tuned)", after)]
    if float(getattr(parent.module, "gate_level", 0.0)) > 0:  # diagnostic: the networks without their gate
        for tag, lm in list(models):
            net = copy.deepcopy(lm.module)
            net.gate_level.zero_()
            models.append((f"{tag}, gate off (diagnostic)", dataclasses.replace(lm, module=net)))
    for tag, lm in models:
        y = den(lm, clean)
        row = {"clean_input_floor_db": float(np.mean([snr_db(c, yy) for c, yy in zip(clean, y)]))}
        for k in NOISE_KINDS:
            yk = den(lm, noisy[k])
            row[f"{k}_0dB_improvement_db"] = float(np.mean(
                [snr_db(c, yy) - snr_db(c, xx) for c, yy, xx in zip(clean, yk, noisy[k])]))
        table[tag] = row
        log(f"{tag}: {row}")
    b, a = table["before (parent)"], table["after (fine-tuned)"]
    acc = {"floor_change_db": a["clean_input_floor_db"] - b["clean_input_floor_db"],
           "bw_change_db": a["bw_0dB_improvement_db"] - b["bw_0dB_improvement_db"],
           "ma_change_db": a["ma_0dB_improvement_db"] - b["ma_0dB_improvement_db"]}
    acc["pass"] = acc["floor_change_db"] > 0 and acc["bw_change_db"] >= 0 and acc["ma_change_db"] >= 0
    return {"part": "ecg", "record": rec, "parent": str(parent.path), "parent_sha256": parent.sha256,
            "parent_training_records": sorted(trained),
            "parent_training_command": parent.meta["training"].get("command"),
            "finetune_seconds": round(t_ft, 1), "finetune_cpu_seconds": round(cpu_ft, 1), "segments": len(clean),
            "segment_seconds": args.seconds, "table": table, "acceptance": acc, "model": res["model"],
            "validation": res["validation"]}


# ------------------------------------------------------------------------------------------ nuclei

def part_nuclei(data: Path, args, out: Path) -> dict:
    from nuclei_sets import miccai_truth

    from engine import weights
    from engine.io import read
    from engine.tasks.nuclei.core import detect_array
    from engine.tasks.nuclei.evaluate import precision_recall_f1
    from engine.jobs import run_job
    from engine.training.finetune import finetune

    mic = data / "histo" / "miccai2015_seg"
    rows = list(csv.DictReader(open(mic / "pairs.csv")))
    work = Path(tempfile.mkdtemp(prefix="bench_ft_nuclei_"))
    info = {}
    for r in rows:
        stem = Path(r["image"]).stem
        os.symlink(mic / r["image"], work / r["image"])
        pts = miccai_truth(mic / r["mask_file"])
        with open(work / f"{stem}.csv", "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["x", "y"])
            w.writerows(pts.tolist())
        forty = r["magnification"].startswith("40")
        info[stem] = {"file": work / r["image"], "truth": pts, "mpp": 0.25 if forty else 0.5,
                      "radius": 12.0 if forty else 6.0}
    train = args.train_images
    test = [s for s in info if s not in train]
    log(f"MICCAI 2015: fine-tuning on {train}, testing on {test}")
    t0, c0 = time.time(), time.process_time()
    res = run_job(finetune("histo-nuclei", [str(info[s]["file"]) for s in train], out_dir=out,
                           name="histo-nuclei-miccai", steps=args.steps, device=args.device,
                           mpp=[info[s]["mpp"] for s in train], command="benchmarks/bench_finetune.py --part nuclei"),
                  _progress())
    t_ft, cpu_ft = time.time() - t0, time.process_time() - c0
    log(f"fine-tune: {t_ft:.0f} s wall, {cpu_ft:.0f} s CPU (fit {res['seconds_fit']:.0f} s); "
        f"operating point {res['detector']}")
    table = {}
    for tag, lm in (("before (histo-nuclei)", weights.load("histo-nuclei")),
                    ("after (fine-tuned)", weights.load(res["model"]))):
        det = lm.meta["detector"]
        tp = fp = fn = 0
        per = {}
        for s in test:
            rgb = read(str(info[s]["file"])).array
            xy, _ = detect_array(lm.module, rgb, scale=info[s]["mpp"] / float(lm.meta.get("mpp", 0.5)),
                                 threshold=det["threshold"], min_distance=det["min_distance"])
            r = precision_recall_f1(xy, info[s]["truth"], info[s]["radius"])
            per[s] = round(r["f1"], 4)
            tp, fp, fn = tp + r["tp"], fp + r["fp"], fn + r["fn"]
        table[tag] = {"precision": tp / max(1, tp + fp), "recall": tp / max(1, tp + fn),
                      "f1": 2 * tp / max(1, 2 * tp + fp + fn), "per_image_f1": per,
                      "threshold": det["threshold"], "min_distance": det["min_distance"]}
        log(f"{tag}: {table[tag]}")
    return {"part": "nuclei", "train_images": train, "test_images": test, "finetune_seconds": round(t_ft, 1),
            "finetune_cpu_seconds": round(cpu_ft, 1),
            "table": table, "f1_change": table["after (fine-tuned)"]["f1"] - table["before (histo-nuclei)"]["f1"],
            "model": res["model"], "validation": res["validation"]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=("ct", "ecg", "nuclei"), required=True)
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=REPO / "runs" / "finetune")
    ap.add_argument("--steps", type=int, default=None, help="default: finetune's own default for the model kind")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--record", default="100", help="ecg: the MIT-BIH record")
    ap.add_argument("--parent", default=None,
                    help="ecg: the parent ecg-dae (safetensors file or model name; default the shipped ecg-dae). "
                         "It must not list --record in its training.records: the shipped model was trained on "
                         "all 35 shared records, so use a CV fold model, e.g. scripts/train_ecg_dae.py --fold 0 "
                         "(fold 0 holds out 100 105 106 112 114 223 231)")
    ap.add_argument("--segments", type=int, default=25, help="ecg: test segments from minutes 5-30")
    ap.add_argument("--seconds", type=float, default=30.0, help="ecg: test segment length")
    ap.add_argument("--train-images", nargs=2, default=["image01", "image02"], help="nuclei: the 2 fine-tuning images")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    res = {"ct": part_ct, "ecg": part_ecg, "nuclei": part_nuclei}[args.part](args.data, args, args.out)
    res.update(total_seconds=round(time.time() - t0, 1), threads=args.threads, device=args.device,
               load_average_1_5_15min_at_end=os.getloadavg(), cpu_cores=os.cpu_count(),
               note="wall times on a machine shared with other jobs; CPU seconds are this process's (all threads)")
    print(json.dumps(res, indent=1, default=str))
    if args.json:
        args.json.write_text(json.dumps(res, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
