"""Display filters for the signal viewer (zero-phase, on the visible page only),
and the whole-recording envelope drawn in the overview strip.

These change what is drawn, never the data the analysis uses.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

__all__ = ["FilterSettings", "design_sos", "apply_display_filters", "envelope_job", "robust_scale",
           "PAD_SECONDS"]

#: Extra seconds read on each side of the page so that filter edges fall outside it.
PAD_SECONDS = 2.0


@dataclass(frozen=True)
class FilterSettings:
    """Cut-offs in Hz; ``None`` (or 0) switches a filter off."""

    highpass: float | None = None
    lowpass: float | None = None
    notch: float | None = None

    @property
    def active(self) -> bool:
        return bool(self.highpass or self.lowpass or self.notch)


@lru_cache(maxsize=32)
def design_sos(sfreq: float, highpass: float | None, lowpass: float | None,
               notch: float | None) -> np.ndarray | None:
    """Second-order sections for the requested filters at *sfreq*, or None if none apply."""
    from scipy import signal as ss

    nyq = sfreq / 2.0
    parts = []
    if highpass and 0 < highpass < nyq * 0.95:
        parts.append(ss.butter(2, highpass, btype="highpass", fs=sfreq, output="sos"))
    if lowpass and 0 < lowpass < nyq * 0.95:
        parts.append(ss.butter(4, lowpass, btype="lowpass", fs=sfreq, output="sos"))
    if notch and 0 < notch < nyq * 0.95:
        b, a = ss.iirnotch(notch, Q=30.0, fs=sfreq)
        parts.append(ss.tf2sos(b, a))
    if not parts:
        return None
    return np.vstack(parts)


def apply_display_filters(data: np.ndarray, sfreq: float, settings: FilterSettings) -> np.ndarray:
    """Zero-phase filter ``(channels, n)`` *data* with ``scipy.signal.sosfiltfilt``.

    Too-short pieces (shorter than the filter's padding) are returned unfiltered.
    """
    if not settings.active or data.shape[-1] == 0:
        return data
    sos = design_sos(float(sfreq), settings.highpass or None, settings.lowpass or None, settings.notch or None)
    if sos is None:
        return data
    from scipy import signal as ss

    padlen = 3 * (2 * len(sos) + 1)
    if data.shape[-1] <= padlen:
        return data
    out = ss.sosfiltfilt(sos, np.nan_to_num(data.astype(np.float64)), axis=-1)
    return out.astype(np.float32)


def robust_scale(data: np.ndarray) -> np.ndarray:
    """Per-channel amplitude (1st-99th percentile range) used to fit a channel in its lane."""
    if data.shape[-1] == 0:
        return np.ones(data.shape[0], np.float32)
    lo, hi = np.nanpercentile(data, [1, 99], axis=-1)
    scale = (hi - lo).astype(np.float32)
    scale[~np.isfinite(scale) | (scale <= 0)] = 1.0
    return scale


def envelope_job(signal, *, channel: int = 0, bins: int = 2000, chunk_seconds: float = 600.0):
    """Generator: min/max envelope of one channel over the whole recording, in chunks.

    Yields :class:`engine.jobs.Progress`; returns ``(t, lo, hi)`` arrays of length ``bins``
    (fewer for short recordings), *t* in seconds.
    """
    from engine.jobs import Progress

    n = int(signal.n_samples)
    bins = max(1, min(bins, n))
    edges = np.linspace(0, n, bins + 1).astype(np.int64)
    lo = np.zeros(bins, np.float32)
    hi = np.zeros(bins, np.float32)
    chunk = max(int(chunk_seconds * signal.sfreq), int(edges[1] - edges[0]) + 1)
    b = 0
    start = 0
    while start < n and b < bins:
        stop = min(n, start + chunk)
        # extend to the next bin edge so no bin is split across chunks
        stop = int(edges[min(bins, np.searchsorted(edges, stop))])
        x = signal.read(start, stop)[channel]
        while b < bins and edges[b + 1] <= stop:
            seg = x[edges[b] - start: edges[b + 1] - start]
            if seg.size:
                lo[b], hi[b] = np.nanmin(seg), np.nanmax(seg)
            b += 1
        start = stop
        yield Progress(start / n, "overview")
    t = (edges[:-1] + edges[1:]) / 2.0 / signal.sfreq
    return t, lo, hi
