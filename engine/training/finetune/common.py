"""Shared fine-tuning pieces: model kind, data fingerprints, the by-file split, parent loading,
encoder freezing, the one training loop (:func:`_fit`) every recipe runs, and the :class:`_Plan` a
recipe hands back to :func:`engine.training.finetune.finetune`."""
from __future__ import annotations

import hashlib
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Generator, Sequence

import numpy as np

from engine.errors import ModelError, WeightsError
from engine.jobs import Progress

KINDS = ("reconstruct", "denoise", "nuclei", "seizure", "beats")
FREEZE = ("none", "encoder")
#: Parameter-name prefixes that make up the encoder of each architecture (``freeze="encoder"``).
_ENCODER_PREFIXES = ("enc", "down", "to_latent", "stem", "encoder", "to_code", "layers")
_DEFAULTS = {  # steps, lr, batch
    "reconstruct": (300, 1e-3, 8),  # or half the parent's own training lr when its JSON records one
    "denoise": (300, 3e-4, 32),
    "nuclei": (300, 5e-4, 8),
    "seizure": (200, 1e-3, 64),
    "beats": (300, 3e-4, 64),
}


# ------------------------------------------------------------------------------------- helpers

def model_kind(meta: dict) -> str:
    """The fine-tuning recipe of a model: one of :data:`KINDS`; unsupported models are refused."""
    arch, task = meta.get("architecture"), meta.get("task")
    if arch == "beat-cae":
        return "beats"
    if arch == "signal-unet-dae":
        return "denoise"
    if arch == "nuclei-net":
        return "nuclei"
    if arch == "ssae-logreg":
        return "seizure"
    if task == "reconstruct" and isinstance(meta.get("input"), dict):
        return "reconstruct"
    raise ModelError(f"fine-tuning a {arch!r} model (task {task!r}) is not supported; supported: reconstruction "
                     "autoencoders (ct-dae, histo-cae, eeg-cae), ecg-dae, ecg-beats, histo-nuclei, eeg-seizure")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _files_of(path: Path) -> list[Path]:
    """The files that make up one input: the file, a folder's files, or a WFDB record's NAME.*."""
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file())
    if path.is_file():
        return [path]
    return sorted(p for p in path.parent.glob(path.name + ".*") if p.is_file())


def fingerprints(items: Sequence) -> list[dict[str, str]]:
    """``[{"file", "sha256"}]`` of every input file (paths) or in-memory array (data objects)."""
    out = []
    for it in items:
        if isinstance(it, (str, os.PathLike)):
            for f in _files_of(Path(it)):
                out.append({"file": str(f), "sha256": _sha256(f)})
        else:  # an in-memory Signal/Image: hash its samples
            arr = it.data if hasattr(it, "sfreq") else it.array
            out.append({"file": f"{getattr(it, 'path', '')} (in memory)",
                        "sha256": hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()})
    return out


def split_units(n: int, val_fraction: float) -> tuple[list[int], list[int]]:
    """``(train, held_out)`` indices: the last ``round(n * val_fraction)`` units (>= 1 when n >= 2)."""
    if not 0 <= val_fraction < 1:
        raise ModelError(f"val_fraction must be in [0, 1), not {val_fraction}")
    if n < 2 or val_fraction == 0:
        return list(range(n)), []
    k = min(n - 1, max(1, int(round(n * val_fraction))))
    return list(range(n - k)), list(range(n - k, n))


def _load_parent(model):
    from engine import weights

    if isinstance(model, weights.LoadedModel):
        return model
    spec = os.fspath(model)
    if Path(spec).suffix.lower() in (".json",):
        raise WeightsError(f"{spec}: give the .safetensors weights file, not its JSON")
    return weights.load(spec)


def _encoder_param(name: str) -> bool:
    parts = name.split(".")
    if parts[0] == "base" and len(parts) > 1:
        parts = parts[1:]
    return any(parts[0].startswith(p) for p in _ENCODER_PREFIXES)


def _apply_freeze(module, freeze: str) -> int:
    """Freeze the encoder's parameters (``freeze="encoder"``); return the number still trained."""
    if freeze not in FREEZE:
        raise ModelError(f"freeze must be one of {', '.join(FREEZE)}, not {freeze!r}")
    n = 0
    for name, p in module.named_parameters():
        p.requires_grad_(not (freeze == "encoder" and _encoder_param(name)))
        n += p.numel() if p.requires_grad else 0
    if n == 0:
        raise ModelError("freeze='encoder' left no parameter to train in this model")
    return n


def _fit(module, batch_fn: Callable, loss_fn: Callable, *, steps: int, lr: float, device, label: str,
         weight_decay: float = 0.0, clip: float | None = 1.0) -> Generator[Progress, None, list]:
    """Adam(W) with 5 % warm-up and cosine decay over *steps*; yields Progress; returns the loss history."""
    import torch

    params = [p for p in module.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    warm = max(1, steps // 20)
    history, run, t0 = [], [], time.perf_counter()
    module.to(device).train()
    for step in range(steps):
        f = (step + 1) / warm if step < warm else 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, steps - warm)))
        for g in opt.param_groups:
            g["lr"] = lr * max(f, 0.02)
        x, y = batch_fn(step)
        loss = loss_fn(module, x.to(device), y.to(device) if isinstance(y, torch.Tensor) else y)
        if not torch.isfinite(loss):
            raise ModelError(f"fine-tuning diverged (loss {float(loss)}) at step {step + 1}; lower --lr")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if clip:
            torch.nn.utils.clip_grad_norm_(params, clip)
        opt.step()
        run.append(float(loss.detach()))
        if (step + 1) % 25 == 0 or step == steps - 1:
            history.append({"step": step + 1, "loss": float(np.mean(run))})
            run = []
        el = time.perf_counter() - t0
        shown = history[-1]["loss"] if history else float(loss.detach())
        yield Progress((step + 1) / steps, f"{label} step {step + 1}/{steps} loss {shown:.4g}",
                       {"step": step + 1, "loss": float(loss.detach()), "eta_s": el / (step + 1) * (steps - step - 1)})
    module.to("cpu").eval()
    for p in module.parameters():
        p.requires_grad_(True)
    return history


