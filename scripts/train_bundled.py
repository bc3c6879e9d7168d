"""Train, calibrate and register a bundled model from the shared data: ONE command per model.

    .venv/bin/python scripts/train_bundled.py ct-dae      [--data ../shared/data]
    .venv/bin/python scripts/train_bundled.py histo-cae
    .venv/bin/python scripts/train_bundled.py eeg-cae

Stages (default ``all``): ``train`` writes ``runs/<name>.raw.safetensors``; ``calibrate``
reads it, measures the anomaly scale on held-out NORMAL data, writes
``resources/models/<name>.safetensors`` + ``.json`` and registers it in the manifest.
Uses 1 torch thread (the development machine is shared); the sidecar's ``training``
field records this command, the data and the time taken.
"""
from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SPECS = {
    "ct-dae": dict(
        modality="ct", task="reconstruct",
        description="2-D coarse-noise denoising U-Net AE (Kascenas et al. 2022) on HU-windowed chest CT "
                    "slices at 1.4 mm/px; anomaly = error below 100 HU, median 9 + Gaussian 2 px inside the "
                    "lung mask (closed 20 mm), filtered inside the mask",
        architecture="denoising",
        hparams=dict(base="conv", base_hparams=dict(spatial_dims=2, in_channels=1, channels=[8, 16, 32, 64],
                                                    downsample="stride", upsample="transpose",
                                                    skip_connections=True, activation="leaky_relu"),
                     corruption={"kind": "coarse", "sigma": 0.2, "scale": 8}),
        preprocessing={"kind": "ct_window", "hu_min": -1000.0, "hu_max": 500.0, "target_spacing_mm": 1.4},
        input={"channels": 1, "tile": 256, "overlap": 64, "size_multiple": 16},
        # the map recipe chosen in benchmarks/bench_ct_maps.py (issue 15): lung mask closed 20 mm (takes in
        # juxta-pleural nodules), error filtered inside it (mediastinal edges do not bleed in), no error
        # above 100 HU (contrast-filled hilar vessels), median 9 px against vessel-edge speckle
        anomaly={"error": "abs", "median_size": 9, "smooth_sigma": 2.0, "mask": "ct_lung", "lung_closing_mm": 20.0,
                 "mask_before_smoothing": True, "error_clip_hu": 100.0},
        train=dict(epochs=20, batch_size=8, lr=2e-3, crop=128, repeats=16, loss="l1", patience=6),
    ),
    "histo-cae": dict(
        modality="histology", task="reconstruct",
        description="2-D convolutional AE (bottleneck, no skips) on H&E tiles of CRCHistoPhenotypes (train split); "
                    "anomaly = smoothed RGB error inside tissue",
        architecture="conv",
        hparams=dict(spatial_dims=2, in_channels=3, channels=[16, 32, 64], latent_channels=16,
                     downsample="stride", upsample="transpose", activation="leaky_relu"),
        preprocessing={"kind": "rgb", "scale": 255.0, "expected_mpp": 0.5},
        input={"channels": 3, "tile": 256, "overlap": 64, "size_multiple": 8},
        anomaly={"error": "abs", "median_size": 3, "smooth_sigma": 2.0, "mask": "tissue"},
        train=dict(epochs=8, batch_size=16, lr=2e-3, crop=64, n_tiles=2000, loss="mse", patience=3),
    ),
    "eeg-cae": dict(
        modality="eeg", task="reconstruct",
        description="1-D convolutional AE on per-channel 3.2-s EEG windows at 160 Hz (eegmmidb S001R03); "
                    "anomaly = smoothed per-sample error",
        architecture="conv",
        hparams=dict(spatial_dims=1, in_channels=1, channels=[16, 32, 64], latent_channels=16, kernel_size=7,
                     downsample="stride", upsample="transpose", activation="leaky_relu"),
        preprocessing={"kind": "signal", "units": "uV", "scale": 50.0, "baseline": "mean"},
        input={"channels": 1, "channel_mode": "per_channel", "window": 512, "overlap": 256, "sfreq": 160.0,
               "size_multiple": 8},
        anomaly={"error": "abs", "smooth_s": 0.1},
        train=dict(epochs=10, batch_size=64, lr=2e-3, step=256, loss="mse", patience=3),
    ),
}


