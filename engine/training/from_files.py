"""Train an autoencoder on a user's own files and save it as a Latent model (a generator).

With two or more inputs the LAST one is held out: it gives the validation loss (early
stopping) and the anomaly calibration. With one input a random 10 % of its patches or
windows is the validation split and the calibration is measured on that same file
(recorded in the model's ``calibration.data`` so nobody mistakes it for held-out data).
The CLI (``python -m engine train``) and the GUI drive the same :func:`train_on_files`.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Generator, Sequence

import numpy as np

from engine.errors import ModalityMismatchError, ModelError
from engine.jobs import Progress, rescaled

__all__ = ["FAMILIES", "MODALITIES", "modality_defaults", "read_inputs", "training_arrays", "train_on_files"]

#: ``--family`` choices: the autoencoder families of the literature this product builds on.
#: ``sparse`` is the sparse convolutional AE (same as ``sparse-conv``); ``stacked-sparse`` is the
#: fully connected stack trained greedily layer by layer, on patches/windows of ``patch``/``window``.
FAMILIES = ("conv", "sparse", "sparse-conv", "stacked-sparse", "denoising", "contractive", "vae")
MODALITIES = ("ct", "histology", "ecg", "eeg")


def modality_defaults(modality: str, *, window: int = 512) -> tuple[dict, dict, dict]:
    """``(preprocessing, input, anomaly)`` metadata of a new model for *modality*."""
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
        inp = {"channels": 1, "channel_mode": "per_channel", "window": window, "overlap": window // 2}
        an = {"error": "abs", "smooth_s": 0.05}
    return prep, inp, an


def read_inputs(paths: Sequence[str | os.PathLike], modality: str, sfreq: float | None = None) -> list:
    """Read every input; one of another modality is refused naming the file."""
    from engine.io import read

    opts: dict[str, Any] = {"sfreq": sfreq} if sfreq else {}
    if modality in ("ecg", "eeg"):
        opts["modality"] = modality
    out = []
    for p in paths:
        d = read(p, **opts)
        if d.modality != modality:
            raise ModalityMismatchError(f"{p}: is {d.modality} data, but --modality {modality} was given")
        out.append(d)
    return out


def training_arrays(items, modality: str, prep: dict, inp: dict, *, patch: int, n_patches: int, window: int,
                    seed: int) -> np.ndarray:
    """Model-unit patches (images) or windows (signals) of *items*, ``(n, channels, *spatial)`` float32."""
    from engine.inference.preprocess import resample, rgb_to_model
    from engine.training.datasets import ct_slices_model, image_tiles, signal_windows

    if modality in ("ct", "histology"):
        if modality == "ct":
            imgs = [s for it in items for s in ct_slices_model(it, prep)]
        else:
            imgs = [rgb_to_model(it.read_region(0, 0, 0, it.shape[1], it.shape[0]), prep) for it in items]
        small = min(min(a.shape[1:]) for a in imgs)
        if small < patch:
            raise ModelError(f"--patch {patch} is larger than the smallest input ({small} px)")
        return image_tiles(imgs, patch, n_patches, seed=seed)
    xs = []
    for s in items:
        if abs(s.sfreq - inp["sfreq"]) > 1e-6:
            from engine.data import Signal

            s = Signal.from_array(resample(s.data, s.sfreq, inp["sfreq"], int(round(s.n_samples * inp["sfreq"] / s.sfreq))),
                                  sfreq=inp["sfreq"], modality=s.modality, channels=s.channels, units=s.units, path=s.path)
        xs.append(signal_windows(s, prep, window=window, step=window // 2))
    x = np.concatenate(xs)
    if len(x) == 0:
        raise ModelError(f"the recordings are shorter than one --window of {window} samples")
    return x


def _architecture(family: str, base: dict, sd: int, corruption: str | None, noise: float | None,
                  *, patch_shape: int, hidden: Sequence[int]):
    """``(architecture, hparams, sparsity)`` of a new model of *family*."""
    from engine.models.corruption import CoarseNoise, GaussianNoise, MaskingNoise

    if family == "conv":
        return "conv", base, None
    if family in ("sparse", "sparse-conv"):
        return "sparse-conv", base, True
    if family == "contractive":
        return "contractive", base, None
    if family == "vae":
        return "vae", base, None
    if family == "stacked-sparse":
        return "stacked-sparse", dict(spatial_dims=sd, in_channels=base["in_channels"], patch_size=patch_shape,
                                      hidden=[int(h) for h in hidden]), True
    if family != "denoising":
        raise ModelError(f"unknown family {family!r}; valid: {', '.join(FAMILIES)}")
    kind = corruption or ("coarse" if sd == 2 else "gaussian")
    corr = {"coarse": lambda: CoarseNoise(0.2 if noise is None else noise, 8),
            "gaussian": lambda: GaussianNoise(0.1 if noise is None else noise),
            "masking": lambda: MaskingNoise(0.25 if noise is None else noise)}[kind]()
    hp = dict(base="conv", base_hparams={**base, "skip_connections": sd == 2 and kind == "coarse"},
              corruption=corr.spec())
    return "denoising", hp, None


def train_on_files(paths: Sequence[str | os.PathLike], *, family: str, modality: str, out_dir: str | os.PathLike,
                   name: str | None = None, epochs: int = 10, batch_size: int = 16, lr: float = 1e-3,
                   patch: int = 64, n_patches: int = 1000, window: int = 512, sfreq: float | None = None,
                   corruption: str | None = None, noise: float | None = None,
                   channels: Sequence[int] = (16, 32, 64), hidden: Sequence[int] = (256, 64), seed: int = 0,
                   device=None, patience: int = 5, resume: bool = False, command: str = "") -> Generator[Progress, None, dict[str, Any]]:
    """Train a *family* autoencoder on *paths*, calibrate it, save ``out_dir/<name>.safetensors`` + JSON.

    Yields :class:`~engine.jobs.Progress` (training epochs, then calibration) and returns
    a summary: ``model`` (the weights path), ``sha256``, ``metrics``, ``calibration``.
    Checkpoints go to ``out_dir/<name>.ckpt/``; ``resume`` continues from the last one.
    ``channels`` are the convolutional families' feature channels per level; ``hidden`` the layer
    sizes of ``stacked-sparse`` (pre-trained greedily, then fine-tuned end to end as an AE).
    """
    import torch

    from engine import weights
    from engine.inference.calibration import calibrate_on
    from engine.models import build_model
    from engine.training.datasets import RandomCropFlip
    from engine.training.loop import train

    if family not in FAMILIES:
        raise ModelError(f"unknown family {family!r}; valid: {', '.join(FAMILIES)}")
    if family == "stacked-sparse" and resume:
        raise ModelError("--resume is not available for stacked-sparse (layer-wise training has no checkpoints)")
    if modality not in MODALITIES:
        raise ModelError(f"unknown modality {modality!r}; valid: {', '.join(MODALITIES)}")
    for opt, v in (("--patch", patch), ("--window", window)):
        if v < 8 or v % 8:
            raise ModelError(f"{opt} must be a multiple of 8, not {v}")
    name = name or f"{modality}-{family}"
    prep, inp, an = modality_defaults(modality, window=window)
    yield Progress(0.0, f"reading {len(paths)} input(s)")
    items = read_inputs(paths, modality, sfreq)
    if modality in ("ecg", "eeg"):
        inp["sfreq"] = float(items[0].sfreq)
    held = items[-1:] if len(items) > 1 else []
    train_items = items[:-1] if held else items
    sizes = dict(patch=patch, n_patches=n_patches, window=window)
    x = training_arrays(train_items, modality, prep, inp, seed=seed, **sizes)
    xv = training_arrays(held, modality, prep, inp, seed=seed + 1, **sizes) if held else None
    sd = 1 if modality in ("ecg", "eeg") else 2
    chans = [int(c) for c in channels]
    inp["size_multiple"] = 2 ** len(chans)
    base = dict(spatial_dims=sd, in_channels=inp["channels"], channels=chans, activation="leaky_relu",
                kernel_size=3 if sd == 2 else 7)
    patch_shape = patch if sd == 2 else window
    arch, hp, sparsity = _architecture(family, base, sd, corruption, noise, patch_shape=patch_shape, hidden=hidden)
    if arch == "stacked-sparse":  # a fixed-size dense model: tiles/windows of exactly its patch
        inp.update(size_multiple=1, **({"tile": patch, "overlap": patch // 4} if sd == 2 else {}))
    torch.manual_seed(seed)
    model = build_model(arch, **hp)
    out = Path(out_dir)
    t0 = time.time()
    if arch == "stacked-sparse":
        from engine.training.stacked import fine_tune, pretrain_layerwise

        common = dict(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, device=device, patience=patience)
        yield from rescaled(pretrain_layerwise(model, x, xv, sparsity=sparsity, **common), 0.0, 0.45,
                            prefix="pre-training ", info={})
        res = yield from rescaled(fine_tune(model, x, val_data=xv, **common), 0.45, 0.9, prefix="fine-tuning ",
                                  info={})
    else:
        res = yield from rescaled(
            train(model, x, xv, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, device=device,
                  patience=patience, sparsity=sparsity, checkpoint_dir=out / f"{name}.ckpt", resume=resume,
                  augment=RandomCropFlip(None, flips=(-1,) if sd == 1 else (-1, -2))),
            0.0, 0.9, info={})
    meta = {"name": name, "architecture": arch, "hparams": res.model.hparams, "modality": modality,
            "task": "reconstruct", "preprocessing": prep, "input": inp, "anomaly": an,
            "metrics": {"val_loss": res.metrics["best_val_loss"], "epochs_run": res.metrics["epochs_run"]},
            "training": {"command": command,
                         "data": [str(p) for p in paths], "seconds": round(time.time() - t0, 1),
                         "epochs": epochs, "seed": seed, "history": res.history}}
    path = out / f"{name}.safetensors"
    weights.save(res.model, path, meta)
    loaded = weights.load(path)
    yield Progress(0.9, "calibrating the anomaly scale")
    note = (f"held-out input {held[0].path}" if held else
            f"the training input itself ({items[0].path}); no held-out file was given")
    meta["calibration"] = calibrate_on(loaded, held or items[:1], data_note=note)
    meta["training"]["seconds"] = round(time.time() - t0, 1)
    digest = weights.save(res.model, path, meta)
    yield Progress(1.0, f"saved {path.name}")
    return {"model": str(path), "sha256": digest, "metrics": res.metrics, "calibration": meta["calibration"]}
