"""Write a :class:`~engine.data.Signal` as a WFDB record or an EDF/BDF file.

Both writers read the signal window by window (never more than one window of
float samples in memory besides the integer output) and write atomically: into a
temporary name first, then renamed into place, so a crash leaves nothing half-written;
a WFDB record's ``.hea``/``.dat``/``.atr`` are published as one set
(:func:`engine._shared.output_set.output_set`).

Precision
---------
* WFDB format 16: per channel, the largest 1-2-5 gain (ADU per unit) that keeps the
  data within +/-32000 ADU; the quantisation error is at most 0.5/gain, under 1 µV for
  ECG in mV whose range is under +/-32 mV. Format 212 (12 bit) keeps +/-2000 ADU, so
  its error is about range/4000 (about 1 µV for a +/-2 mV ECG).
* EDF: 16-bit digital values across the data's physical range (rounded outwards to
  the 8 characters the header allows): error <= range/131070. BDF: 24 bit.
* NaN samples: WFDB writes its "invalid sample" value (read back as NaN); EDF has
  none, so NaN is written as 0 and a warning is logged.
* EDF stores whole data records. The record duration is chosen so that it divides the
  signal exactly when possible (1 s, 0.5 s, ..., 0.1 s); otherwise the last record is
  padded by repeating the final sample (less than one record) and a warning is logged.
"""
from __future__ import annotations

import logging
import math
import os
import re
import warnings
from pathlib import Path

import numpy as np

from engine._shared.files import atomic_path
from engine._shared.output_set import output_set
from engine.data import Signal

__all__ = ["write_wfdb", "write_edf", "choose_gain"]

logger = logging.getLogger("engine")

#: Frames per window when streaming samples to disk (even, for format 212 packing).
CHUNK = 1 << 18

_WFDB_LIMITS = {"16": (32000, -(2**15)), "212": (2000, -(2**11))}
_WFDB_SYMBOLS = None  # filled on first use from wfdb's label table


def _nice_floor(x: float) -> float:
    """Largest 1, 2 or 5 times a power of ten that is <= x."""
    if not x > 0 or not math.isfinite(x):
        return 1.0
    exp = math.floor(math.log10(x))
    for m in (5.0, 2.0, 1.0):
        v = m * 10.0 ** exp
        if v <= x * (1 + 1e-12):
            return float(f"{v:.12g}")
    return float(f"{10.0 ** (exp - 1) * 5:.12g}")


def choose_gain(lo: float, hi: float, *, fmt: str = "16") -> tuple[float, int]:
    """ADC gain (ADU per unit) and baseline that fit ``[lo, hi]`` in a WFDB format.

    >>> choose_gain(-2.0, 3.0)
    (10000.0, -5000)
    """
    limit = _WFDB_LIMITS[fmt][0]
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return 1000.0, 0  # an all-NaN channel
    center, half = (hi + lo) / 2.0, (hi - lo) / 2.0
    gain = min(_nice_floor(limit / half), 1e6) if half > 0 else 1000.0
    return gain, int(-round(center * gain))


def _ranges(signal: Signal) -> tuple[np.ndarray, np.ndarray]:
    n_ch = len(signal.channels)
    lo, hi = np.full(n_ch, np.inf), np.full(n_ch, -np.inf)
    for start in range(0, signal.n_samples, CHUNK):
        x = np.asarray(signal.read(start, start + CHUNK), dtype=np.float64)
        if np.isinf(x).any():
            raise ValueError(f"{signal.path}: the signal holds infinite values; cannot be written")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows
            lo = np.fmin(lo, np.nanmin(x, axis=1))
            hi = np.fmax(hi, np.nanmax(x, axis=1))
    return lo, hi


def _pack_212(d: np.ndarray) -> bytes:
    """Pack interleaved 12-bit samples two per three bytes (odd count: a zero sample is added)."""
    flat = d.reshape(-1).astype(np.int32)
    if flat.size % 2:
        flat = np.concatenate([flat, np.zeros(1, np.int32)])
    flat = flat & 0xFFF
    a, b = flat[0::2], flat[1::2]
    out = np.empty((a.size, 3), np.uint8)
    out[:, 0] = a & 0xFF
    out[:, 1] = ((a >> 8) & 0x0F) | ((b >> 4) & 0xF0)
    out[:, 2] = b & 0xFF
    return out.tobytes()