# ---------------------------------------------------------------- CT slices (also for train_ct_maps.py, eval_ct_anomaly.py)

def lidc_marked_planes(img, case: Path) -> list[int]:
    """The planes of an LIDC-IDRI case (read as *img*) that carry any reader mark: nodule, small
    nodule or non-nodule, from the case's ``slices.csv``."""
    k_of = {u: k for k, u in enumerate(img.metadata["sop_instance_uids"])}
    rows = list(csv.DictReader(open(case / "slices.csv")))
    return [k_of[r["sop_instance_uid"]] for r in rows if r["readers_nodule"] != "0"
            or r["small_nodule_marks"] != "0" or r["non_nodule_marks"] != "0"]


def common_size(slices, multiple: int) -> int:
    """The square side that holds every (C, H, W) slice, rounded up to *multiple*."""
    size = max(max(s.shape[-2:]) for s in slices)
    return size + (-size) % multiple


def pad_to(s, size: int):
    """Edge-pad a (C, H, W) slice at the bottom and right to (C, size, size)."""
    return np.pad(s, [(0, 0), (0, size - s.shape[1]), (0, size - s.shape[2])], mode="edge")


# ---------------------------------------------------------------- data per model

def ct_training_data(data: Path, spec: dict):
    """Lung-PET-CT-Dx A0002 slices with no box (and not next to one) + the 3 dcmqi liver slices.

    LIDC-IDRI-0001 is NOT used (it is the evaluation patient). Three unmarked A0002 slices
    are held out for validation and calibration.
    """
    from engine.inference.preprocess import pad_to_multiple
    from engine.io import read
    from engine.training.datasets import ct_slices_model

    case = data / "ct/lung_pet_ct_dx/Lung_Dx-A0002"
    img = read(str(case / "CT"))
    uids = img.metadata["sop_instance_uids"]
    marked = {r["sop_instance_uid"] for r in csv.DictReader(open(case / "slices.csv")) if r["label"]}
    marked_k = {k for k, u in enumerate(uids) if u in marked}
    clean = [k for k in range(len(uids)) if not ({k - 1, k, k + 1} & marked_k)]
    val_k = clean[2::6][:3]
    train_k = [k for k in clean if k not in val_k]
    prep = spec["preprocessing"]
    tr = ct_slices_model(img, prep, planes=train_k)
    liver = read(str(data / "ct/dcmqi_liver_ct3"))
    tr += ct_slices_model(liver, prep)
    va = ct_slices_model(img, prep, planes=val_k)
    m = spec["input"]["size_multiple"]
    size = common_size(tr + va, m)
    xtr = np.stack([pad_to(s, size) for s in tr])
    xva = np.stack([pad_to(pad_to_multiple(s, m), size) for s in va])
    info = {"train": f"{case.name} planes {train_k} (no box, not adjacent to a box) + dcmqi_liver_ct3 (3 slices)",
            "validation": f"{case.name} planes {val_k} (no box)", "test_patient_excluded": "LIDC-IDRI-0001"}
    return xtr, xva, info, {"image": img, "val_planes": val_k}


def histo_training_data(data: Path, spec: dict):
    from engine.inference.preprocess import rgb_to_model
    from engine.io import read
    from engine.training.datasets import image_tiles

    root = data / "histo/crchisto"
    split = {r["image"]: r["sfcn_opi_split"] for r in csv.DictReader(open(root / "split.csv"))}
    prep = spec["preprocessing"]
    tr = [rgb_to_model(read(str(root / n / f"{n}.png")).array, prep) for n, s in sorted(split.items()) if s == "train"]
    va = [rgb_to_model(read(str(root / n / f"{n}.png")).array, prep) for n, s in sorted(split.items()) if s != "train"]
    t = spec["train"]
    xtr = image_tiles(tr, t["crop"], t["n_tiles"], seed=0)
    xva = image_tiles(va, 128, 64, seed=1)
    info = {"train": f"crchisto split=train ({len(tr)} images), {t['n_tiles']} random {t['crop']}px tiles",
            "validation": f"crchisto split=validation ({len(va)} images)"}
    return xtr, xva, info, {"val_names": [n for n, s in sorted(split.items()) if s != "train"]}