def _loaded(parent, module, meta=None):
    from engine.weights import LoadedModel

    return LoadedModel(name=(meta or parent.meta).get("name", parent.name), path=parent.path, sha256="",
                       meta=meta or parent.meta, module=module.eval())


def _copy_module(parent):
    import copy

    return copy.deepcopy(parent.module).cpu()


@dataclass
class _Plan:
    """What a recipe hands back to :func:`finetune`: metadata updates, validation, figures."""

    meta_updates: dict[str, Any] = field(default_factory=dict)
    validation: dict[str, Any] = field(default_factory=dict)
    figure: Any = None  # a PIL image
    n_train: int = 0
    n_held_out: int = 0
    held_out_note: str = ""
    history: list = field(default_factory=list)


# ------------------------------------------------------------------------------------- reading

def _read_all(paths, modality_hint: str | None, sfreq=None, mpp=None) -> list:
    from engine.io import read

    out = []
    for p in paths:
        if not isinstance(p, (str, os.PathLike)):
            out.append(p)
            continue
        opts: dict[str, Any] = {}
        if modality_hint in ("ecg", "eeg"):
            opts["modality"] = modality_hint
        if sfreq:
            opts["sfreq"] = sfreq
        if mpp and modality_hint == "histology" and not isinstance(mpp, (list, tuple)):
            opts["mpp"] = mpp
        try:
            d = read(p, **opts)
        except TypeError:
            d = read(p)
        out.append(d)
    return out


def _check_modality(items, modality: str, paths) -> None:
    from engine.errors import ModalityMismatchError

    for it, p in zip(items, paths):
        if it.modality != modality:
            raise ModalityMismatchError(f"{p}: is {it.modality} data, but the model is a {modality} model")


# ------------------------------------------------------------------------------------- signals

def _signal_at(sig, sfreq: float):
    from engine.data import Signal
    from engine.inference.preprocess import resample

    if abs(sig.sfreq - sfreq) < 1e-6:
        return sig
    n = int(round(sig.n_samples * sfreq / sig.sfreq))
    return Signal.from_array(resample(sig.data, sig.sfreq, sfreq, n).astype(np.float32), sfreq=sfreq,
                             modality=sig.modality, channels=sig.channels, units=sig.units, path=sig.path)


def _time_split(sig, val_fraction: float):
    """A single recording: ``(first part, last val_fraction part)`` as two Signals (contiguous)."""
    from engine.data import Signal

    cut = int(round(sig.n_samples * (1 - val_fraction)))
    parts = []
    for a, b, tag in ((0, cut, "train part"), (cut, sig.n_samples, "held-out part")):
        parts.append(Signal.from_array(sig.read(a, b).astype(np.float32), sfreq=sig.sfreq, modality=sig.modality,
                                       channels=sig.channels, units=sig.units, path=f"{sig.path} [{tag}]"))
    return parts, cut


def _split_signals(sigs, val_fraction: float, plan: _Plan):
    """``(train, held_out)`` recordings: by file, or the last *val_fraction* in time of a single one."""
    if len(sigs) == 1 and val_fraction > 0:
        (tr, ho), cut = _time_split(sigs[0], val_fraction)
        plan.held_out_note = f"the last {val_fraction:.0%} in time of {sigs[0].path} (from sample {cut})"
        return [tr], [ho]
    tr_i, ho_i = split_units(len(sigs), val_fraction)
    held = [sigs[i] for i in ho_i]
    plan.held_out_note = ", ".join(str(s.path) for s in held)
    return [sigs[i] for i in tr_i], held


def _train_job(parent, plan: _Plan, batch_fn: Callable, loss_fn: Callable, *, what: str, held, tag: str,
               freeze: str, seed: int, steps: int, lr: float, device, prepare: Callable | None = None,
               **fit_options):
    """A recipe's training run: copy the parent, ``prepare(copy)``, freeze, :func:`_fit`; returns
    ``(module, plan, held, tag)``."""
    import torch

    module = _copy_module(parent)
    if prepare is not None:
        prepare(module)
    torch.manual_seed(seed)
    n_trained = _apply_freeze(module, freeze)
    yield Progress(0.0, f"fine-tuning {n_trained} parameters on {what}")
    plan.history = yield from _fit(module, batch_fn, loss_fn, steps=steps, lr=lr, device=device,
                                   label="fine-tune", **fit_options)
    return module, plan, held, tag


def _read_inputs(data: Sequence, modality: str, *, sfreq=None, mpp=None):
    """``(paths, items)``: *data* read for a *modality* model (refused when another modality)."""
    paths = list(data)
    items = _read_all(paths, modality, sfreq=sfreq, mpp=mpp)
    _check_modality(items, modality, paths)
    return paths, items


def _child_meta(parent) -> dict:
    """A deep copy of the parent's metadata without its file-specific keys."""
    import json

    meta = json.loads(json.dumps(parent.meta))
    for k in ("sha256", "file", "format_version"):
        meta.pop(k, None)
    return meta


def _parent_training(parent) -> dict:
    return {k: v for k, v in (parent.meta.get("training") or {}).items() if k != "history"}
