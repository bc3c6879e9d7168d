"""Transfer learning: adapt a bundled (or user) model to the user's own scanner, lab or patient.

:func:`finetune` is one generator (progress + cancel) for every model kind, chosen from the
parent's metadata (:func:`model_kind`):

* ``reconstruct`` (``ct-dae``, ``histo-cae``, ``eeg-cae``, any model ``train`` wrote): the user's
  NORMAL cases; random crops (images) or windows (signals) reconstructed with the parent's loss;
  afterwards a new anomaly calibration on the held-out normal cases.
* ``denoise`` (``ecg-dae``): the user's own ECG is the clean signal (minus its 200/600 ms
  median-filter baseline) and is mixed with recorded NSTDB noise shipped in ``resources/noise``
  (ODC-By, see its README) at SNRs of -6..24 dB (10 % of windows stay clean, so the model learns
  to leave this patient's beats alone); new anomaly calibration on the held-out part.
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

import hashlib
import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Generator, Sequence

import numpy as np

from engine.errors import ModelError, WeightsError
from engine.jobs import Progress, rescaled

__all__ = ["finetune", "calibrate_model", "model_kind", "KINDS", "fingerprints", "read_annotations",
           "split_units", "load_noise_resources"]

logger = logging.getLogger("engine")

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
        yield Progress((step + 1) / steps, f"{label} step {step + 1}/{steps} loss {history[-1]['loss'] if history else float(loss.detach()):.4g}",
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


# ------------------------------------------------------------------------------------- reconstruct

def _recon_units(items):
    """Units (each a file): CT planes, else whole inputs. Returns [(item, plane or None)]."""
    units = []
    for it in items:
        if it.modality == "ct":
            units += [(it, k) for k in range(it.array.shape[0])]
        else:
            units.append((it, None))
    return units


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


_MAX_IMAGE_PIXELS = 64_000_000


def _histology_model_units(it, prep) -> np.ndarray:
    """A whole H&E image in model units ``(3, H, W)`` at the model's expected µm/px (when both are known)."""
    import torch
    from torch.nn import functional as F

    from engine.inference.preprocess import rgb_to_model

    if it.shape[0] * it.shape[1] > _MAX_IMAGE_PIXELS:
        raise ModelError(f"{it.path}: {it.shape[1]} x {it.shape[0]} px is too large to fine-tune on whole; "
                         "export regions of normal tissue (e.g. 2000 x 2000 px tiles) and give those")
    a = rgb_to_model(it.read_region(0, 0, 0, it.shape[1], it.shape[0]), prep)
    want, have = prep.get("expected_mpp"), it.mpp
    if want and have and abs(have / want - 1) > 0.05:
        t = torch.from_numpy(np.ascontiguousarray(a))[None]
        f = have / want
        size = (max(8, int(round(a.shape[1] * f))), max(8, int(round(a.shape[2] * f))))
        a = F.interpolate(t, size=size, mode="bilinear", align_corners=False, antialias=f < 1)[0].numpy()
    return a


