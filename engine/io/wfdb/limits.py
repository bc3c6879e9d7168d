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

__all__ = ["check_physical"]


def check_physical(hea: str | os.PathLike, out: np.ndarray, start: int, stop: int) -> None:
    """Refuse physical samples that are infinite (NaN is the WFDB invalid-sample value)."""
    if np.isinf(out).any():
        n = int(np.isinf(out).sum())
        raise CorruptFileError(hea, f"{os.path.basename(os.fspath(hea))}: {n} samples in {start}-{stop} are "
                                    "infinite after applying the header's gain/baseline/unit (a damaged "
                                    "gain or baseline)")
