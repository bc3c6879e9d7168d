"""EEG segment features for the seizure detector (plain numpy on ``(n,)`` µV arrays at 173.61 Hz).

* :func:`window_spectra`: log power spectra of 512-sample Hann windows (hop 256),
  0.5-40 Hz, adjacent bins averaged in pairs (58 values per window) — the input of
  the stacked sparse autoencoder.
* :func:`segment_features`: 7 time-domain values (log variance, log line length,
  Hjorth mobility and complexity, zero-crossing rate, kurtosis, skewness) and 10
  band-power values (log absolute and log relative power in delta, theta, alpha,
  beta, gamma from Welch's method).

>>> import numpy as np
>>> x = np.random.default_rng(0).standard_normal(4097) * 50
>>> window_spectra(x).shape, segment_features(x).shape
((15, 58), (17,))
"""
from __future__ import annotations

import numpy as np

__all__ = ["SEIZURE_FS", "SEGMENT_SAMPLES", "WIN", "HOP", "BANDS", "window_spectra", "segment_features",
           "band_power_features"]

#: The Bonn set's rate and segment length: models expect segments like these.
SEIZURE_FS = 173.61
SEGMENT_SAMPLES = 4097
WIN, HOP = 512, 256
BANDS = ((0.5, 4.0), (4.0, 8.0), (8.0, 13.0), (13.0, 30.0), (30.0, 40.0))


def window_spectra(x: np.ndarray, fs: float = SEIZURE_FS) -> np.ndarray:
    """``(n_windows, 58)`` log power spectra (see module docstring); short inputs are edge-padded."""
    x = np.asarray(x, np.float64)
    if x.size < WIN:
        x = np.pad(x, (0, WIN - x.size), mode="edge")
    idx = np.arange(0, x.size - WIN + 1, HOP)
    segs = np.stack([x[i:i + WIN] for i in idx])
    segs = segs - segs.mean(axis=1, keepdims=True)
    p = np.abs(np.fft.rfft(segs * np.hanning(WIN), axis=1)) ** 2
    f = np.fft.rfftfreq(WIN, 1.0 / fs)
    p = p[:, (f >= 0.5) & (f < 40.0)]
    k = p.shape[1] // 2 * 2
    p = p[:, :k].reshape(p.shape[0], -1, 2).mean(axis=2)
    return np.log(p + 1e-6).astype(np.float32)


def band_power_features(x: np.ndarray, fs: float = SEIZURE_FS) -> np.ndarray:
    """Log absolute and log relative Welch band power in the 5 :data:`BANDS` (10 values)."""
    from scipy.signal import welch

    x = np.asarray(x, np.float64)
    f, p = welch(x, fs=fs, nperseg=min(WIN, x.size))
    bp = np.array([p[(f >= a) & (f < b)].sum() for a, b in BANDS]) + 1e-12
    return np.concatenate([np.log(bp), np.log(bp / bp.sum())]).astype(np.float32)


def segment_features(x: np.ndarray, fs: float = SEIZURE_FS) -> np.ndarray:
    """7 time-domain values followed by the 10 band-power values (17 in all)."""
    from scipy.stats import kurtosis, skew

    x = np.asarray(x, np.float64)
    d1, d2 = np.diff(x), np.diff(x, 2)
    v = x.var() + 1e-9
    mob = np.sqrt(d1.var() / v)
    comp = np.sqrt(d2.var() / (d1.var() + 1e-12)) / max(mob, 1e-9)
    zc = np.mean(np.diff(np.sign(x - x.mean())) != 0)
    td = np.array([np.log(v), np.log(np.abs(d1).mean() + 1e-9), mob, comp, zc, kurtosis(x), skew(x)])
    return np.concatenate([td, band_power_features(x, fs)]).astype(np.float32)
