"""Transfer learning: adapt a bundled (or user) model to the user's own scanner, lab or patient.

:func:`finetune` is one generator (progress + cancel) for every model kind, chosen from the
parent's metadata (:func:`model_kind`):

* ``reconstruct`` (``ct-dae``, ``histo-cae``, ``eeg-cae``, any model ``train`` wrote): the user's
  NORMAL cases; random crops (images) or windows (signals) reconstructed with the parent's loss;
  afterwards a new anomaly calibration on the held-out normal cases.
* ``denoise`` (``ecg-dae``): the user's own ECG is the clean signal (minus its 200/600 ms
  median-filter baseline) and is mixed with recorded NSTDB noise shipped in ``resources/noise``
  (ODC-By, see its README) at SNRs of -6..24 dB (30 % of windows stay clean, so the model learns
  to leave this patient's beats alone; the recipe constants are ``ecg.DAE_*``); a parent's
  do-no-harm gate is off while training and its level is put back afterwards; new anomaly
  calibration on the held-out part.
* ``nuclei`` (``histo-nuclei``): images with point annotations (CSV ``x,y`` or QuPath GeoJSON
  points, per image); Gaussian proximity targets, flips/rot90, scale and HED stain jitter; the
  peak threshold and minimum distance are re-tuned on the held-out images.
* ``beats`` (``ecg-beats``): the user's ECG records; the normal (AAMI N) beats of the annotations, or
  every detected beat of an unannotated record, are reconstructed (MSE, beats / the record's median
  beat amplitude, as the score-beats task feeds them).
* ``seizure`` (``eeg-seizure``): a few labelled segments (``labels``: ``{file: 0|1}`` or a CSV
  ``file,label``); binary cross-entropy on the segment logits.

The user's data are split BY FILE (never by window): the last ``val_fraction`` of the inputs
(in the order given; at least one when there are two or more) is held out. A CT series counts
each plane (= DICOM file) as one unit and holds out a contiguous block of planes at its end;
a single signal file holds out its last ``val_fraction`` in time as one contiguous block.
With nothing held out (``val_fraction=0`` or one image) the validation and calibration use
the training data and the JSON says so.

Writes ``out_dir/<name>.safetensors`` + ``<name>.json`` (the parent's metadata plus ``parent``:
name, sha256, file; ``training``: ``kind="finetune"``, data fingerprints (file names +
sha256), the held-out files, hyper-parameters, seconds; ``validation``: before/after on the
held-out part; ``figures``; the new ``calibration``) and ``<name>.before_after.png``.
"""
from __future__ import annotations

import logging
import math
import os
import time
from pathlib import Path
from typing import Any, Generator, Sequence

import numpy as np

from engine.errors import ModelError
from engine.jobs import Progress, rescaled
from engine.training.finetune.common import (
    _DEFAULTS,
    FREEZE,
    KINDS,
    _child_meta,
    _load_parent,
    _loaded,
    _parent_training,
    _read_inputs,
    fingerprints,
    model_kind,
    split_units,
)
from engine.training.finetune.ecg import (
    NOISE_KINDS,
    _beats_recipe,
    _beats_validation,
    _dae_recipe,
    ecg_denoise_metrics,
    load_noise_resources,
)
from engine.training.finetune.figures import _nuclei_figure, _recon_figure, _signal_figure
from engine.training.finetune.nuclei import _nuclei_recipe, _nuclei_validation, read_annotations
from engine.training.finetune.reconstruction import _recon_recipe, _recon_validation
from engine.training.finetune.seizure import _read_labels, _seizure_recipe, _seizure_validation

__all__ = ["finetune", "calibrate_model", "model_kind", "KINDS", "fingerprints", "read_annotations",
           "split_units", "load_noise_resources", "ecg_denoise_metrics", "FREEZE", "NOISE_KINDS"]

logger = logging.getLogger("engine")


def _default_name(parent_name: str) -> str:
    return f"{parent_name}-adapted"


