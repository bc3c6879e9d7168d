"""``python -m engine train``: train an autoencoder on your own files and save it as a Latent model.

With two or more inputs the LAST one is held out: it gives the validation loss (early
stopping) and the anomaly calibration. With one input a random 10 % of its patches or
windows is the validation split and the calibration is measured on that same file
(recorded in the model's ``calibration.data`` so nobody mistakes it for held-out data).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

FAMILIES = ("conv", "sparse", "denoising")
MODALITIES = ("ct", "histology", "ecg", "eeg")


def register(sub) -> None:
    p = sub.add_parser("train", help="train a convolutional, sparse or denoising AE on your files")
    p.add_argument("--family", choices=FAMILIES, required=True)
    p.add_argument("--modality", choices=MODALITIES, required=True)
    p.add_argument("--data", nargs="+", required=True, metavar="PATH", help="input files/folders")
    p.add_argument("--out", required=True, help="output folder for NAME.safetensors + NAME.json")
    p.add_argument("--name", default=None, help="model name (default: <modality>-<family>)")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--patch", type=int, default=64, help="image patch side in pixels (multiple of 8)")
    p.add_argument("--n-patches", type=int, default=1000, help="random patches per epoch (images)")
    p.add_argument("--window", type=int, default=512, help="signal window in samples (multiple of 8)")
    p.add_argument("--sfreq", type=float, default=None, help="sampling rate for headerless signals")
    p.add_argument("--corruption", choices=("gaussian", "masking", "coarse"), default=None,
                   help="denoising family: noise model (default: coarse for images, gaussian for signals)")
    p.add_argument("--noise", type=float, default=None, help="corruption strength (sigma or fraction)")
    p.add_argument("--channels", default="16,32,64", help="feature channels per level")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None)
    p.add_argument("--patience", type=int, default=5)
    p.add_argument("--resume", action="store_true", help="continue from OUT/<name>.ckpt/last.safetensors")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--json", action="store_true", help="print the final metrics as JSON")
    p.set_defaults(func=run)


def _defaults(modality: str, args) -> tuple[dict, dict, dict]:
    if modality == "ct":
        prep = {"kind": "ct_window", "hu_min": -1000.0, "hu_max": 500.0, "target_spacing_mm": 1.4}
        inp = {"channels": 1, "tile": 256, "overlap": 64}
        an = {"error": "abs", "median_size": 5, "smooth_sigma": 2.0, "mask": "ct_body"}
    elif modality == "histology":
        prep = {"kind": "rgb", "scale": 255.0}
        inp = {"channels": 3, "tile": 256, "overlap": 64}
        an = {"error": "abs", "median_size": 3, "smooth_sigma": 2.0, "mask": "tissue"}
    else:
        prep = {"kind": "signal", "units": "mV" if modality == "ecg" else "uV",
                "scale": 1.0 if modality == "ecg" else 50.0, "baseline": "mean"}
        inp = {"channels": 1, "channel_mode": "per_channel", "window": args.window, "overlap": args.window // 2}
        an = {"error": "abs", "smooth_s": 0.05}
    return prep, inp, an


def _read_all(paths, modality, sfreq):
    from engine.errors import ModalityMismatchError
    from engine.io import read

    opts = {"sfreq": sfreq} if sfreq else {}
    if modality in ("ecg", "eeg"):
        opts["modality"] = modality
    out = []
    for p in paths:
        d = read(p, **opts)
        if d.modality != modality:
            raise ModalityMismatchError(f"{p}: is {d.modality} data, but --modality {modality} was given")
        out.append(d)
    return out


def _arrays(items, modality, prep, inp, args, *, seed):
    import numpy as np

    from engine.errors import ModelError
    from engine.inference.preprocess import resample, rgb_to_model
    from engine.training.datasets import ct_slices_model, image_tiles, signal_windows

    if modality in ("ct", "histology"):
        if modality == "ct":
            imgs = [s for it in items for s in ct_slices_model(it, prep)]
        else:
            imgs = [rgb_to_model(it.read_region(0, 0, 0, it.shape[1], it.shape[0]), prep) for it in items]
        small = min(min(a.shape[1:]) for a in imgs)
        if small < args.patch:
            raise ModelError(f"--patch {args.patch} is larger than the smallest input ({small} px)")
        return image_tiles(imgs, args.patch, args.n_patches, seed=seed)
    xs = []
    for s in items:
        if abs(s.sfreq - inp["sfreq"]) > 1e-6:
            from engine.data import Signal

            s = Signal.from_array(resample(s.data, s.sfreq, inp["sfreq"], int(round(s.n_samples * inp["sfreq"] / s.sfreq))),
                                  sfreq=inp["sfreq"], modality=s.modality, channels=s.channels, units=s.units, path=s.path)
        xs.append(signal_windows(s, prep, window=args.window, step=args.window // 2))
    x = np.concatenate(xs)
    if len(x) == 0:
        raise ModelError(f"the recordings are shorter than one --window of {args.window} samples")
    return x


def _command(args) -> str:
    """The equivalent command line (from the parsed options, so in-process calls are recorded too)."""
    parts = ["python -m engine train", f"--family {args.family}", f"--modality {args.modality}",
             "--data " + " ".join(args.data), f"--out {args.out}"]
    for opt in ("name", "epochs", "batch_size", "lr", "patch", "n_patches", "window", "sfreq", "corruption",
                "noise", "channels", "seed", "patience"):
        v = getattr(args, opt)
        if v is not None:
            parts.append(f"--{opt.replace('_', '-')} {v}")
    return " ".join(parts)


def run(args) -> int:
    import torch

    from engine import weights
    from engine.commands._progress import ProgressBar
    from engine.errors import ModelError
    from engine.inference.calibration import calibrate_on
    from engine.jobs import run_job
    from engine.models import build_model
    from engine.models.corruption import CoarseNoise, GaussianNoise, MaskingNoise
    from engine.training.datasets import RandomCropFlip
    from engine.training.loop import train

    if args.threads:
        torch.set_num_threads(args.threads)
    for name, v in (("--patch", args.patch), ("--window", args.window)):
        if v < 8 or v % 8:
            raise ModelError(f"{name} must be a multiple of 8, not {v}")
    mod = args.modality
    name = args.name or f"{mod}-{args.family}"
    prep, inp, an = _defaults(mod, args)
    items = _read_all(args.data, mod, args.sfreq)
    if mod in ("ecg", "eeg"):
        inp["sfreq"] = float(items[0].sfreq)
    held = items[-1:] if len(items) > 1 else []
    train_items = items[:-1] if held else items
    x = _arrays(train_items, mod, prep, inp, args, seed=args.seed)
    xv = _arrays(held, mod, prep, inp, args, seed=args.seed + 1) if held else None
    sd = 1 if mod in ("ecg", "eeg") else 2
    chans = [int(c) for c in args.channels.split(",") if c.strip()]
    inp["size_multiple"] = 2 ** len(chans)
    base = dict(spatial_dims=sd, in_channels=inp["channels"], channels=chans, activation="leaky_relu",
                kernel_size=3 if sd == 2 else 7)
    if args.family == "conv":
        arch, hp, sparsity = "conv", base, None
    elif args.family == "sparse":
        arch, hp, sparsity = "sparse-conv", base, True
    else:
        kind = args.corruption or ("coarse" if sd == 2 else "gaussian")
        strength = args.noise
        corr = {"coarse": lambda: CoarseNoise(0.2 if strength is None else strength, 8),
                "gaussian": lambda: GaussianNoise(0.1 if strength is None else strength),
                "masking": lambda: MaskingNoise(0.25 if strength is None else strength)}[kind]()
        arch, sparsity = "denoising", None
        hp = dict(base="conv", base_hparams={**base, "skip_connections": sd == 2 and kind == "coarse"},
                  corruption=corr.spec())
    torch.manual_seed(args.seed)
    model = build_model(arch, **hp)
    out = Path(args.out)
    bar = ProgressBar(f"train {name}")
    t0 = time.time()
    try:
        res = run_job(train(model, x, xv, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                            seed=args.seed, device=args.device, patience=args.patience, sparsity=sparsity,
                            checkpoint_dir=out / f"{name}.ckpt", resume=args.resume,
                            augment=RandomCropFlip(None, flips=(-1,) if sd == 1 else (-1, -2))), bar)
    finally:
        bar.close()
    meta = {"name": name, "architecture": arch, "hparams": res.model.hparams, "modality": mod,
            "task": "reconstruct", "preprocessing": prep, "input": inp, "anomaly": an,
            "metrics": {"val_loss": res.metrics["best_val_loss"], "epochs_run": res.metrics["epochs_run"]},
            "training": {"command": _command(args),
                         "data": [str(p) for p in args.data], "seconds": round(time.time() - t0, 1),
                         "epochs": args.epochs, "seed": args.seed, "history": res.history}}
    path = out / f"{name}.safetensors"
    weights.save(res.model, path, meta)
    loaded = weights.load(path)
    note = (f"held-out input {held[0].path}" if held else
            f"the training input itself ({items[0].path}); no held-out file was given")
    meta["calibration"] = calibrate_on(loaded, held or items[:1], data_note=note)
    meta["training"]["seconds"] = round(time.time() - t0, 1)
    digest = weights.save(res.model, path, meta)
    summary = {"model": str(path), "sha256": digest, "metrics": res.metrics, "calibration": meta["calibration"]}
    if args.json:
        print(json.dumps(summary, default=str))
    else:
        print(f"wrote {path} (sha256 {digest[:16]}…), best val loss {res.metrics['best_val_loss']:.5g} "
              f"after {res.metrics['epochs_run']} epochs, {time.time() - t0:.1f} s")
    return 0
