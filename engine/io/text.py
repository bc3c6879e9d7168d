"""Headerless signals: plain text / CSV / TSV (one row per sample) and NumPy ``.npy``.

Such files carry no sampling rate, so ``sfreq`` is required. Values are taken as-is
in the stated ``units`` (default: µV for EEG, mV for ECG); a voltage unit other than
the modality's is converted (``units="V"`` for EEG multiplies by 1e6) and the
original unit is kept in ``metadata["source_units"]``.

Layout rules
------------
* Text: one row per sample, one column per channel, separated by commas, tabs,
  semicolons or white space. Blank lines and lines starting with ``#`` or ``%`` are
  skipped; a single first row of channel names is accepted.
  Every column is a channel (a time column is not recognised: drop it first). Text
  files are read whole (signals stored as text are small; use NPY for long ones).
* NPY: a 1-D array is one channel. A 2-D array is ``(channels, samples)`` when its
  first axis is the shorter one (or equal), else ``(samples, channels)`` and it is
  transposed: **channels are the shorter axis**. NPY files are memory-mapped and read
  lazily.
"""
from __future__ import annotations

import io
import math
import os
import re
from pathlib import Path
from typing import Sequence

import numpy as np

from engine.data import Signal
from engine.errors import CorruptFileError, ReadError
from engine.io.signal_common import canonical_unit, modality_unit, unit_factor
from engine.io.text_limits import check_finite, check_lines, check_text_size

__all__ = ["read_text"]

_COMMENT = ("#", "%")
_NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$|^[-+]?(nan|inf)$", re.IGNORECASE)


def read_text(path: str, *, sfreq: float | None = None, modality: str | None = "eeg",
              channels: Sequence[str] | str | None = None, units: str | None = None, **_) -> Signal:
    """Read a headerless text/CSV/TSV or ``.npy`` signal.

    Parameters
    ----------
    path : str
    sfreq : float
        Sampling rate in Hz (required: these files do not store it).
    modality : {"eeg", "ecg"}
        Default ``"eeg"``.
    channels : sequence of str or comma-separated str, optional
        Channel names (default: the header row if any, else ``ch1``, ``ch2``...).
    units : str, optional
        Unit of the stored values (default µV for EEG, mV for ECG).

    Returns
    -------
    engine.data.Signal

    Raises
    ------
    engine.errors.ReadError
        Without ``sfreq``, or on non-numeric content (naming the line).
    """
    p = Path(path)
    modality = modality or "eeg"
    if modality not in ("ecg", "eeg"):
        raise ReadError(path, f"modality must be 'ecg' or 'eeg', not {modality!r}")
    if sfreq is None:
        raise ReadError(path, "headerless signal: give the sampling rate with --sfreq")
    try:
        sfreq = float(sfreq)
    except (TypeError, ValueError):
        raise ReadError(path, f"sampling rate {sfreq!r} is not a number") from None
    if not math.isfinite(sfreq) or sfreq <= 0:
        raise ReadError(path, f"sampling rate must be a positive number of Hz, not {sfreq:g}")
    if not p.is_file():
        raise ReadError(path, "no such file")

    target = modality_unit(modality)
    src_unit = units or target
    if canonical_unit(src_unit) is not None:
        factor, out_unit = unit_factor(src_unit, target), target
    else:  # not a voltage: keep it as stated
        factor, out_unit = 1.0, str(src_unit)

    if p.suffix.lower() == ".npy":
        arr, orientation = _load_npy(p)
        header, line_numbers = None, None
        metadata = {"format": "NPY", "orientation": orientation}
    else:
        arr, header, delim, line_numbers = _load_text(p)
        metadata = {"format": "text", "delimiter": {"\t": "tab", None: "whitespace"}.get(delim, delim)}
    n_ch, n_samples = arr.shape
    if n_samples == 0:
        raise ReadError(path, "the file holds no samples")
    names = _channel_names(path, channels, header, n_ch)
    metadata["source_units"] = str(src_unit)
    metadata["sfreq_source"] = "given by the user (--sfreq)"

    if isinstance(arr, np.memmap):
        mm = arr

        def sample_reader(start: int, stop: int) -> np.ndarray:
            with np.errstate(over="ignore", invalid="ignore"):
                out = np.asarray(mm[:, start:stop], dtype=np.float32)
                out = out * np.float32(factor) if factor != 1.0 else out
            check_finite(path, out, first_sample=start)
            return out

        return Signal(modality=modality, sfreq=sfreq, channels=names, units=(out_unit,) * n_ch,
                      n_samples=n_samples, path=os.fspath(path), metadata=metadata,
                      sample_reader=sample_reader)
    with np.errstate(over="ignore", invalid="ignore"):
        data = np.ascontiguousarray(arr, dtype=np.float32)
        if factor != 1.0:
            data *= np.float32(factor)
    check_finite(path, data, line_numbers)
    return Signal(modality=modality, sfreq=sfreq, channels=names, units=(out_unit,) * n_ch,
                  n_samples=n_samples, path=os.fspath(path), metadata=metadata, _data=data)