def write_wfdb(signal: Signal, out_dir: str | os.PathLike, record_name: str, *, fmt: str = "16",
               comments: list[str] | None = None, annotations: bool = True) -> Path:
    """Write *signal* as the WFDB record ``out_dir/record_name`` (``.hea`` + ``.dat``).

    Parameters
    ----------
    signal : Signal
        Read window by window, so a long lazy recording is never loaded whole.
    out_dir : path
    record_name : str
        Letters, digits, ``_`` and ``-`` only (WFDB's rule).
    fmt : {"16", "212"}
        Sample format: 16-bit (default, error < 1 µV for ECG) or MIT-BIH's 12-bit.
    comments : list of str, optional
        Header comment lines.
    annotations : bool
        Also write the signal's annotations as ``record_name.atr`` when they all
        have sample indices and standard WFDB beat/rhythm symbols.

    Returns
    -------
    Path
        The header file ``out_dir/record_name.hea``.
    """
    import wfdb

    fmt = str(fmt)
    if fmt not in _WFDB_LIMITS:
        raise ValueError(f"WFDB format must be '16' or '212', not {fmt!r}")
    if not re.fullmatch(r"[-\w]+", record_name or ""):
        raise ValueError(f"invalid WFDB record name {record_name!r}: use letters, digits, _ and -")
    if signal.n_samples == 0:
        raise ValueError(f"{signal.path}: nothing to write (0 samples)")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    n_ch = len(signal.channels)
    lo, hi = _ranges(signal)
    params = [choose_gain(float(a), float(b), fmt=fmt) for a, b in zip(lo, hi)]
    gains = np.array([g for g, _ in params])
    bases = np.array([b for _, b in params], dtype=np.int64)
    invalid = _WFDB_LIMITS[fmt][1]

    names = [f"{record_name}.{ext}" for ext in ("hea", "dat", "atr")]
    # .hea/.dat/.atr are published as one set (an old .atr the new record lacks goes with the old set)
    with output_set(out_dir, record_name, index=names[:1], family=names) as staged:
        tmp = staged.dir
        checksum = np.zeros(n_ch, np.int64)
        init = None
        with open(tmp / f"{record_name}.dat", "wb") as fh:
            for start in range(0, signal.n_samples, CHUNK):
                x = np.asarray(signal.read(start, start + CHUNK), dtype=np.float64)
                nan = np.isnan(x)
                d = np.rint(x * gains[:, None]).astype(np.int64, copy=False) if not nan.any() else \
                    np.rint(np.where(nan, 0.0, x) * gains[:, None]).astype(np.int64)
                d += bases[:, None]
                d[nan] = invalid
                if init is None:
                    init = d[:, 0].copy()
                checksum += d.sum(axis=1)
                frames = np.ascontiguousarray(d.T)
                fh.write(frames.astype("<i2").tobytes() if fmt == "16" else _pack_212(frames))
        checksum = ((checksum + 2**15) % 2**16) - 2**15
        rec = wfdb.Record(
            record_name=record_name, n_sig=n_ch, fs=float(signal.sfreq), sig_len=int(signal.n_samples),
            file_name=[f"{record_name}.dat"] * n_ch, fmt=[fmt] * n_ch,
            adc_gain=[float(g) for g in gains], baseline=[int(b) for b in bases],
            units=[u or "NU" for u in signal.units], adc_res=[16 if fmt == "16" else 12] * n_ch,
            adc_zero=[0] * n_ch, init_value=[int(v) for v in init], checksum=[int(c) for c in checksum],
            block_size=[0] * n_ch, sig_name=[_wfdb_name(c) for c in signal.channels],
            comments=list(comments) if comments else None,
        )
        rec.wrheader(write_dir=str(tmp))
        if annotations:
            _write_atr(signal, tmp, record_name)
    return out_dir / f"{record_name}.hea"


def _wfdb_name(name: str) -> str:
    return " ".join(str(name).split()) or "ch"


def _write_atr(signal: Signal, tmp: Path, record_name: str) -> bool:
    import wfdb
    from wfdb.io.annotation import ann_label_table

    global _WFDB_SYMBOLS
    if _WFDB_SYMBOLS is None:
        _WFDB_SYMBOLS = {str(s) for s in ann_label_table["symbol"]}
    anns = signal.annotations
    if "annotation_ranges" in signal.metadata and signal.metadata.get("annotators"):
        start, stop = signal.metadata["annotation_ranges"][signal.metadata["annotators"][0]]
        anns = anns[start:stop]  # the reference annotator only
    if not anns or any(a.sample is None or a.description not in _WFDB_SYMBOLS for a in anns):
        if anns:
            logger.info("annotations not written as WFDB .atr: not all are WFDB symbols with samples")
        return False
    order = np.argsort([a.sample for a in anns], kind="stable")
    anns = [anns[i] for i in order]
    wfdb.wrann(record_name, "atr", np.array([a.sample for a in anns], dtype=np.int64),
               symbol=[a.description for a in anns],
               chan=np.array([a.channel or 0 for a in anns], dtype=np.int64),
               aux_note=[a.aux for a in anns], fs=float(signal.sfreq), write_dir=str(tmp))
    return True


_RECORD_DURATIONS = (1.0, 0.5, 2.0, 0.25, 0.2, 4.0, 5.0, 10.0, 0.1)


