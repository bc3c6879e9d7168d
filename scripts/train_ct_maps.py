"""Train the CT anomaly-map variants compared in benchmarks/bench_ct_maps.py (issue 15).

    .venv/bin/python scripts/train_ct_maps.py VARIANT [--split a0002|lidc] [--epochs N]

Split ``a0002`` (the bundled recipe's data): Lung_Dx-A0002 planes with no box and not next to
one + the 3 dcmqi liver slices; LIDC-IDRI-0001 never seen (its nodule is the test). Split
``lidc``: LIDC-IDRI-0001 planes >= 10 planes from any reader mark + the liver slices;
Lung_Dx-A0002's boxes are the test. Writes ``runs/<variant>-<split>.raw.safetensors``
(uncalibrated; the benchmark calibrates on the split's held-out normal planes).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

import train_bundled as tb  # noqa: E402

BASE = dict(spatial_dims=2, in_channels=1, channels=[8, 16, 32, 64], downsample="stride", upsample="transpose",
            activation="leaky_relu")
LUNG_WINDOW = {"kind": "ct_window", "hu_min": -1000.0, "hu_max": 200.0, "target_spacing_mm": 1.4}
LUNG_MAP = {"error": "abs", "median_size": 5, "smooth_sigma": 2.0, "mask": "ct_lung", "lung_closing_mm": 20.0}


def _dae(sigma: float, scale: int) -> dict:
    return dict(architecture="denoising", hparams=dict(base="conv", base_hparams={**BASE, "skip_connections": True},
                                                       corruption={"kind": "coarse", "sigma": sigma, "scale": scale}))


VARIANTS = {
    # the shipped ct-dae's network, HU window and noise, for a like-for-like comparison
    "dae8-wide": dict(**_dae(0.2, 8), preprocessing=tb.SPECS["ct-dae"]["preprocessing"]),
    # soft-tissue window (contrast-filled vessels clip to the window top) + coarser, stronger noise
    "dae16-lung": dict(**_dae(0.4, 16), preprocessing=LUNG_WINDOW),
    "vae-lung": dict(architecture="vae", hparams={**BASE, "latent_channels": 16, "beta": 0.01},
                     preprocessing=LUNG_WINDOW),
    "cae-lung": dict(architecture="contractive", hparams={**BASE, "latent_channels": 16, "contractive_weight": 0.1},
                     preprocessing=LUNG_WINDOW),
}


def lidc_training_data(data: Path, spec: dict):
    """LIDC-IDRI-0001 planes >= 10 from any reader mark (every 2nd) + liver; 3 of them held out."""
    from engine.inference.preprocess import pad_to_multiple
    from engine.io import read
    from engine.training.datasets import ct_slices_model

    case = data / "ct/lidc_idri/LIDC-IDRI-0001"
    img = read(str(case))
    marked = tb.lidc_marked_planes(img, case)
    clean = [k for k in range(img.array.shape[0]) if min(abs(k - j) for j in marked) >= 10][::2]
    val_k = clean[1::5][:3]
    train_k = [k for k in clean if k not in val_k]
    prep = spec["preprocessing"]
    tr = ct_slices_model(img, prep, planes=train_k) + ct_slices_model(read(str(data / "ct/dcmqi_liver_ct3")), prep)
    va = ct_slices_model(img, prep, planes=val_k)
    m = spec["input"]["size_multiple"]
    size = tb.common_size(tr + va, m)
    info = {"train": f"LIDC-IDRI-0001 planes {train_k} (>= 10 planes from any reader mark) + dcmqi_liver_ct3",
            "validation": f"LIDC-IDRI-0001 planes {val_k}", "test_patient_excluded": "Lung_Dx-A0002"}
    xtr = np.stack([tb.pad_to(s, size) for s in tr])
    return (xtr, np.stack([tb.pad_to(pad_to_multiple(s, m), size) for s in va]), info,
            {"image": img, "val_planes": val_k})


def variant_spec(variant: str) -> dict:
    base = tb.SPECS["ct-dae"]
    v = VARIANTS[variant]
    return {**base, **v, "anomaly": dict(LUNG_MAP), "name": variant,
            "description": f"issue-15 CT map variant {variant}"}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("variant", choices=sorted(VARIANTS))
    ap.add_argument("--split", choices=("a0002", "lidc"), default="a0002")
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--runs", default=str(REPO / "runs"))
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(int(os.environ.get("LATENT_TRAIN_THREADS", "1")))
    name = f"{args.variant}-{args.split}"
    tb.SPECS[name] = variant_spec(args.variant)
    tb.DATA[name] = tb.ct_training_data if args.split == "a0002" else lidc_training_data
    runs = Path(args.runs)
    runs.mkdir(parents=True, exist_ok=True)
    tb.stage_train(name, Path(args.data), runs, args.epochs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