def eeg_training_data(data: Path, spec: dict):
    from engine.io import read
    from engine.training.datasets import signal_windows

    sig = read(str(data / "eeg/eegmmidb/S001R03.edf"))
    prep, inp, t = spec["preprocessing"], spec["input"], spec["train"]
    n = sig.n_samples
    cut = int(n * 0.85)
    xtr = signal_windows(sig, prep, window=inp["window"], step=t["step"], stop=cut)
    xva = signal_windows(sig, prep, window=inp["window"], step=inp["window"], start=cut)
    info = {"train": f"eegmmidb S001R03.edf, 64 channels, samples [0, {cut}), windows of {inp['window']} "
                     f"every {t['step']}", "validation": f"S001R03.edf samples [{cut}, {n})",
            "calibration": "S001R04.edf (another run, never trained on)"}
    return xtr, xva, info, {}


def ct_calibration(loaded, data: Path, extra):
    from engine.inference.calibration import calibrate_on

    planes = extra["val_planes"]
    return calibrate_on(loaded, [(extra["image"], planes)],
                        data_note=f"Lung_Dx-A0002 held-out unmarked planes {planes}, inside the map's mask")


def histo_calibration(loaded, data: Path, extra):
    from engine.inference.calibration import calibrate_on
    from engine.io import read

    root = data / "histo/crchisto"
    imgs = [read(str(root / n / f"{n}.png")) for n in extra["val_names"]]
    return calibrate_on(loaded, imgs, data_note="crchisto validation split (10 images), inside the tissue mask")


def eeg_calibration(loaded, data: Path, extra):
    from engine.inference.calibration import calibrate_on
    from engine.io import read

    sig = read(str(data / "eeg/eegmmidb/S001R04.edf"))
    return calibrate_on(loaded, [sig], data_note="eegmmidb S001R04.edf (all channels), never trained on")


CALIBRATE = {"ct-dae": ct_calibration, "histo-cae": histo_calibration, "eeg-cae": eeg_calibration}
DATA = {"ct-dae": ct_training_data, "histo-cae": histo_training_data, "eeg-cae": eeg_training_data}


def stage_train(name: str, data: Path, runs: Path, epochs: int | None, resume: bool = False) -> Path:
    import torch

    from engine import weights
    from engine.jobs import run_job
    from engine.models import build_model
    from engine.training.datasets import RandomCropFlip
    from engine.training.loop import train

    spec = SPECS[name]
    t = dict(spec["train"])
    if epochs:
        t["epochs"] = epochs
    xtr, xva, info, _ = DATA[name](data, spec)
    augment = None
    if spec["modality"] == "ct":
        xtr = np.repeat(xtr, t["repeats"], axis=0)
        augment = RandomCropFlip(t["crop"], flips=(-1,))
    elif spec["modality"] == "histology":
        augment = RandomCropFlip(None, flips=(-1, -2))
    print(f"{name}: train {xtr.shape}, val {xva.shape}", flush=True)
    torch.manual_seed(0)
    model = build_model(spec["architecture"], **spec["hparams"])
    t0 = time.time()
    last = [0.0]

    def show(p):
        if time.time() - last[0] > 20 or p.fraction >= 1:
            last[0] = time.time()
            i = p.info
            print(f"  {p.fraction:5.1%} epoch {i.get('epoch')} loss {i.get('loss', 0):.5f} "
                  f"val {i.get('val_loss', float('nan')):.5f} eta {i.get('eta_s', 0):.0f}s", flush=True)

    res = run_job(train(model, xtr, xva, loss=t["loss"], epochs=t["epochs"], batch_size=t["batch_size"],
                        lr=t["lr"], seed=0, device="cpu", patience=t["patience"], augment=augment,
                        checkpoint_dir=runs / f"{name}.ckpt", resume=resume), show)
    secs = time.time() - t0
    meta = {k: spec[k] for k in ("modality", "task", "description", "architecture", "preprocessing",
                                 "input", "anomaly")}
    meta.update(name=name, hparams=model.hparams, metrics={"val_loss": res.metrics["best_val_loss"],
                                                           "epochs_run": res.metrics["epochs_run"]},
                training={"command": f".venv/bin/python scripts/train_bundled.py {name}", "data": info,
                          "seconds_train": round(secs, 1), "epochs": t["epochs"], "torch_threads": 1,
                          "device": "cpu", "schedule": t, "history": res.history})
    out = runs / f"{name}.raw.safetensors"
    weights.save(res.model, out, meta)
    print(f"{name}: trained in {secs:.0f} s -> {out}", flush=True)
    return out


