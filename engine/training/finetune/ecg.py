"""ECG recipes: ``denoise`` (ecg-dae, the user's ECG mixed with the shipped NSTDB noise),
:func:`ecg_denoise_metrics`, the noise resources, and ``beats`` (ecg-beats, normal beats)."""
from __future__ import annotations

import math

import numpy as np

from engine.errors import ModelError
from engine.training.finetune.common import _Plan, _signal_at, _split_signals, _train_job, split_units


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


#: The ``ecg-dae`` fine-tune recipe (steps, lr and batch are in common._DEFAULTS). These are the only copies;
#: chosen on the fine-tune's own held-out validation (README "Transfer learning", record 100 minutes 0-5).
DAE_CLEAN_FRACTION = 0.3  # windows that go in without noise: the output must equal the input (do no harm)
DAE_OWN_BASELINE_FRACTION = 0.3  # windows that also carry the recording's own baseline wander
DAE_SNR_DB = (-6.0, 24.0)
#: A gated parent (``gate_window`` > 0): the gate is off while fine-tuning (as scripts/train_ecg_dae.py
#: trains; a closed gate passes no gradient), then "parent" = the parent's level is put back, or
#: "recalibrate" = measured again by the parent's rule (its ``training.gate.quantile``) on clean
#: windows of the patient's training part.
DAE_GATE = "parent"
_GATE_WINDOWS = 256


def _gate_quantile(parent) -> float:
    return float(((parent.meta.get("training") or {}).get("gate") or {}).get("quantile", 0.99))


def _dae_recipe(parent, items, *, steps, lr, batch, freeze, val_fraction, device, seed):
    import torch

    meta = parent.meta
    fs = float(meta["input"]["sfreq"])
    win = int((meta.get("training") or {}).get("window") or 1024)
    plan = _Plan()
    sigs = [_signal_at(s, fs) for s in items]
    train_sigs, held = _split_signals(sigs, val_fraction, plan)
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

    def windows(n, rng, clean_frac, own_frac):
        xs, cs = [], []
        for _ in range(n):
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
            if rng.random() >= clean_frac:  # a clean_frac share stays clean: leave the beats alone
                nz = _noise_seg(noise[NOISE_KINDS[int(rng.integers(3))]], win, rng)
                snr = rng.uniform(*DAE_SNR_DB)
                k = math.sqrt(float(np.sum(c ** 2)) / (float(np.sum(nz ** 2)) * 10 ** (snr / 10) + 1e-12))
                x = x + k * nz
            if rng.random() < own_frac:
                x = x + own
            m = x.mean()
            xs.append(x - m)
            cs.append(c - m)
        return (torch.from_numpy(np.asarray(xs, np.float32)[:, None]),
                torch.from_numpy(np.asarray(cs, np.float32)[:, None]))

    def batch_fn(step):
        return windows(batch, rng, DAE_CLEAN_FRACTION, DAE_OWN_BASELINE_FRACTION)

    def loss_fn(module, xb, cb):
        err = ((module(xb) - cb) ** 2).sum(-1)
        return (10 * torch.log10(err / ((cb ** 2).sum(-1) + 1e-8) + 1e-5)).mean()

    gated = bool(getattr(parent.module, "gate_window", 0)) and float(parent.module.gate_level) > 0
    policy = DAE_GATE if gated else "none"
    if policy not in ("none", "recalibrate", "parent"):
        raise ModelError(f"unknown ecg-dae gate policy {policy!r}")
    parent_level = float(parent.module.gate_level) if gated else 0.0

    def prepare(module):
        if gated:
            module.gate_level.zero_()

    module, plan, held, tag = yield from _train_job(
        parent, plan, batch_fn, loss_fn, what=f"{plan.n_train} ECG recording(s)", held=held, tag="ecg",
        freeze=freeze, seed=seed, steps=steps, lr=lr, device=device, prepare=prepare)
    recipe = {"clean_fraction": DAE_CLEAN_FRACTION, "own_baseline_fraction": DAE_OWN_BASELINE_FRACTION,
              "snr_db": list(DAE_SNR_DB), "gate": policy}
    if policy == "recalibrate":
        clean, _ = windows(_GATE_WINDOWS, np.random.default_rng(4321), 1.0, 0.0)
        q = _gate_quantile(parent)
        level = module.calibrate_gate(clean, quantile=q)
        recipe["gate_level"] = {"parent_mV": parent_level, "mV": level, "quantile": q,
                                "on": f"{_GATE_WINDOWS} clean windows of the training part"}
    elif policy == "parent":
        module.gate_level.fill_(parent_level)
    plan.meta_updates["recipe"] = recipe
    return module, plan, held, tag


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

    return _train_job(parent, plan, batch_fn, loss_fn, what=f"{len(x)} normal beats", held=held,
                      tag="beats", freeze=freeze, seed=seed, steps=steps, lr=lr, device=device)


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
