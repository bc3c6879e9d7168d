"""ECG beat plumbing: AAMI classes, beat positions, beat windows, RR-interval features.

Plain numpy/scipy functions on arrays (samples in the record's sampling rate,
amplitudes in mV). The task that scores beats lives in :mod:`engine.tasks.score_beats`.

>>> aami_class("L"), aami_class("A"), aami_class("V"), aami_class("F"), aami_class("/")
('N', 'S', 'V', 'F', 'Q')
>>> rr = rr_features(np.array([0, 360, 720, 900, 1440, 1800]), 360.0)
>>> bool(rr["premature"][3] > 0.4)
True
"""
from __future__ import annotations

import logging

import numpy as np

__all__ = ["AAMI", "BEAT_SYMBOLS", "aami_class", "beats_from_annotations", "corr_distance", "detect_qrs",
           "extract_beats", "rr_features", "BEAT_FS", "BEAT_PRE", "BEAT_POST", "BEAT_LEN"]

logger = logging.getLogger("engine")

#: MIT-BIH beat symbol -> AAMI EC57 class.
AAMI = {
    **dict.fromkeys("NLRej", "N"),
    **dict.fromkeys("AaJS", "S"),
    **dict.fromkeys("VE", "V"),
    "F": "F",
    **dict.fromkeys("/fQ?", "Q"),
}
BEAT_SYMBOLS = frozenset(AAMI)

#: Beat windows are taken at this rate: 92 samples before and 164 after the R peak
#: (0.256 s / 0.456 s), 256 samples in all.
BEAT_FS = 360.0
BEAT_PRE = 92
BEAT_POST = 164
BEAT_LEN = BEAT_PRE + BEAT_POST


def aami_class(symbol: str) -> str:
    """The AAMI class (N, S, V, F, Q) of a beat symbol; ``""`` for non-beat annotations."""
    return AAMI.get(symbol, "")


def beats_from_annotations(annotations, n_samples: int) -> tuple[np.ndarray, tuple[str, ...]]:
    """Beat samples and symbols from a signal's reference annotations (non-beat marks dropped)."""
    samples, symbols = [], []
    for a in annotations:
        if a.sample is None or a.description not in BEAT_SYMBOLS:
            continue
        if 0 <= a.sample < n_samples:
            samples.append(int(a.sample))
            symbols.append(a.description)
    order = np.argsort(samples, kind="stable")
    return np.asarray(samples, np.int64)[order], tuple(symbols[i] for i in order)


def corr_distance(beats: np.ndarray, template: np.ndarray) -> np.ndarray:
    """``1 - corr(beat, template)`` per row of *beats* (float64)."""
    b = beats - beats.mean(axis=1, keepdims=True)
    m = template - template.mean()
    return 1 - (b @ m) / (np.linalg.norm(b, axis=1) * np.linalg.norm(m) + 1e-12)


def detect_qrs(x: np.ndarray, fs: float) -> np.ndarray:
    """R-peak samples of one ECG lead (mV) with WFDB's GQRS detector, refined to the local extremum.

    GQRS (``wfdb.processing.gqrs_detect``) is used because it is fast on long records; each
    detection is moved to the largest absolute deviation from the local median within 80 ms.
    """
    from wfdb import processing

    x = np.nan_to_num(np.asarray(x, dtype=np.float64))
    if x.size < int(2 * fs):
        return np.zeros(0, np.int64)
    peaks = np.asarray(processing.gqrs_detect(sig=x, fs=fs), dtype=np.int64)
    if peaks.size == 0:
        return peaks
    r = max(1, int(round(0.08 * fs)))
    out = np.empty_like(peaks)
    for i, p in enumerate(peaks):
        a, b = max(0, p - r), min(x.size, p + r + 1)
        seg = x[a:b]
        out[i] = a + int(np.argmax(np.abs(seg - np.median(seg))))
    out = np.unique(out)
    keep = np.concatenate([[True], np.diff(out) > int(0.2 * fs)])  # refractory period
    return out[keep]


def _resample_index(fs: float) -> float:
    return BEAT_FS / float(fs)


def extract_beats(x: np.ndarray, fs: float, samples: np.ndarray, *, offset: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Fixed-length beat windows around R peaks, resampled to :data:`BEAT_FS`.

    Parameters
    ----------
    x : ndarray, shape (n,)
        One lead in mV; ``x[0]`` is record sample *offset*.
    fs : float
        Sampling rate of *x* in Hz.
    samples : ndarray of int
        R-peak sample indices in record coordinates.

    Returns
    -------
    beats : ndarray, shape (len(samples), BEAT_LEN), float32
        Each beat minus its median (mV). Beats too close to the edges are zero.
    valid : ndarray of bool
    """
    x = np.asarray(x, dtype=np.float64)
    t = (np.arange(-BEAT_PRE, BEAT_POST) / BEAT_FS) * fs  # offsets in input samples
    beats = np.zeros((len(samples), BEAT_LEN), np.float32)
    valid = np.zeros(len(samples), bool)
    for i, s in enumerate(np.asarray(samples) - offset):
        pos = s + t
        if pos[0] < 0 or pos[-1] > x.size - 1:
            continue
        seg = np.interp(pos, np.arange(x.size), x) if fs != BEAT_FS else x[int(s) - BEAT_PRE:int(s) + BEAT_POST]
        if not np.all(np.isfinite(seg)):
            continue
        beats[i] = seg - np.median(seg)
        valid[i] = True
    return beats, valid


#: Local RR irregularity (median |successive RR difference| / median RR) up to which
#: prematurity counts fully; in an irregular rhythm (atrial fibrillation: 0.15-0.25)
#: ``premature_adj`` is scaled down by ``IRR_REF / irregularity``.
IRR_REF = 0.06


def rr_features(samples: np.ndarray, fs: float, *, context: int = 8) -> dict[str, np.ndarray]:
    """RR-interval rhythm features per beat.

    ``premature`` = ``1 - RR_prev / RR_local`` (positive when the beat comes early),
    ``pause`` = ``RR_next / RR_local - 1`` (positive for a compensatory pause), with
    ``RR_local`` the median of the *context* RR intervals before and after the beat;
    ``irregularity`` = local median |successive RR difference| / ``RR_local``;
    ``premature_adj`` = ``premature * min(1, IRR_REF / irregularity)`` (an early beat in an
    irregular rhythm is less remarkable than in sinus rhythm).
    """
    s = np.asarray(samples, dtype=np.float64)
    n = s.size
    out = {k: np.zeros(n) for k in ("rr_prev", "rr_next", "premature", "pause", "irregularity", "premature_adj")}
    if n < 3:
        return out
    rr = np.diff(s) / fs
    prev = np.concatenate([[rr[0]], rr])
    nxt = np.concatenate([rr, [rr[-1]]])
    drr = np.abs(np.diff(rr)) if rr.size > 1 else np.zeros(1)
    local = np.empty(n)
    irr = np.empty(n)
    for i in range(n):
        a, b = max(0, i - context), min(rr.size, i + context)
        local[i] = np.median(rr[a:b])
        irr[i] = np.median(drr[max(0, a - 1):max(b - 1, a)]) if drr.size else 0.0
    local = np.maximum(local, 1e-3)
    irr = irr / local
    prem = 1 - prev / local
    out.update(rr_prev=prev, rr_next=nxt, premature=prem, pause=nxt / local - 1, irregularity=irr,
               premature_adj=prem * np.minimum(1.0, IRR_REF / np.maximum(irr, 1e-6)))
    return out