def _recon_recipe(parent, items, *, steps, lr, batch, freeze, val_fraction, device, seed, crop=None):
    """Reconstruction AE on normal cases. Returns (generator of Progress -> (module, _Plan, held_items))."""
    import torch

    from engine.training.datasets import ct_slices_model, signal_windows
    from engine.training.losses import reconstruction_loss

    meta = parent.meta
    prep, inp = meta["preprocessing"], meta["input"]
    mod = meta["modality"]
    sched = (meta.get("training") or {}).get("schedule") or {}
    plan = _Plan()
    signals = mod in ("ecg", "eeg")
    if signals:
        sigs = [_signal_at(s, float(inp["sfreq"])) for s in items]
        if len(sigs) == 1 and val_fraction > 0:
            (tr, ho), cut = _time_split(sigs[0], val_fraction)
            train_sigs, held = [tr], [ho]
            plan.held_out_note = f"the last {val_fraction:.0%} in time of {sigs[0].path} (from sample {cut})"
        else:
            tr_i, ho_i = split_units(len(sigs), val_fraction)
            train_sigs, held = [sigs[i] for i in tr_i], [sigs[i] for i in ho_i]
            plan.held_out_note = ", ".join(str(s.path) for s in held) or ""
        win = int(inp["window"])
        x = np.concatenate([signal_windows(s, prep, window=win, step=win // 4) for s in train_sigs])
        if len(x) == 0:
            raise ModelError(f"the training recordings are shorter than the model's window of {win} samples")
        crop_n = None
        plan.n_train, plan.n_held_out = len(train_sigs), len(held)
        held = held or train_sigs
    else:
        units = _recon_units(items)
        tr_i, ho_i = split_units(len(units), val_fraction)
        m = int(inp.get("size_multiple", 16))
        arrays = []
        for i in tr_i:
            it, k = units[i]
            if it.modality == "ct":
                arrays += ct_slices_model(it, prep, planes=[k])
            else:
                arrays.append(_histology_model_units(it, prep))
        held = []
        for i in ho_i:
            it, k = units[i]
            held.append((it, [k]) if k is not None else it)
        # merge CT planes of one volume into one (item, planes) entry
        merged: dict[int, tuple] = {}
        for h in held:
            if isinstance(h, tuple):
                merged.setdefault(id(h[0]), (h[0], []))[1].extend(h[1])
        held = [v for v in merged.values()] + [h for h in held if not isinstance(h, tuple)]
        plan.held_out_note = "; ".join(
            f"{h[0].path} planes {h[1]}" if isinstance(h, tuple) else str(h.path) for h in held)
        plan.n_train, plan.n_held_out = len(tr_i), len(ho_i)
        if not held:  # nothing held out: validate and calibrate on the training inputs (recorded)
            held = [it for it in items]
        small = min(min(a.shape[1:]) for a in arrays)
        crop_n = int(crop or sched.get("crop") or 128)
        crop_n = max(m, min(crop_n, small - small % m))
        x = arrays
    loss_name = sched.get("loss", "mse")
    base_loss = reconstruction_loss(loss_name)
    rng = np.random.default_rng(seed)

    def batch_fn(step):
        if signals:
            idx = rng.integers(0, len(x), batch)
            xb = x[idx].copy()
            flip = rng.random(batch) < 0.5
            xb[flip] = xb[flip][..., ::-1]
        else:
            xb = np.empty((batch, x[0].shape[0], crop_n, crop_n), np.float32)
            for j in range(batch):
                a = x[int(rng.integers(len(x)))]
                y0 = int(rng.integers(0, a.shape[1] - crop_n + 1))
                x0 = int(rng.integers(0, a.shape[2] - crop_n + 1))
                c = a[:, y0:y0 + crop_n, x0:x0 + crop_n]
                xb[j] = c[:, :, ::-1] if rng.random() < 0.5 else c
        t = torch.from_numpy(np.ascontiguousarray(xb))
        return t, t

    def loss_fn(module, xb, yb):
        return base_loss(module(xb).float(), yb)

    def job():
        module = _copy_module(parent)
        torch.manual_seed(seed)
        n_trained = _apply_freeze(module, freeze)
        yield Progress(0.0, f"fine-tuning {n_trained} parameters on {plan.n_train} normal unit(s)")
        plan.history = yield from _fit(module, batch_fn, loss_fn, steps=steps, lr=lr, device=device,
                                       label="fine-tune")
        return module, plan, held, "normal"
    return job()


def _recon_validation(parent, after_loaded, held, *, device) -> Generator[Progress, None, tuple]:
    """Before/after on the held-out normals: raw error and calibrated statistics; new calibration."""
    from engine.inference.anomaly import anomaly_stats, apply_calibration, calibrate
    from engine.inference.calibration import normal_error_values

    vb, va = [], []
    for i, h in enumerate(held):
        data, planes = h if isinstance(h, tuple) else (h, None)
        vb.append(normal_error_values(parent, data, planes=planes, device=device))
        va.append(normal_error_values(after_loaded, data, planes=planes, device=device))
        yield Progress((i + 1) / max(1, len(held)), f"validated {i + 1}/{len(held)} held-out input(s)")
    vb, va = np.concatenate(vb), np.concatenate(va)
    cal_after = calibrate(va)
    before = {"raw_error_mean": float(vb.mean()),
              **{k: v for k, v in anomaly_stats(apply_calibration(vb, parent.meta.get("calibration"))).items()}}
    after = {"raw_error_mean": float(va.mean()),
             **{k: v for k, v in anomaly_stats(apply_calibration(va, cal_after)).items()}}
    return before, after, cal_after


# ------------------------------------------------------------------------------------- ECG DAE

def load_noise_resources(kind: str) -> np.ndarray:
    """NSTDB noise excerpt *kind* (bw, ma, em) shipped in ``resources/noise``: ``(2, n)`` float32."""
    from engine._shared.resources import resources_dir

    p = resources_dir() / "noise" / f"nstdb_{kind}.npy"
    if not p.exists():
        raise ModelError(f"{p}: the NSTDB noise needed to fine-tune ecg-dae is missing from this installation")
    return np.load(p, allow_pickle=False).astype(np.float32)


def _baseline(x: np.ndarray, fs: float) -> np.ndarray:
    from scipy.ndimage import median_filter

    k1, k2 = int(round(0.2 * fs)) | 1, int(round(0.6 * fs)) | 1
    size = lambda k: (1,) * (x.ndim - 1) + (k,)  # noqa: E731
    return median_filter(median_filter(x, size=size(k1), mode="nearest"), size=size(k2), mode="nearest")


def _snr_db(clean, x) -> float:
    err = float(np.sum((np.asarray(x, np.float64) - clean) ** 2))
    return float(10 * np.log10(np.sum(np.asarray(clean, np.float64) ** 2) / max(err, 1e-30)))


NOISE_KINDS = ("bw", "ma", "em")
_NOISE_TRAIN = 0.75  # first 75 % of each shipped excerpt for training mixes, the rest for validation


def _noise_parts(part: str) -> dict[str, np.ndarray]:
    out = {}
    for k in NOISE_KINDS:
        n = load_noise_resources(k)
        cut = int(n.shape[1] * _NOISE_TRAIN)
        out[k] = n[:, :cut] if part == "train" else n[:, cut:]
    return out


def _noise_seg(noise: np.ndarray, n: int, rng) -> np.ndarray:
    ch = int(rng.integers(noise.shape[0]))
    s = int(rng.integers(0, noise.shape[1] - n + 1))
    seg = noise[ch, s:s + n].astype(np.float64)
    return seg - seg.mean()


def _dae_recipe(parent, items, *, steps, lr, batch, freeze, val_fraction, device, seed):
    import torch

    meta = parent.meta
    fs = float(meta["input"]["sfreq"])
    win = int((meta.get("training") or {}).get("window") or 1024)
    plan = _Plan()
    sigs = [_signal_at(s, fs) for s in items]
    if len(sigs) == 1 and val_fraction > 0:
        (tr, ho), cut = _time_split(sigs[0], val_fraction)
        train_sigs, held = [tr], [ho]
        plan.held_out_note = f"the last {val_fraction:.0%} in time of {sigs[0].path} (from sample {cut})"
    else:
        tr_i, ho_i = split_units(len(sigs), val_fraction)
        train_sigs, held = [sigs[i] for i in tr_i], [sigs[i] for i in ho_i]
        plan.held_out_note = ", ".join(str(s.path) for s in held)
    plan.n_train, plan.n_held_out = len(train_sigs), len(held)
    held = held or train_sigs
    recs = []
    for s in train_sigs:
        raw = np.nan_to_num(s.data.astype(np.float64))
        if raw.shape[1] < win + 1:
            raise ModelError(f"{s.path}: shorter than one training window ({win} samples at {fs:g} Hz)")
        recs.append((raw, raw - _baseline(raw, fs)))
    noise = _noise_parts("train")
    rng = np.random.default_rng(seed)

    def batch_fn(step):
        xs, cs = [], []
        for _ in range(batch):
            raw, ref = recs[int(rng.integers(len(recs)))]
            ch = int(rng.integers(raw.shape[0]))
            s0 = int(rng.integers(0, raw.shape[1] - win + 1))
            c = ref[ch, s0:s0 + win].copy()
            own = raw[ch, s0:s0 + win] - ref[ch, s0:s0 + win]
            c -= c.mean()
            own = own - own.mean()
            g = math.exp(rng.uniform(-0.5, 0.5)) * (-1 if rng.random() < 0.15 else 1)
            c, own = c * g, own * g
            x = c.copy()
            if rng.random() >= 0.1:  # 10 % stay clean: leave this patient's beats alone
                nz = _noise_seg(noise[NOISE_KINDS[int(rng.integers(3))]], win, rng)
                snr = rng.uniform(-6.0, 24.0)
                k = math.sqrt(float(np.sum(c ** 2)) / (float(np.sum(nz ** 2)) * 10 ** (snr / 10) + 1e-12))
                x = x + k * nz
            if rng.random() < 0.3:
                x = x + own
            m = x.mean()
            xs.append(x - m)
            cs.append(c - m)
        return (torch.from_numpy(np.asarray(xs, np.float32)[:, None]),
                torch.from_numpy(np.asarray(cs, np.float32)[:, None]))

    def loss_fn(module, xb, cb):
        err = ((module(xb) - cb) ** 2).sum(-1)
        return (10 * torch.log10(err / ((cb ** 2).sum(-1) + 1e-8) + 1e-5)).mean()

    def job():
        module = _copy_module(parent)
        torch.manual_seed(seed)
        n_trained = _apply_freeze(module, freeze)
        yield Progress(0.0, f"fine-tuning {n_trained} parameters on {plan.n_train} ECG recording(s)")
        plan.history = yield from _fit(module, batch_fn, loss_fn, steps=steps, lr=lr, device=device,
                                       label="fine-tune")
        return module, plan, held, "ecg"
    return job()


def ecg_denoise_metrics(loaded, signals, *, seconds: float = 10.0, n_segments: int = 12, seed: int = 0,
                        snr_in: float = 0.0, noise: dict | None = None, device="cpu") -> dict[str, float]:
    """Clean-input floor (SNR of the output against the clean reference when the clean reference goes in)
    and SNR improvement at *snr_in* dB per noise kind, over segments of the first channel of *signals*.

    Clean = the recording minus its 200/600 ms median baseline, minus the segment mean;
    noise = the validation part of the shipped NSTDB excerpts (or *noise*: ``{kind: (ch, n)}``).
    """
    from engine.data import Signal
    from engine.inference.windows import infer_signal
    from engine.jobs import run_job

    fs = float(loaded.meta["input"]["sfreq"])
    n = int(seconds * fs)
    m = int(2 * fs)
    rng = np.random.default_rng(seed)
    noise = noise or _noise_parts("val")
    clean = []
    per = max(1, n_segments // max(1, len(signals)))
    for s in signals:
        s = _signal_at(s, fs)
        if s.n_samples < n + 2 * m + 1:
            continue
        for _ in range(per):
            a = int(rng.integers(m, s.n_samples - n - m))
            x = np.nan_to_num(s.read(a - m, a + n + m)[0].astype(np.float64))
            c = (x - _baseline(x, fs))[m:m + n]
            clean.append(c - c.mean())
    if not clean:
        raise ModelError(f"the held-out ECG is shorter than one {seconds:g}-s validation segment")
    clean = np.asarray(clean)

    def run(batch):
        sig = Signal.from_array(batch.astype(np.float32), sfreq=fs, modality="ecg", path="validation")
        return run_job(infer_signal(loaded, sig, device=device)).astype(np.float64)

    out = run(clean)
    res = {"floor_db": float(np.mean([_snr_db(c, y) for c, y in zip(clean, out)])), "n_segments": len(clean)}
    for kind in NOISE_KINDS:
        noisy = []
        for c in clean:
            nz = _noise_seg(noise[kind], n, rng)
            k = math.sqrt(float(np.sum(c ** 2)) / (float(np.sum(nz ** 2)) * 10 ** (snr_in / 10)))
            noisy.append(c + k * nz)
        noisy = np.asarray(noisy)
        y = run(noisy)
        res[f"{kind}_{snr_in:+g}dB_improvement_db"] = float(np.mean(
            [_snr_db(c, yy) - _snr_db(c, xx) for c, yy, xx in zip(clean, y, noisy)]))
    return res


# ------------------------------------------------------------------------------------- nuclei

def read_annotations(path: str | os.PathLike) -> np.ndarray:
    """``(N, 2)`` x, y points from a CSV (``x``, ``y`` columns) or a (QuPath) GeoJSON of points.

    GeoJSON: a FeatureCollection, a list of features (QuPath's export) or one geometry; ``Point``
    and ``MultiPoint`` geometries give their points, polygons their vertex mean (a nucleus outline).
    """
    from engine.errors import ReadError
    from engine.tasks.nuclei.evaluate import read_points_csv

    p = Path(path)
    if p.suffix.lower() == ".csv":
        return read_points_csv(p)
    try:
        doc = json.loads(p.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReadError(str(p), f"not a readable GeoJSON file ({exc})") from None
    feats = doc if isinstance(doc, list) else doc.get("features", [doc]) if isinstance(doc, dict) else []
    pts: list[tuple[float, float]] = []

    def geom(g):
        if not isinstance(g, dict):
            return
        t, c = g.get("type"), g.get("coordinates")
        if t == "Point":
            pts.append((float(c[0]), float(c[1])))
        elif t == "MultiPoint":
            pts.extend((float(q[0]), float(q[1])) for q in c)
        elif t == "Polygon" and c:
            ring = np.asarray(c[0], float)[:, :2]
            pts.append(tuple(ring[:-1].mean(0)) if len(ring) > 1 else tuple(ring[0]))
        elif t == "GeometryCollection":
            for gg in g.get("geometries", []):
                geom(gg)
    for f in feats:
        geom(f.get("geometry") if isinstance(f, dict) and "geometry" in f else f)
    return np.asarray(pts, np.float64).reshape(-1, 2)


def _annotation_for(image_path: Path) -> Path | None:
    for suffix in (".csv", ".geojson", ".json", ".points.csv"):
        for cand in (image_path.with_suffix(suffix), image_path.parent / (image_path.stem + suffix)):
            if cand.exists() and cand != image_path:
                return cand
    return None


_RGB_FROM_HED = np.array([[0.65, 0.70, 0.29], [0.07, 0.99, 0.11], [0.27, 0.57, 0.78]])


def _hed_jitter(x, gen, sigma: float = 0.05, bias: float = 0.05):
    """Tellez-style stain augmentation: scale/shift each HED optical density per sample (torch only)."""
    import torch

    rgb_from_hed = torch.tensor(_RGB_FROM_HED, dtype=torch.float32)
    hed_from_rgb = torch.linalg.inv(rgb_from_hed)
    od = torch.log(x.clamp(min=1e-6)) / math.log(1e-6)
    hed = torch.einsum("nchw,cd->ndhw", od, hed_from_rgb)
    n = x.shape[0]
    a = 1 + (torch.rand(n, 3, 1, 1, generator=gen) * 2 - 1) * sigma
    b = (torch.rand(n, 3, 1, 1, generator=gen) * 2 - 1) * bias * 0.1
    od = torch.einsum("ndhw,dc->nchw", hed * a + b, rgb_from_hed)
    return torch.exp(od * math.log(1e-6)).clamp(0, 1)


def _gaussian_target(points, size: int, sigma: float):
    import torch

    yy, xx = torch.meshgrid(torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32),
                            indexing="ij")
    grid = torch.stack([xx.reshape(-1), yy.reshape(-1)], 1)
    out = torch.zeros(len(points), 1, size, size)
    for i, p in enumerate(points):
        if len(p):
            d2 = torch.cdist(grid, torch.as_tensor(p, dtype=torch.float32)).min(1).values ** 2
            out[i, 0] = torch.exp(-d2 / (2 * sigma ** 2)).reshape(size, size)
    return out


def _nuclei_inputs(items, paths, annotations, mpp, model_mpp):
    """``[(name, rgb at model mpp uint8, points at model mpp, scale)]`` for every annotated image."""
    import torch

    from engine.tasks.nuclei.core import rescale_tensor, to_tensor

    if isinstance(mpp, (list, tuple)) and len(mpp) not in (1, len(items)):
        raise ModelError(f"{len(mpp)} --mpp values for {len(items)} image(s); give one, or one per image")
    if isinstance(mpp, (list, tuple)) and len(mpp) == 1:
        mpp = mpp[0]
    if annotations is not None and len(annotations) != len(items):
        raise ModelError(f"{len(annotations)} annotation file(s) for {len(items)} image(s); give one per image, "
                         "in the same order")
    out = []
    for i, (it, p) in enumerate(zip(items, paths)):
        ann = annotations[i] if annotations is not None else None
        if ann is None:
            if not isinstance(p, (str, os.PathLike)) or (ann := _annotation_for(Path(p))) is None:
                raise ModelError(f"{p}: no point annotations; put {Path(str(p)).stem}.csv (x,y) or "
                                 f"{Path(str(p)).stem}.geojson beside it, or pass annotations")
        pts = ann if isinstance(ann, np.ndarray) else read_annotations(ann)
        m_i = mpp[i] if isinstance(mpp, (list, tuple)) else mpp
        img_mpp = float(m_i or it.mpp or model_mpp)
        scale = img_mpp / model_mpp
        rgb = it.read_region(0, 0, 0, it.shape[1], it.shape[0])
        t = rescale_tensor(to_tensor(rgb), scale)
        arr = (t[0].permute(1, 2, 0).clamp(0, 1) * 255).round().to(torch.uint8).numpy()
        f = np.array([t.shape[-1] / rgb.shape[1], t.shape[-2] / rgb.shape[0]])
        pts_m = (np.asarray(pts, np.float64).reshape(-1, 2) + 0.5) * f - 0.5
        out.append((str(getattr(it, "path", p)), arr, pts_m, scale, img_mpp))
    return out


def _nuclei_recipe(parent, items, paths, *, annotations, mpp, steps, lr, batch, freeze, val_fraction, device,
                   seed, patch: int = 96):
    import torch
    from torch.nn import functional as F

    from engine.tasks.nuclei.core import to_tensor

    meta = parent.meta
    det = meta.get("detector", {})
    model_mpp = float(meta.get("mpp", 0.5))
    sigma = float(det.get("sigma_px", 3.0))
    data = _nuclei_inputs(items, paths, annotations, mpp, model_mpp)
    tr_i, ho_i = split_units(len(data), val_fraction)
    fit, held = [data[i] for i in tr_i], [data[i] for i in ho_i]
    plan = _Plan(n_train=len(fit), n_held_out=len(held),
                 held_out_note=", ".join(h[0] for h in held))
    small = min(min(d[1].shape[:2]) for d in fit)
    patch = int(min(patch, small - small % 8))
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)

    def batch_fn(step):
        xs, pts = [], []
        for _ in range(batch):
            _, img, xy, _, _ = fit[int(rng.integers(len(fit)))]
            s = float(np.exp(rng.uniform(np.log(0.85), np.log(1.18))))
            crop = min(int(round(patch / s)), min(img.shape[:2]))
            y0 = int(rng.integers(0, img.shape[0] - crop + 1))
            x0 = int(rng.integers(0, img.shape[1] - crop + 1))
            t = to_tensor(img[y0:y0 + crop, x0:x0 + crop])
            t = F.interpolate(t, size=(patch, patch), mode="bilinear", align_corners=False, antialias=crop > patch)
            f = patch / crop
            p = (xy - [x0, y0] + 0.5) * f - 0.5
            p = p[(p[:, 0] > -8) & (p[:, 1] > -8) & (p[:, 0] < patch + 8) & (p[:, 1] < patch + 8)]
            if rng.random() < 0.5:
                t = t.flip(-1)
                p = np.stack([patch - 1 - p[:, 0], p[:, 1]], 1)
            for _ in range(int(rng.integers(4))):
                t = torch.rot90(t, 1, (-2, -1))
                p = np.stack([p[:, 1], patch - 1 - p[:, 0]], 1)
            xs.append(t[0])
            pts.append(p.reshape(-1, 2))
        x = _hed_jitter(torch.stack(xs), gen)
        return x, _gaussian_target(pts, patch, sigma)

    def loss_fn(module, xb, yb):
        return F.binary_cross_entropy_with_logits(module(xb), yb)

    def job():
        module = _copy_module(parent)
        torch.manual_seed(seed)
        n_trained = _apply_freeze(module, freeze)
        yield Progress(0.0, f"fine-tuning {n_trained} parameters on {len(fit)} annotated image(s)")
        plan.history = yield from _fit(module, batch_fn, loss_fn, steps=steps, lr=lr, device=device,
                                       label="fine-tune", weight_decay=1e-4)
        return module, plan, (held or fit), "nuclei"
    return job()


def _nuclei_validation(parent, module, held, *, device) -> Generator[Progress, None, tuple]:
    """F1 before (parent operating point) / after (re-tuned operating point) on the held-out images."""
    from engine.tasks.nuclei.core import pooled_counts, probability_map, to_tensor, tune_operating_point

    det = parent.meta.get("detector", {})
    radius = float(det.get("radius_px", 6.0))
    maps_b, maps_a, truths = [], [], []
    for i, (_, img, pts, _, _) in enumerate(held):
        x = to_tensor(img)
        maps_b.append(probability_map(parent.module, x).numpy())
        maps_a.append(probability_map(module, x).numpy())
        truths.append(pts)
        yield Progress((i + 1) / len(held), f"validated {i + 1}/{len(held)} image(s)")

    def score(maps, th, md):
        tp, fp, fn = (int(v) for v in pooled_counts(maps, truths, threshold=th, min_distance=md, radius=radius))
        return {"precision": tp / max(1, tp + fp), "recall": tp / max(1, tp + fn),
                "f1": 2 * tp / max(1, 2 * tp + fp + fn), "tp": tp, "fp": fp, "fn": fn,
                "threshold": th, "min_distance": md}
    th0, md0 = float(det.get("threshold", 0.5)), int(det.get("min_distance", 4))
    before = score(maps_b, th0, md0)
    _, th1, md1 = tune_operating_point(maps_a, truths, radius=radius)
    after = score(maps_a, th1, md1)
    after["at_parent_operating_point"] = score(maps_a, th0, md0)
    return before, after, {"threshold": th1, "min_distance": md1}


# ------------------------------------------------------------------------------------- seizure

def _read_labels(labels, paths) -> list[int]:
    if labels is None:
        raise ModelError("eeg-seizure fine-tuning needs labels: a CSV file,label (1 = seizure, 0 = not) "
                         "or {file: label}")
    if isinstance(labels, (str, os.PathLike)):
        import csv

        with open(labels, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh))
        if rows and not rows[0][-1].strip().lstrip("-").isdigit() and rows[0][-1].strip().lower() not in (
                "seizure", "normal", "ictal", "non-seizure"):
            rows = rows[1:]
        table = {}
        for r in rows:
            if len(r) >= 2:
                v = r[1].strip().lower()
                table[r[0].strip()] = 1 if v in ("1", "seizure", "ictal", "true", "yes") else 0
        labels = table
    out = []
    for p in paths:
        key = os.fspath(p) if isinstance(p, (str, os.PathLike)) else str(getattr(p, "path", p))
        for k in (key, Path(key).name, Path(key).stem):
            if k in labels:
                out.append(int(labels[k]))
                break
        else:
            raise ModelError(f"{key}: no label for this file in the labels given")
    return out


def _seizure_features(sig):
    from engine.inference.preprocess import resample
    from engine.tasks.score_segments.features import SEIZURE_FS, segment_features, window_spectra

    specs, extras = [], []
    for c in range(sig.data.shape[0]):
        x = np.nan_to_num(np.asarray(sig.data[c], np.float64))
        if abs(sig.sfreq - SEIZURE_FS) > 1e-6:
            x = resample(x[None], sig.sfreq, SEIZURE_FS, int(round(x.size * SEIZURE_FS / sig.sfreq)))[0]
        specs.append(window_spectra(x).astype(np.float32))
        extras.append(segment_features(x).astype(np.float32))
    return specs, extras


def _seizure_recipe(parent, items, paths, *, labels, steps, lr, batch, freeze, val_fraction, device, seed):
    import torch
    from torch.nn import functional as F

    ys = _read_labels(labels, paths)
    # stratified split by file: the last val_fraction of each class is held out
    tr_i, ho_i = [], []
    for cls in (0, 1):
        idx = [i for i, y in enumerate(ys) if y == cls]
        a, b = split_units(len(idx), val_fraction)
        tr_i += [idx[j] for j in a]
        ho_i += [idx[j] for j in b]
    if len({ys[i] for i in tr_i}) < 2:
        raise ModelError("eeg-seizure fine-tuning needs training segments of both classes (seizure and not)")
    feats = [_seizure_features(s) for s in items]
    plan = _Plan(n_train=len(tr_i), n_held_out=len(ho_i),
                 held_out_note=", ".join(str(paths[i]) for i in ho_i))
    n_win = min(s.shape[0] for i in tr_i for s in feats[i][0])
    xs, es, yl = [], [], []
    for i in tr_i:
        for sp, ex in zip(*feats[i]):
            xs.append(sp[:n_win])
            es.append(ex)
            yl.append(ys[i])
    X, E, Y = torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(es)), torch.tensor(yl, dtype=torch.float32)
    pos = float(Y.mean())
    weight = torch.where(Y > 0.5, 0.5 / max(pos, 1e-3), 0.5 / max(1 - pos, 1e-3))
    rng = np.random.default_rng(seed)

    def batch_fn(step):
        idx = torch.from_numpy(rng.integers(0, len(Y), min(batch, len(Y))))
        return torch.cat([X[idx].flatten(1), E[idx]], 1), idx

    def loss_fn(module, xe, idx):
        x = xe[:, :-E.shape[1]].reshape(len(idx), n_win, -1)
        e = xe[:, -E.shape[1]:]
        return F.binary_cross_entropy_with_logits(module(x, e), Y[idx].to(xe.device), weight=weight[idx].to(xe.device))

    def job():
        module = _copy_module(parent)
        torch.manual_seed(seed)
        n_trained = _apply_freeze(module, freeze)
        yield Progress(0.0, f"fine-tuning {n_trained} parameters on {len(tr_i)} labelled segment(s)")
        plan.history = yield from _fit(module, batch_fn, loss_fn, steps=steps, lr=lr, device=device,
                                       label="fine-tune", clip=None)
        held = [(feats[i], ys[i], paths[i]) for i in (ho_i or tr_i)]
        return module, plan, held, "seizure"
    return job()


def _seizure_validation(parent, module, held):
    import torch

    def scores(net):
        out = []
        for (specs, extras), _, _ in held:
            with torch.inference_mode():
                out.append(max(float(net(torch.from_numpy(sp)[None], torch.from_numpy(ex)[None])[0])
                               for sp, ex in zip(specs, extras)))
        return np.asarray(out)
    y = np.asarray([h[1] for h in held])
    th = float(parent.meta.get("threshold", 0.0))

    def metrics(s):
        pred = s > th
        sens = float(pred[y == 1].mean()) if (y == 1).any() else float("nan")
        spec = float((~pred[y == 0]).mean()) if (y == 0).any() else float("nan")
        m = {"sensitivity": sens, "specificity": spec, "balanced_accuracy": float(np.nanmean([sens, spec])),
             "n": int(len(y))}
        if len(set(y.tolist())) == 2:
            from sklearn.metrics import roc_auc_score

            m["auroc"] = float(roc_auc_score(y, s))
        return m
    return metrics(scores(parent.module)), metrics(scores(module))


# ------------------------------------------------------------------------------------- ECG beats

def _record_beats(sig, channel: int = 0):
    """``(samples, symbols, beats (n, 256) mV, valid)`` of one record with the score-beats task's own helpers."""
    from engine.jobs import run_job
    from engine.tasks.score_beats import _collect_beats, reference_beats

    samples, symbols, _ = run_job(reference_beats(sig, channel))
    beats, valid = run_job(_collect_beats(sig, samples, channel))
    return samples, symbols, beats, valid


def _beats_recipe(parent, items, *, steps, lr, batch, freeze, val_fraction, device, seed):
    """``ecg-beats``: reconstruct the user's NORMAL beats (AAMI N, or every beat of an unannotated record)."""
    import torch

    from engine.tasks.score_beats import beat_scale
    from engine.tasks.score_beats.beats import aami_class

    plan = _Plan()
    per = []
    for sig in items:
        samples, symbols, beats, valid = _record_beats(sig)
        scale = beat_scale(beats[valid])
        per.append((sig, samples, symbols, beats / scale, valid))
    if len(per) == 1 and val_fraction > 0:
        sig, samples, symbols, beats, valid = per[0]
        cut = int(round(sig.n_samples * (1 - val_fraction)))
        tr_mask, ho_mask = valid & (samples < cut), valid & (samples >= cut)
        train_sets = [(beats[tr_mask], [symbols[i] for i in np.flatnonzero(tr_mask)])]
        held = [(beats[ho_mask], [symbols[i] for i in np.flatnonzero(ho_mask)])]
        plan.held_out_note = f"the last {val_fraction:.0%} in time of {sig.path} (beats from sample {cut})"
    else:
        tr_i, ho_i = split_units(len(per), val_fraction)
        pick = lambda i: (per[i][3][per[i][4]], [per[i][2][j] for j in np.flatnonzero(per[i][4])])  # noqa: E731
        train_sets, held = [pick(i) for i in tr_i], [pick(i) for i in ho_i]
        plan.held_out_note = ", ".join(str(per[i][0].path) for i in ho_i)
    x = []
    for b, sy in train_sets:
        labelled = any(sy)
        keep = np.asarray([aami_class(q) == "N" for q in sy]) if labelled else np.ones(len(b), bool)
        x.append(b[keep])
    x = np.concatenate(x).astype(np.float32)
    if len(x) < 10:
        raise ModelError(f"only {len(x)} normal beats to fine-tune on; give a longer recording")
    plan.n_train, plan.n_held_out = len(train_sets), len(held)
    held = held or train_sets
    rng = np.random.default_rng(seed)

    def batch_fn(step):
        t = torch.from_numpy(x[rng.integers(0, len(x), batch)][:, None])
        return t, t

    def loss_fn(module, xb, yb):
        return ((module(xb) - yb) ** 2).mean()

    def job():
        module = _copy_module(parent)
        torch.manual_seed(seed)
        n_trained = _apply_freeze(module, freeze)
        yield Progress(0.0, f"fine-tuning {n_trained} parameters on {len(x)} normal beats")
        plan.history = yield from _fit(module, batch_fn, loss_fn, steps=steps, lr=lr, device=device,
                                       label="fine-tune")
        return module, plan, held, "beats"
    return job()


def _beats_validation(parent, module, held):
    """Normal-beat reconstruction MSE and (with labels) AUROC of the latent-distance score, N vs other beats."""
    import torch

    from engine.tasks.score_beats import latent_distance
    from engine.tasks.score_beats.beats import aami_class

    b = np.concatenate([h[0] for h in held]).astype(np.float32)
    sy = [q for h in held for q in h[1]]
    cls = np.asarray([aami_class(q) for q in sy])
    normal = (cls == "N") if any(sy) else np.ones(len(b), bool)

    def measure(net):
        with torch.inference_mode():
            xb = torch.from_numpy(b[:, None])
            err = ((net(xb) - xb) ** 2).mean(dim=(1, 2)).numpy()
            d = latent_distance(net.encode(xb).numpy())
        m = {"normal_beat_mse": float(err[normal].mean()) if normal.any() else float("nan"),
             "n_beats": int(len(b)), "n_abnormal": int((~normal & (cls != "")).sum())}
        ab = ~normal & (cls != "")
        if ab.any() and normal.any():
            from sklearn.metrics import roc_auc_score

            sel = normal | ab
            m["auroc_latent_abnormal_vs_normal"] = float(roc_auc_score(ab[sel], d[sel]))
        return m
    return measure(parent.module), measure(module)


# ------------------------------------------------------------------------------------- figures

def _heat(a: np.ndarray, vmax: float = 2.0) -> np.ndarray:
    """A black-red-yellow-white colour map of a calibrated map (0..vmax), uint8 RGB."""
    t = np.clip(np.nan_to_num(a) / vmax, 0, 1)
    r = np.clip(3 * t, 0, 1)
    g = np.clip(3 * t - 1, 0, 1)
    b = np.clip(3 * t - 2, 0, 1)
    return (np.stack([r, g, b], -1) * 255).astype(np.uint8)


def _label(img, text: str):
    from PIL import ImageDraw

    d = ImageDraw.Draw(img)
    d.rectangle([0, 0, 8 + 7 * len(text), 16], fill=(0, 0, 0))
    d.text((4, 2), text, fill=(255, 255, 255))
    return img


def _side_by_side(panels):
    from PIL import Image as PILImage

    h = max(p.height for p in panels)
    out = PILImage.new("RGB", (sum(p.width for p in panels) + 4 * (len(panels) - 1), h), (255, 255, 255))
    x = 0
    for p in panels:
        out.paste(p, (x, 0))
        x += p.width + 4
    return out


def _recon_figure(parent, after_loaded, held, cal_after, *, device):
    """Calibrated anomaly of one held-out unit: parent (its calibration) | adapted (the new one)."""
    from PIL import Image as PILImage

    from engine.inference.anomaly import apply_calibration
    from engine.inference.pipelines import image_pipeline
    from engine.jobs import run_job

    h = held[0]
    data, planes = h if isinstance(h, tuple) else (h, None)
    if data.modality not in ("ct", "histology"):
        return None
    planes = planes[len(planes) // 2:len(planes) // 2 + 1] if planes else None
    maps = []
    for lm, cal in ((parent, parent.meta.get("calibration")), (after_loaded, cal_after)):
        _, err, mask = run_job(image_pipeline(lm, data, device=device, calibrated=False, planes=planes))
        a = apply_calibration(np.asarray(err), cal)
        a = a[0] if a.ndim == 3 else a
        m = np.asarray(mask)
        m = m[0] if m.ndim == 3 else m
        maps.append((np.where(m, a, 0), m))
    panels = []
    for (a, m), tag in zip(maps, ("before (parent)", "after (adapted)")):
        im = PILImage.fromarray(_heat(a))
        if max(im.size) > 512:
            im.thumbnail((512, 512))
        frac = float((a[m] > 1).mean()) if m.any() else 0.0
        panels.append(_label(im, f"{tag}: {100 * frac:.1f} % of the mask above 1"))
    return _side_by_side(panels)


def _signal_figure(parent, after_loaded, held):
    """Five seconds of held-out ECG with ma noise at 0 dB: noisy, parent output, adapted output, clean."""
    from PIL import Image as PILImage
    from PIL import ImageDraw

    from engine.data import Signal
    from engine.inference.windows import infer_signal
    from engine.jobs import run_job

    fs = float(parent.meta["input"]["sfreq"])
    s = _signal_at(held[0], fs)
    n = int(5 * fs)
    m = int(2 * fs)
    if s.n_samples < n + 2 * m:
        return None
    a = s.n_samples // 2
    x = np.nan_to_num(s.read(a - m, a + n + m)[0].astype(np.float64))
    c = (x - _baseline(x, fs))[m:m + n]
    c -= c.mean()
    nz = _noise_seg(_noise_parts("val")["ma"], n, np.random.default_rng(0))
    noisy = c + math.sqrt(np.sum(c ** 2) / np.sum(nz ** 2)) * nz
    rows = [("noisy input (ma, 0 dB)", noisy)]
    for lm, tag in ((parent, "before (parent)"), (after_loaded, "after (adapted)")):
        sig = Signal.from_array(noisy[None].astype(np.float32), sfreq=fs, modality="ecg", path="figure")
        rows.append((tag, run_job(infer_signal(lm, sig))[0]))
    rows.append(("clean reference", c))
    W, H = 900, 110
    img = PILImage.new("RGB", (W, H * len(rows)), (255, 255, 255))
    d = ImageDraw.Draw(img)
    lim = float(np.percentile(np.abs(noisy), 99.5)) or 1.0
    for r, (tag, y) in enumerate(rows):
        ys = H * r + H / 2 - np.clip(y / lim, -1, 1) * (H / 2 - 8)
        xs = np.linspace(0, W - 1, len(y))
        d.line(list(zip(xs.tolist(), ys.tolist())), fill=(20, 60, 160), width=1)
        d.text((4, H * r + 2), tag, fill=(0, 0, 0))
    return img


def _nuclei_figure(parent, module, held, op_after):
    from PIL import Image as PILImage
    from PIL import ImageDraw

    from engine.tasks.nuclei.core import find_peaks, probability_map, to_tensor

    name, img, pts, _, _ = held[0]
    crop = img[:min(400, img.shape[0]), :min(400, img.shape[1])]
    det = parent.meta.get("detector", {})
    panels = []
    for net, th, md, tag in ((parent.module, det.get("threshold", 0.5), det.get("min_distance", 4), "before"),
                             (module, op_after["threshold"], op_after["min_distance"], "after")):
        xy, _ = find_peaks(probability_map(net, to_tensor(crop)).numpy(), threshold=th, min_distance=md)
        im = PILImage.fromarray(np.ascontiguousarray(crop))
        d = ImageDraw.Draw(im)
        for x, y in pts:
            if x < crop.shape[1] and y < crop.shape[0]:
                d.ellipse([x - 4, y - 4, x + 4, y + 4], outline=(0, 200, 0))
        for x, y in xy:
            d.line([x - 3, y, x + 3, y], fill=(230, 0, 0))
            d.line([x, y - 3, x, y + 3], fill=(230, 0, 0))
        panels.append(_label(im, f"{tag}: green truth, red detections"))
    return _side_by_side(panels)


# ------------------------------------------------------------------------------------- the task

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
    paths = list(data)
    items = _read_all(paths, modality, sfreq=sfreq, mpp=mpp)
    _check_modality(items, modality, paths)
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
    meta = json.loads(json.dumps(parent.meta))
    for k in ("sha256", "file", "format_version"):
        meta.pop(k, None)
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
            after["note"] = "calibrated on these same held-out cases, so fraction_above_1 is ~0.01 by construction"
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
        "parent_training": {k: v for k, v in (parent.meta.get("training") or {}).items() if k != "history"},
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
    from engine.inference.anomaly import apply_calibration, calibrate
    from engine.inference.calibration import normal_error_values

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
    paths = list(data)
    items = _read_all(paths, modality, sfreq=sfreq, mpp=mpp)
    _check_modality(items, modality, paths)
    prints = fingerprints(paths)
    vals = []
    for i, it in enumerate(items):
        vals.append(normal_error_values(parent, it, device=device or "cpu"))
        yield Progress(0.05 + 0.85 * (i + 1) / len(items), f"measured {i + 1}/{len(items)} input(s)")
    v = np.concatenate(vals)
    cal = calibrate(v, data=f"user's normal cases ({len(prints)} file(s)), python -m engine calibrate")
    old = float((apply_calibration(v, parent.meta.get("calibration")) > 1).mean())
    new = float((apply_calibration(v, cal) > 1).mean())
    name = name or f"{parent.name}-calibrated"
    meta = json.loads(json.dumps(parent.meta))
    for k in ("sha256", "file", "format_version"):
        meta.pop(k, None)
    meta.update(name=name, calibration=cal,
                parent={"name": parent.name, "sha256": parent.sha256, "file": Path(parent.path).name},
                description=f"{parent.name} re-calibrated on the user's normal cases")
    meta["training"] = {"kind": "calibrate", "command": command, "data": prints,
                        "parent_training": {k: v for k, v in (parent.meta.get("training") or {}).items()
                                            if k != "history"},
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