def finetune(model, data: Sequence, *, out_dir: str | os.PathLike, name: str | None = None,
             steps: int | None = None, epochs: int | None = None, lr: float | None = None,
             freeze: str = "none", val_fraction: float = 0.2, device=None, seed: int = 0,
             batch_size: int | None = None, annotations: Sequence | None = None, labels=None,
             sfreq: float | None = None, mpp: float | None = None, command: str = "",
             ) -> Generator[Progress, None, dict[str, Any]]:
    """Fine-tune *model* (bundled name, user model name, ``.safetensors`` file or LoadedModel) on *data*.

    *data* are paths (files/folders/WFDB records) or already read Image/Signal objects. Returns a
    summary: ``model`` (path), ``sha256``, ``parent``, ``validation`` (before/after), ``figures``,
    ``calibration``, ``seconds``. See the module docstring for the recipes and the split.
    """
    import torch

    from engine import weights
    from engine._shared.device import choose_device

    t0 = time.time()
    if steps is not None and epochs is not None:
        raise ModelError("give --steps or --epochs, not both")
    if not data:
        raise ModelError("no input data given")
    parent = _load_parent(model)
    kind = model_kind(parent.meta)
    d_steps, d_lr, d_batch = _DEFAULTS[kind]
    batch = int(batch_size or d_batch)
    if lr is None and kind == "reconstruct":
        parent_lr = ((parent.meta.get("training") or {}).get("schedule") or {}).get("lr")
        d_lr = 0.5 * float(parent_lr) if parent_lr else d_lr
    lr = float(lr if lr is not None else d_lr)
    if not lr > 0:
        raise ModelError(f"lr must be > 0, not {lr}")
    dev = choose_device(device)
    name = name or _default_name(parent.name)
    if not name or any(c in name for c in "/\\:") or name.startswith("."):
        raise ModelError(f"invalid model name {name!r}")
    modality = parent.meta.get("modality")
    yield Progress(0.0, f"reading {len(data)} input(s)")
    paths, items = _read_inputs(data, modality, sfreq=sfreq, mpp=mpp)
    yield Progress(0.02, "fingerprinting the inputs")
    prints = fingerprints(paths)
    if epochs is not None:
        if epochs < 1:
            raise ModelError(f"epochs must be >= 1, not {epochs}")
        steps = None  # resolved per recipe below
    if steps is not None and steps < 1:
        raise ModelError(f"steps must be >= 1, not {steps}")
    n_steps = steps or d_steps
    if epochs is not None:
        n_steps = max(1, epochs * _steps_per_epoch(kind, items, parent.meta, batch))
    common = dict(steps=n_steps, lr=lr, batch=batch, freeze=freeze, val_fraction=val_fraction, device=dev, seed=seed)
    torch.manual_seed(seed)
    if kind == "reconstruct":
        job = _recon_recipe(parent, items, **common)
    elif kind == "denoise":
        job = _dae_recipe(parent, items, **common)
    elif kind == "beats":
        job = _beats_recipe(parent, items, **common)
    elif kind == "nuclei":
        job = _nuclei_recipe(parent, items, paths, annotations=annotations, mpp=mpp, **common)
    else:
        job = _seizure_recipe(parent, items, paths, labels=labels, **common)
    t_fit = time.time()
    module, plan, held, tag = yield from rescaled(job, 0.03, 0.85)
    t_fit = time.time() - t_fit
    held_note = plan.held_out_note or "none held out: validated on the training data"
    meta = _child_meta(parent)
    parent_info = {"name": parent.name, "sha256": parent.sha256, "file": Path(parent.path).name,
                   "metrics": parent.meta.get("metrics", {})}
    if "parent" in parent.meta:  # adapted from an adapted model: keep the lineage
        parent_info["parent"] = parent.meta["parent"]
    after_loaded = _loaded(parent, module, {**meta, "name": name})
    yield Progress(0.86, f"validating on the held-out part ({held_note})")
    figure = None
    if tag in ("normal", "ecg"):
        if tag == "ecg":
            before = ecg_denoise_metrics(parent, held, device=dev)
            after = ecg_denoise_metrics(after_loaded, held, device=dev)
            from engine.inference.calibration import calibrate_on

            cal = calibrate_on(after_loaded, held, data_note=f"fine-tuning held-out ECG: {held_note}")
            figure = _signal_figure(parent, after_loaded, held)
        else:
            before, after, cal = yield from rescaled(_recon_validation(parent, after_loaded, held, device=dev),
                                                     0.86, 0.97)
            cal["data"] = f"fine-tuning held-out normal cases: {held_note}"
            after["note"] = ("calibrated on these same held-out cases, so fraction_above_1 is at most ~0.01 by "
                             "construction (0.01 with one unit; lower with several: see calibration.definition)")
            figure = _recon_figure(parent, after_loaded, held, cal, device=dev)
        meta["calibration"] = cal
    elif tag == "nuclei":
        before, after, op = yield from rescaled(_nuclei_validation(parent, module, held, device=dev), 0.86, 0.97)
        meta["detector"] = {**meta.get("detector", {}), **op,
                            "tuned_on": f"fine-tuning held-out images: {held_note}"}
        meta["mpp"] = parent.meta.get("mpp", 0.5)
        figure = _nuclei_figure(parent, module, held, op)
    elif tag == "beats":
        before, after = _beats_validation(parent, module, held)
    else:
        before, after = _seizure_validation(parent, module, held)
    meta.update(name=name, parent=parent_info,
                description=f"{parent.name} adapted to the user's data ({len(prints)} file(s))",
                validation={"held_out": held_note, "before": before, "after": after},
                metrics={"validation_after": after})
    meta["training"] = {
        "kind": "finetune", "recipe": kind, "command": command,
        "data": prints, "n_train_units": plan.n_train, "n_held_out_units": plan.n_held_out,
        "held_out": held_note,
        "hyperparameters": {"steps": n_steps, "epochs": epochs, "lr": lr, "batch_size": batch, "freeze": freeze,
                            "val_fraction": val_fraction, "seed": seed, "device": str(dev),
                            "mpp": mpp, "sfreq": sfreq},
        "history": plan.history, "seconds_fit": round(t_fit, 1),
        "parent_training": _parent_training(parent),
        **plan.meta_updates,
    }
    if kind == "seizure":
        meta["training"]["labels"] = {str(p): int(y) for p, y in zip(paths, _read_labels(labels, paths))}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.safetensors"
    figures = []
    if figure is not None:
        fig_path = out / f"{name}.before_after.png"
        figure.save(fig_path)
        figures.append(fig_path.name)
    meta["figures"] = figures
    meta["training"]["seconds"] = round(time.time() - t0, 1)
    digest = weights.save(module, path, meta)
    yield Progress(1.0, f"saved {path.name}")
    return {"model": str(path), "name": name, "sha256": digest, "kind": kind,
            "parent": {"name": parent.name, "sha256": parent.sha256}, "validation": meta["validation"],
            "figures": [str(out / f) for f in figures], "calibration": meta.get("calibration"),
            "detector": meta.get("detector") if kind == "nuclei" else None,
            "seconds": meta["training"]["seconds"], "seconds_fit": round(t_fit, 1)}


