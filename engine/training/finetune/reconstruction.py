"""The ``reconstruct`` recipe: reconstruction autoencoders (ct-dae, histo-cae, eeg-cae, models
``train`` wrote) fine-tuned on the user's NORMAL cases, and their before/after validation."""
from __future__ import annotations

from typing import Generator

import numpy as np

from engine.errors import ModelError
from engine.jobs import Progress
from engine.training.finetune.common import _Plan, _signal_at, _split_signals, _train_job, split_units


def _recon_units(items):
    """Units (each a file): CT planes, else whole inputs. Returns [(item, plane or None)]."""
    units = []
    for it in items:
        if it.modality == "ct":
            units += [(it, k) for k in range(it.array.shape[0])]
        else:
            units.append((it, None))
    return units



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
        train_sigs, held = _split_signals(sigs, val_fraction, plan)
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

    return _train_job(parent, plan, batch_fn, loss_fn, what=f"{plan.n_train} normal unit(s)", held=held,
                      tag="normal", freeze=freeze, seed=seed, steps=steps, lr=lr, device=device)


def _recon_validation(parent, after_loaded, held, *, device) -> Generator[Progress, None, tuple]:
    """Before/after on the held-out normals: raw error and calibrated statistics; new calibration."""
    from engine.inference.anomaly import anomaly_stats, apply_calibration
    from engine.inference.calibration import calibrate_units, normal_error_units

    ub, ua = [], []
    for i, h in enumerate(held):
        data, planes = h if isinstance(h, tuple) else (h, None)
        ub += normal_error_units(parent, data, planes=planes, device=device)
        ua += normal_error_units(after_loaded, data, planes=planes, device=device)
        yield Progress((i + 1) / max(1, len(held)), f"validated {i + 1}/{len(held)} held-out input(s)")
    vb, va = np.concatenate(ub), np.concatenate(ua)
    cal_after = calibrate_units(ua)  # THE definition (engine.inference.anomaly), as calibrate and training use
    before = {"raw_error_mean": float(vb.mean()),
              **{k: v for k, v in anomaly_stats(apply_calibration(vb, parent.meta.get("calibration"))).items()}}
    after = {"raw_error_mean": float(va.mean()),
             **{k: v for k, v in anomaly_stats(apply_calibration(va, cal_after)).items()}}
    return before, after, cal_after