def _channel_names(path, channels, header, n_ch) -> tuple[str, ...]:
    if channels is not None:
        names = [c.strip() for c in channels.split(",")] if isinstance(channels, str) else list(channels)
        if len(names) != n_ch:
            raise ReadError(path, f"{len(names)} channel names given for {n_ch} channels")
        return tuple(str(n) for n in names)
    if header is not None:
        return tuple(header)
    return tuple(f"ch{i + 1}" for i in range(n_ch))


def _load_npy(p: Path):
    try:
        arr = np.load(p, mmap_mode="r", allow_pickle=False)
    except ValueError as exc:  # object arrays need pickle: never allowed
        raise ReadError(p, f"not a numeric NumPy array ({_first_line(exc)})") from None
    except Exception as exc:
        raise CorruptFileError(p, f"damaged .npy file: {_first_line(exc)}") from None
    if arr.dtype.kind not in "iuf":
        raise ReadError(p, f"not a numeric signal (dtype {arr.dtype})")
    if arr.ndim == 1:
        return arr[None, :], "1-D: one channel"
    if arr.ndim != 2:
        raise ReadError(p, f"expected a 1-D or 2-D array, got shape {arr.shape}")
    if arr.shape[0] <= arr.shape[1]:
        return arr, "(channels, samples): channels are the shorter axis"
    return arr.T, "(samples, channels) transposed: channels are the shorter axis"


def _decode(p: Path) -> str:
    check_text_size(p)
    raw = p.read_bytes()
    if b"\x00" in raw[:4096]:
        raise ReadError(p, "binary content, not a text signal")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _split(line: str, delim: str | None) -> list[str]:
    parts = line.split(delim) if delim else line.split()
    return [s.strip() for s in parts]


def _load_text(p: Path):
    text = _decode(p)
    lines = text.splitlines()
    rows = [(i + 1, ln) for i, ln in enumerate(lines)
            if ln.strip() and not ln.lstrip().startswith(_COMMENT)]
    if not rows:
        raise ReadError(p, "the file holds no samples")
    first_no, first = rows[0]
    delim = next((d for d in (";", "\t", ",") if d in first), None)
    if delim in (";", "\t") and "," in first:  # European CSV: "1,5;2,25" uses decimal commas
        rows = [(no, ln.replace(",", ".")) for no, ln in rows]
        first = rows[0][1]
    header = None
    tokens = _split(first, delim)
    if not all(_NUMBER.match(t) for t in tokens if t):
        if any(_NUMBER.match(t) for t in tokens):
            raise ReadError(p, f"line {first_no} is not numeric: {first.strip()[:60]!r}")
        header = tuple(t.strip().strip('"').strip("'") for t in tokens)
        rows = rows[1:]
        if not rows:
            raise ReadError(p, "the file holds a header row but no samples")
    n_cols = len(header) if header else len(tokens)
    check_lines(p, rows, n_cols)
    body = "\n".join(ln for _, ln in rows)
    try:
        arr = np.loadtxt(io.StringIO(body), delimiter=delim, ndmin=2, dtype=np.float64, comments=None)
    except ValueError:
        _raise_bad_line(p, rows, delim, n_cols)
        raise  # pragma: no cover - _raise_bad_line always raises
    if arr.shape[1] != n_cols:
        raise ReadError(p, f"{n_cols} header names but {arr.shape[1]} columns of numbers")
    return arr.T, header, delim, [no for no, _ in rows]


def _raise_bad_line(p: Path, rows, delim, n_cols):
    for no, ln in rows:
        tokens = _split(ln, delim)
        if len(tokens) != n_cols:
            raise ReadError(p, f"line {no} has {len(tokens)} columns, expected {n_cols}: {ln.strip()[:60]!r}")
        if not all(_NUMBER.match(t) for t in tokens):
            raise ReadError(p, f"line {no} is not numeric: {ln.strip()[:60]!r}")
    raise ReadError(p, "the content is not a table of numbers")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