def _steps_per_epoch(kind, items, meta, batch) -> int:
    """One epoch = every training window/patch (non-overlapping) seen once."""
    if kind == "seizure":
        return max(1, math.ceil(len(items) / batch))
    n = 0
    for it in items:
        if hasattr(it, "sfreq"):
            win = int(meta.get("input", {}).get("window") or 1024) if kind == "reconstruct" else 1024
            n += max(1, it.n_samples // win) * len(it.channels)
        else:
            tile = 128 if kind == "reconstruct" else 96
            planes = it.array.shape[0] if it.modality == "ct" and it.array is not None and it.array.ndim == 3 else 1
            n += planes * max(1, (it.shape[-2] // tile) * (it.shape[-1] // tile)) if it.modality == "ct" else \
                max(1, (it.shape[0] // tile) * (it.shape[1] // tile))
    return max(1, math.ceil(n / batch))


def calibrate_model(model, data: Sequence, *, out_dir: str | os.PathLike, name: str | None = None,
                    sfreq: float | None = None, mpp: float | None = None, device=None, command: str = "",
                    ) -> Generator[Progress, None, dict[str, Any]]:
    """Re-calibrate the anomaly scale of *model* on the user's NORMAL cases (no training).

    Writes ``out_dir/<name>.safetensors`` (the same weights) + JSON with the new ``calibration``,
    ``parent`` and the data fingerprints; returns a summary with the fraction of the cases' values
    above 1 under the old and the new scale.
    """
    from engine import weights
    from engine.inference.anomaly import apply_calibration
    from engine.inference.calibration import calibrate_units, normal_error_units

    t0 = time.time()
    parent = _load_parent(model)
    if "calibration" not in parent.meta and model_kind(parent.meta) not in ("reconstruct", "denoise"):
        raise ModelError(f"{parent.name} has no anomaly scale to calibrate")
    if model_kind(parent.meta) not in ("reconstruct", "denoise"):
        raise ModelError(f"{parent.name} ({parent.meta.get('task')}) has no anomaly scale; use finetune instead")
    if not data:
        raise ModelError("no input data given")
    modality = parent.meta.get("modality")
    yield Progress(0.0, f"reading {len(data)} input(s)")
    paths, items = _read_inputs(data, modality, sfreq=sfreq, mpp=mpp)
    prints = fingerprints(paths)
    units = []
    for i, it in enumerate(items):
        units += normal_error_units(parent, it, device=device or "cpu")
        yield Progress(0.05 + 0.85 * (i + 1) / len(items), f"measured {i + 1}/{len(items)} input(s)")
    v = np.concatenate(units)
    # THE definition of the scale (engine.inference.anomaly.calibrate), as finetune and training use
    cal = calibrate_units(units, data_note=f"user's normal cases ({len(prints)} file(s)), python -m engine calibrate")
    old = float((apply_calibration(v, parent.meta.get("calibration")) > 1).mean())
    new = float((apply_calibration(v, cal) > 1).mean())
    name = name or f"{parent.name}-calibrated"
    meta = _child_meta(parent)
    meta.update(name=name, calibration=cal,
                parent={"name": parent.name, "sha256": parent.sha256, "file": Path(parent.path).name},
                description=f"{parent.name} re-calibrated on the user's normal cases")
    meta["training"] = {"kind": "calibrate", "command": command, "data": prints,
                        "parent_training": _parent_training(parent),
                        "seconds": round(time.time() - t0, 1)}
    meta["validation"] = {"fraction_above_1_parent_scale": old, "fraction_above_1_new_scale": new,
                          "note": "on the calibration cases themselves"}
    out = Path(out_dir)
    path = out / f"{name}.safetensors"
    digest = weights.save(parent.module, path, meta)
    yield Progress(1.0, f"saved {path.name}")
    return {"model": str(path), "name": name, "sha256": digest, "calibration": cal,
            "parent": {"name": parent.name, "sha256": parent.sha256},
            "fraction_above_1": {"parent_scale": old, "new_scale": new}, "seconds": round(time.time() - t0, 1)}

