"""Signal inference: overlapping windows with overlap-add, streamed with ``Signal.read``.

Memory is bounded on long recordings (a 24-hour Holter): the outputs are float32
``(channels, n_samples)`` arrays (reconstruction, then anomaly) plus one ``(n_samples,)``
weight accumulator; the input is read window by window and never held whole.
If the recording's rate differs from the model's ``input.sfreq``, each window is
resampled to the model rate (``scipy.signal.resample_poly``) and the output mapped back.
Window edges are blended with raised-cosine ramps over the overlap (they sum to 1), so
resampling and padding artefacts at window edges are faded out.
"""
from __future__ import annotations

import logging
from typing import Generator

import numpy as np

from engine.errors import ModelError
from engine.inference.anomaly import anomaly_stats, apply_calibration, smooth_signal_error
from engine.inference.preprocess import resample, signal_from_model, signal_to_model, validate_meta
from engine.inference.tiles import SplitForward, ramp, tile_starts
from engine.jobs import Progress

__all__ = ["infer_signal", "signal_anomaly", "window_plan"]

logger = logging.getLogger("engine")


def window_plan(meta: dict, sfreq: float, n_samples: int, overlap: int | None = None) -> tuple[int, int, list[int]]:
    """``(window_in, overlap_in, starts)`` in INPUT samples for a model's window at *sfreq*."""
    inp = meta["input"]
    w_m = int(inp["window"])
    ov_m = int(inp.get("overlap", w_m // 2) if overlap is None else overlap)
    if not 0 <= ov_m < w_m:
        raise ModelError(f"overlap must be in [0, {w_m}) samples, not {ov_m}")
    ratio = float(sfreq) / float(inp["sfreq"])
    w_i = max(1, int(round(w_m * ratio)))
    ov_i = int(round(ov_m * ratio))
    return w_i, ov_i, tile_starts(n_samples, w_i, max(1, w_i - ov_i))


def infer_signal(loaded, signal, *, device=None, batch_size: int = 64, overlap: int | None = None,
                 workers: int | None = None) -> Generator[Progress, None, np.ndarray]:
    """Reconstruct (or denoise) *signal* with a 1-D model; return ``(channels, n)`` float32 in the signal's units.

    Parameters
    ----------
    loaded : engine.weights.LoadedModel
        A signal model following the :mod:`engine.inference.preprocess` schema.
    signal : engine.data.Signal
    batch_size : int
        Model inputs per forward pass (per-channel models: channel-windows).
    overlap : int, optional
        Overlap between windows in MODEL samples (default: the model's ``input.overlap``).
    workers : int, optional
        Threads forwarding parts of each CPU batch at once (:class:`engine.inference.tiles.SplitForward`;
        the same outputs; default 2 on a 2-core machine whose torch runs one intra-op thread, else 1).
    """
    from engine._shared.device import choose_device

    meta = loaded.meta
    validate_meta(meta, where=loaded.name)
    inp, prep = meta["input"], meta["preprocessing"]
    per_channel = inp.get("channel_mode", "per_channel") == "per_channel"
    n_ch, n = len(signal.channels), signal.n_samples
    if not per_channel and n_ch != int(inp["channels"]):
        raise ModelError(f"{loaded.name} expects {inp['channels']} channels, {signal.path} has {n_ch}")
    if n == 0:
        raise ModelError(f"{signal.path}: the recording has no samples")
    dev = choose_device(device)
    module = loaded.module.eval().to(dev)
    w_m, fs_m, fs_i = int(inp["window"]), float(inp["sfreq"]), float(signal.sfreq)
    w_i, ov_i, starts = window_plan(meta, fs_i, n, overlap)
    recon = np.zeros((n_ch, n), np.float32)
    wsum = np.zeros(n, np.float32)
    per_batch = max(1, batch_size // n_ch) if per_channel else max(1, batch_size)
    pending: list[tuple[int, np.ndarray, np.ndarray]] = []

    forward = SplitForward(module, dev, workers)

    def flush():
        xs = np.concatenate([p[1] for p in pending]) if per_channel else np.stack([p[1] for p in pending])
        out = forward(xs[:, None] if per_channel else xs)
        for j, (s, _, base) in enumerate(pending):
            y = out[j * n_ch:(j + 1) * n_ch, 0] if per_channel else out[j]
            y = signal_from_model(y, base, prep)
            y = resample(y, fs_m, fs_i, w_i)
            e = min(s + w_i, n)
            w = ramp(w_i, ov_i, taper_lo=s > 0, taper_hi=s + w_i < n)[: e - s]
            recon[:, s:e] += y[:, : e - s] * w
            wsum[s:e] += w
        pending.clear()

    # inference_mode is entered per batch (run_batch), never across a yield
    try:
        for i, s in enumerate(starts):
            x = signal.read(s, s + w_i)
            if x.shape[1] < w_i:
                x = np.pad(x, [(0, 0), (0, w_i - x.shape[1])], mode="edge")
            x = resample(x, fs_i, fs_m, w_m)
            xm, base = signal_to_model(x, prep)
            pending.append((s, xm, base))
            if len(pending) >= per_batch or i == len(starts) - 1:
                flush()
                yield Progress((i + 1) / len(starts), f"window {i + 1}/{len(starts)}{forward.note_suffix}")
    finally:
        forward.close()
    step = 1 << 20
    for a in range(0, n, step):
        recon[:, a:a + step] /= np.maximum(wsum[a:a + step], 1e-8)
    return recon


def signal_anomaly(loaded, signal, recon: np.ndarray, *, calibrated: bool = True,
                   chunk: int = 1 << 20) -> tuple[np.ndarray, dict[str, float]]:
    """Per-sample anomaly ``(channels, n)`` on the model's calibrated scale, computed chunk by chunk."""
    meta = loaded.meta
    prep, an = meta["preprocessing"], meta.get("anomaly", {})
    scale = float(prep.get("scale", 1.0))
    sm = float(an.get("smooth_s", 0.05))
    margin = max(1, int(round(sm * signal.sfreq)))
    cal = meta.get("calibration") if calibrated else None
    n = signal.n_samples
    out = np.zeros_like(recon, dtype=np.float32)
    for a in range(0, n, chunk):
        b = min(n, a + chunk)
        lo, hi = max(0, a - margin), min(n, b + margin)
        d = (signal.read(lo, hi) - recon[:, lo:hi]) / scale
        err = np.abs(d) if an.get("error", "abs") == "abs" else d * d
        err = smooth_signal_error(err, sfreq=signal.sfreq, smooth_s=sm)
        out[:, a:b] = apply_calibration(err[:, a - lo:a - lo + (b - a)], cal)
    return out, anomaly_stats(out)