def stage_calibrate(name: str, data: Path, runs: Path, out_dir: Path) -> Path:
    from engine import weights

    spec = SPECS[name]
    loaded = weights.load(runs / f"{name}.raw.safetensors")
    t0 = time.time()
    _, _, _, extra = DATA[name](data, spec)
    cal = CALIBRATE[name](loaded, data, extra)
    meta = dict(loaded.meta)
    meta.pop("format_version", None)
    meta["calibration"] = cal
    meta["training"] = {**meta["training"], "seconds_calibrate": round(time.time() - t0, 1)}
    out = out_dir / f"{name}.safetensors"
    weights.save(loaded.module, out, meta)
    weights.register_bundled(name, out, task=spec["task"], description=spec["description"])
    print(f"{name}: calibration {cal} -> {out} ({out.stat().st_size / 1e6:.2f} MB)", flush=True)
    return out


def stage_recipe(name: str, data: Path, out_dir: Path) -> Path:
    """Apply SPECS' anomaly recipe to the bundled *name* (network unchanged) and recalibrate it."""
    from engine import weights

    spec = SPECS[name]
    loaded = weights.load(name)
    meta = dict(loaded.meta)
    meta.pop("format_version", None)
    meta.update(anomaly=dict(spec["anomaly"]), description=spec["description"])
    loaded.meta["anomaly"] = meta["anomaly"]
    loaded.meta.pop("calibration", None)
    t0 = time.time()
    _, _, _, extra = DATA[name](data, spec)
    meta["calibration"] = CALIBRATE[name](loaded, data, extra)
    meta["training"] = {**meta["training"], "seconds_calibrate": round(time.time() - t0, 1),
                        "recipe_command": f".venv/bin/python scripts/train_bundled.py {name} --stage recipe"}
    out = out_dir / f"{name}.safetensors"
    weights.save(loaded.module, out, meta)
    weights.register_bundled(name, out, task=spec["task"], description=spec["description"])
    print(f"{name}: recipe {meta['anomaly']}, calibration {meta['calibration']} -> {out}", flush=True)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("name", choices=sorted(SPECS))
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--stage", choices=("all", "train", "calibrate", "recipe"), default="all",
                    help="recipe: re-apply SPECS' anomaly recipe to the bundled weights and recalibrate")
    ap.add_argument("--epochs", type=int, default=None, help="override the epoch count (tests)")
    ap.add_argument("--runs", default=str(REPO / "runs"))
    ap.add_argument("--resume", action="store_true", help="continue an interrupted training from runs/<name>.ckpt")
    ap.add_argument("--out", default=str(REPO / "resources" / "models"))
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(int(os.environ.get("LATENT_TRAIN_THREADS", "1")))
    data, runs = Path(args.data), Path(args.runs)
    runs.mkdir(parents=True, exist_ok=True)
    if args.stage in ("all", "train"):
        stage_train(args.name, data, runs, args.epochs, args.resume)
    if args.stage == "recipe":
        stage_recipe(args.name, data, Path(args.out))
    if args.stage in ("all", "calibrate"):
        stage_calibrate(args.name, data, runs, Path(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