def _record_layout(sfreq: float, n: int) -> tuple[float, int]:
    """(data record duration in s, samples per record): exact rate, no padding if possible."""
    exact = []
    for d in _RECORD_DURATIONS:
        r = sfreq * d
        if abs(r - round(r)) < 1e-9 and round(r) >= 1:
            exact.append((d, int(round(r))))
    for d, r in exact:
        if n % r == 0:
            return d, r
    # any record of at most 10 s that divides the length and whose duration is exact in 8 characters
    for r in range(min(n, int(sfreq * 10)), 0, -1):
        if n % r == 0:
            d = float(f"{r / sfreq:.8g}"[:8])
            if d > 0 and abs(d * sfreq - r) < 1e-9 * r:
                return d, r
    if exact:
        return exact[0]
    from fractions import Fraction

    frac = Fraction(sfreq).limit_denominator(10**6)  # e.g. 173.61 Hz -> 100 s records
    d = float(frac.denominator)
    return d, int(round(sfreq * d))


def _edf_number(x: float, up: bool) -> float:
    """*x* rounded outwards (up or down) to a number that fits the 8 characters of an EDF field."""
    for k in range(7, -1, -1):
        f = 10.0 ** k
        v = (math.ceil(x * f) if up else math.floor(x * f)) / f
        s = f"{v:.{k}f}".rstrip("0").rstrip(".") if k else f"{v:.0f}"
        if len(s) <= 8:
            return float(s)
    raise ValueError(f"value {x:g} does not fit an EDF header field (8 characters)")


def write_edf(signal: Signal, path: str | os.PathLike, *, annotations: bool = True) -> Path:
    """Write *signal* as EDF (or BDF when *path* ends in ``.bdf``), atomically.

    Channel labels are cut to 16 characters and units written as stored (``mV``/``uV``).
    Annotations become EDF+ annotations (description, plus the aux text if any).

    Returns
    -------
    Path
        *path*.
    """
    import edfio

    path = Path(path)
    bdf = path.suffix.lower() == ".bdf"
    sig_cls = edfio.BdfSignal if bdf else edfio.EdfSignal
    dmin, dmax = (-(2**23), 2**23 - 1) if bdf else (-(2**15), 2**15 - 1)
    dtype = np.int32 if bdf else np.int16
    if signal.n_samples == 0:
        raise ValueError(f"{signal.path}: nothing to write (0 samples)")
    d_rec, spr = _record_layout(float(signal.sfreq), signal.n_samples)
    n_total = -(-signal.n_samples // spr) * spr
    if n_total != signal.n_samples:
        logger.warning("EDF record of %g s: %d samples padded at the end (repeating the last value)",
                       d_rec, n_total - signal.n_samples)
    lo, hi = _ranges(signal)
    n_ch = len(signal.channels)
    pmin, pmax = [], []
    for a, b in zip(lo, hi):
        if not (math.isfinite(a) and math.isfinite(b)):
            a = b = 0.0  # an all-NaN channel
        if a == b:
            a, b = a - 1.0, b + 1.0
        pmin.append(_edf_number(a, up=False))
        pmax.append(_edf_number(b, up=True))
    pmin_a, pmax_a = np.array(pmin), np.array(pmax)
    step = (pmax_a - pmin_a) / (dmax - dmin)
    digital = np.empty((n_ch, n_total), dtype=dtype)
    had_nan = False
    for start in range(0, signal.n_samples, CHUNK):
        x = np.asarray(signal.read(start, start + CHUNK), dtype=np.float64)
        if np.isnan(x).any():
            had_nan = True
            x = np.nan_to_num(x, nan=0.0)
        d = np.rint((x - pmin_a[:, None]) / step[:, None] + dmin)
        digital[:, start:start + x.shape[1]] = np.clip(d, dmin, dmax)
    if had_nan:
        logger.warning("%s: NaN samples written as 0 (EDF has no missing-value code)", path.name)
    if n_total > signal.n_samples:
        digital[:, signal.n_samples:] = digital[:, signal.n_samples - 1:signal.n_samples]
    signals = [
        sig_cls.from_digital(digital[i], float(signal.sfreq), label=str(name)[:16],
                             physical_dimension=str(unit)[:8], physical_range=(pmin[i], pmax[i]),
                             digital_range=(dmin, dmax))
        for i, (name, unit) in enumerate(zip(signal.channels, signal.units))
    ]
    anns = None
    if annotations and signal.annotations:
        anns = [edfio.EdfAnnotation(float(a.onset), float(a.duration) if a.duration else None,
                                    f"{a.description} {a.aux}".strip() if a.aux else a.description)
                for a in signal.annotations]
    cls = edfio.Bdf if bdf else edfio.Edf
    doc = cls(signals, data_record_duration=d_rec, annotations=anns)
    with atomic_path(path) as tmp:
        doc.write(tmp)
    return path
