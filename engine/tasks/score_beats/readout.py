"""Record-relative beat features and the linear read-out the ``ecg-beats`` model may carry.

Every feature is label-free and relative to the beat's own record:

* rhythm: ``prem_adj`` / ``prem`` (prematurity ``1 - RR_prev / RR_local``, irregularity-scaled
  and raw), ``pause`` (``RR_next / RR_local - 1``), ``next_prev`` (``log(RR_next / RR_prev)``,
  the compensatory pause), ``prem_past`` (prematurity against the median of the previous
  16 RR intervals), ``irr`` (local RR irregularity);
* morphology: ``tpl`` = ``log(d / median d)``, *d* = ``1 - corr(beat, record median beat)``;
  ``tpl_P`` / ``tpl_QRS`` / ``tpl_T`` the same on the P-wave (-256..-33 ms), QRS
  (-33..+100 ms) and ST-T (+100..+456 ms) parts; ``rms_*`` the RMS difference of each part
  to the median beat (record amplitude units); ``ae`` = ``log(d / median d)`` of the AE-code
  distance when given.

The read-out is ``((x - mean) / scale) @ coef + intercept`` (a standardised logistic
regression's decision function) with its parameters in the model's ``score`` metadata.

>>> import numpy as np
>>> p = {"features": ["prem", "tpl"], "mean": [0, 0], "scale": [1, 2], "coef": [1, 1], "intercept": 0.5}
>>> linear_readout({"prem": np.array([1.0]), "tpl": np.array([2.0])}, p).tolist()
[2.5]
"""
from __future__ import annotations

import numpy as np

from engine.tasks.score_beats.beats import corr_distance, rr_features

__all__ = ["PARTS", "beat_features", "linear_readout", "record_relative"]

#: Beat-window parts (samples at 360 Hz; the R peak is sample 92).
PARTS = {"P": (0, 80), "QRS": (80, 128), "T": (128, 256)}
#: RR intervals before the beat that ``prem_past`` compares against.
PAST_RR = 16


def record_relative(d: np.ndarray) -> np.ndarray:
    """``log(d / median d)`` over a record's beats (``d`` + 1e-3, so zero distances stay finite)."""
    d = np.asarray(d, np.float64) + 1e-3
    return np.log(d / np.median(d)) if d.size else d


def beat_features(beats: np.ndarray, samples: np.ndarray, fs: float, idx: np.ndarray,
                  ae_distance: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Features of the beats ``idx`` (rows of *beats*, already divided by the record's amplitude scale).

    *samples* are all of the record's beat positions (the rhythm context); *ae_distance*, when
    given, is the AE-code distance of the ``idx`` beats.
    """
    s = np.asarray(samples, np.int64)
    rr = rr_features(s, fs)
    ivl = np.diff(s) / fs if s.size > 1 else np.ones(1)
    prev = np.concatenate([[ivl[0]], ivl])[: s.size] if s.size else np.zeros(0)
    past = np.array([np.median(prev[max(0, i - PAST_RR):i]) if i > 0 else prev[0] for i in range(s.size)])
    b = np.asarray(beats, np.float64)[idx]
    med = np.median(b, axis=0) if len(b) else np.zeros(beats.shape[1])
    f = {"prem_adj": rr["premature_adj"][idx], "prem": rr["premature"][idx], "pause": rr["pause"][idx],
         "next_prev": np.log(np.maximum(rr["rr_next"], 1e-3) / np.maximum(rr["rr_prev"], 1e-3))[idx],
         "prem_past": (1 - prev / np.maximum(past, 1e-3))[idx], "irr": rr["irregularity"][idx],
         "tpl": record_relative(corr_distance(b, med))}
    for part, (a, e) in PARTS.items():
        f[f"tpl_{part}"] = record_relative(corr_distance(b[:, a:e], med[a:e]))
        f[f"rms_{part}"] = np.sqrt(np.mean((b[:, a:e] - med[a:e]) ** 2, axis=1))
    if ae_distance is not None:
        f["ae"] = record_relative(ae_distance)
    return f


def linear_readout(features: dict[str, np.ndarray], params: dict) -> np.ndarray:
    """The stored linear read-out over *features* (higher = more abnormal)."""
    x = np.stack([np.asarray(features[c], np.float64) for c in params["features"]], axis=1)
    z = (x - np.asarray(params["mean"], np.float64)) / np.asarray(params["scale"], np.float64)
    return (z @ np.asarray(params["coef"], np.float64) + float(params["intercept"])).astype(np.float32)
