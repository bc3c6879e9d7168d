"""Bounds on headerless text/CSV signals, checked before and after parsing.

Text signals are read whole, so the file size, the line length and the column count
are bounded before parsing; after parsing every value must be finite in float32
(``nan``, ``inf`` or ``1e39`` in a text signal is a damaged or exported-wrong file,
refused with the line that holds it rather than passed on as a sample).
"""
from __future__ import annotations

import os

import numpy as np

from engine.errors import CorruptFileError

__all__ = ["MAX_TEXT_BYTES", "MAX_LINE_CHARS", "MAX_COLUMNS", "check_text_size", "check_lines",
           "check_finite"]

#: Largest text signal read (text is read whole; use NPY or EDF for longer recordings).
MAX_TEXT_BYTES = 512 * 2**20
#: Longest line accepted, in characters (a row of MAX_COLUMNS long numbers fits).
MAX_LINE_CHARS = 64 * 1024
#: Most columns (channels) in a text signal.
MAX_COLUMNS = 1024


def _name(path) -> str:
    return os.path.basename(os.fspath(path))


def check_text_size(path) -> None:
    size = os.path.getsize(path)
    if size > MAX_TEXT_BYTES:
        raise CorruptFileError(path, f"{_name(path)}: a text signal of {size} bytes is more than "
                                     f"{MAX_TEXT_BYTES} (save long recordings as NPY or EDF)")


def check_lines(path, rows, n_cols: int) -> None:
    """*rows* are ``(line number, text)``: refuse over-long lines and too many columns."""
    if n_cols > MAX_COLUMNS:
        raise CorruptFileError(path, f"{_name(path)}: {n_cols} columns is more than {MAX_COLUMNS} channels: "
                                     "not a signal table (or the wrong delimiter)")
    for no, line in rows:
        if len(line) > MAX_LINE_CHARS:
            raise CorruptFileError(path, f"{_name(path)}: line {no} has {len(line)} characters (more than "
                                         f"{MAX_LINE_CHARS}): the file is damaged or not a signal table")


def check_finite(path, data: np.ndarray, line_numbers=None, first_sample: int = 0) -> None:
    """Refuse a ``(channels, samples)`` array with NaN/Inf (after the cast to float32).

    The first bad value is named by its line (text) or its sample index (NPY windows).
    """
    bad = ~np.isfinite(data)
    if bad.any():
        col = int(np.flatnonzero(bad.any(axis=0))[0])
        where = f"line {line_numbers[col]}" if line_numbers is not None else f"sample {first_sample + col}"
        raise CorruptFileError(path, f"{_name(path)}: {int(bad.sum())} value(s) are not finite numbers "
                                     f"(NaN, Inf or beyond the float32 range), the first at {where}")
