"""Finite-or-refused for WFDB samples.

WFDB formats reserve one digital code per format for an invalid sample (e.g. -32768 in
format 16, -2048 in format 212); those are read as **NaN** on purpose and the record's
``metadata["invalid_samples"]`` says so. Any other non-finite value comes from the header
(a gain like 1e-45, an absurd baseline, a unit conversion) and makes the record unusable:
it is refused here, naming the file, instead of passing infinite millivolts downstream.
"""
from __future__ import annotations

import os

import numpy as np

from engine.errors import CorruptFileError

__all__ = ["check_gains", "check_physical"]

#: Largest digital magnitude of any WFDB format (format 32), used to bound the physical range.
_MAX_DIGITAL = 2.0**31
#: Largest physical magnitude accepted (float32 holds up to ~3.4e38).
_MAX_PHYSICAL = 1e38


def check_physical(hea: str | os.PathLike, out: np.ndarray, start: int, stop: int) -> None:
    """Refuse physical samples that are infinite (NaN is the WFDB invalid-sample value)."""
    if np.isinf(out).any():
        n = int(np.isinf(out).sum())
        raise CorruptFileError(hea, f"{os.path.basename(os.fspath(hea))}: {n} samples in {start}-{stop} are "
                                    "infinite after applying the header's gain/baseline/unit (a damaged "
                                    "gain or baseline)")


def check_gains(hea: str | os.PathLike, gains, baselines, factors) -> None:
    """Refuse, at open, a gain/baseline whose largest digital value maps beyond float32.

    ``(digital - baseline) / gain * unit factor`` must stay finite for every digital value
    a format can hold, so that the first window read is not where a damaged gain shows up.
    """
    for ch, (g, b, f) in enumerate(zip(gains, baselines, factors)):
        g = float(g) if g else 200.0  # 0 is "uncalibrated": wfdb's default 200 ADU/mV
        top = (_MAX_DIGITAL + abs(float(b or 0))) / abs(g) * abs(float(f))
        if not np.isfinite(top) or top > _MAX_PHYSICAL:
            raise CorruptFileError(hea, f"{os.path.basename(os.fspath(hea))}: signal {ch + 1}'s gain {g:g} and "
                                        f"baseline {b} give physical values up to {top:g}, beyond the float32 "
                                        "range (a damaged gain or baseline)")
