"""WFDB records (PhysioNet): header, signal files and every annotation file beside them.

The header is read at once; samples are read lazily, window by window, through
``wfdb.rdrecord(sampfrom, sampto)`` so a 24-hour Holter is never loaded whole.

Conventions
-----------
* Values are physical: ECG in mV, EEG in µV (voltage channels are converted from
  the header's unit); a channel whose unit is not a voltage keeps its unit and is
  listed in ``metadata["unconverted_channels"]``.
* Invalid samples (the WFDB "missing" value) are returned as **NaN**; they are not
  replaced (a flat zero would look like real signal). ``metadata["invalid_samples"]``
  says so.
* Annotations: the reference annotator (``atr`` first, else the first file found) is
  ``annotations[0:n]``; other annotators follow in the order of
  ``metadata["annotators"]``; ``metadata["annotation_ranges"]`` gives each one's
  ``[start, stop)`` slice of ``Signal.annotations``.
"""
from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import numpy as np

from engine._shared.guard import bounded_call
from engine.data import Annotation, Signal
from engine.errors import CorruptFileError, ReadError
from engine.io.signal_common import canonical_unit, is_ecg_name, is_eeg_name, modality_unit, unit_factor
from engine.io.wfdb.dat import DatReader
from engine.io.wfdb.limits import check_gains, check_physical

__all__ = ["read_wfdb", "ANNOTATORS", "record_base"]

logger = logging.getLogger("engine")

#: Annotation file extensions looked for beside a record, the reference annotator first.
ANNOTATORS = ("atr", "qrs", "ecg", "ann", "ari", "apn", "pu", "pu0", "pu1", "st", "stb",
              "sta", "stf", "wqrs", "sqrs", "gqrs", "xqrs", "pwave", "alt", "man")

#: Below this many samples x channels a record is read at once (0.8 MB of float32).
EAGER_LIMIT = 200_000

_KNOWN_FORMATS = {"8", "16", "24", "32", "61", "80", "160", "212", "310", "311", "508", "516", "524"}
_BYTES_PER_SAMPLE = {"8": 1, "16": 2, "24": 3, "32": 4, "61": 2, "80": 1, "160": 2,
                     "212": 1.5, "310": 4 / 3, "311": 4 / 3}


def record_base(path: str | os.PathLike) -> Path:
    """The record path without extension for a ``.hea``/``.dat``/annotation path or a bare record."""
    p = Path(path)
    suffix = p.suffix.lower().lstrip(".")
    if suffix in ("hea", "dat") or suffix in ANNOTATORS:
        return p.with_suffix("")
    return p


def read_wfdb(path: str, *, modality: str | None = None, **_) -> Signal:
    """Read a WFDB record lazily.

    Parameters
    ----------
    path : str
        The ``.hea`` file, the ``.dat``/``.atr`` file, or the record path without extension.
    modality : {"ecg", "eeg"}, optional
        Overrides the guess (ECG unless the channel names say EEG).

    Returns
    -------
    engine.data.Signal
        ``(channels, samples)`` float32 in mV (ECG) or µV (EEG); annotations from
        every annotation file beside the record.

    Raises
    ------
    engine.errors.ReadError
        When the header is missing or malformed, or a signal file is missing or truncated.
    """
    import wfdb

    base = record_base(path)
    hea = base.with_name(base.name + ".hea")
    if not hea.is_file():
        raise ReadError(path, f"WFDB header {hea.name} not found beside the record")
    _check_header_text(hea)
    try:
        header = wfdb.rdheader(str(base))
    except Exception as exc:  # wfdb raises bare ValueError/IndexError on malformed headers
        raise CorruptFileError(hea, f"malformed WFDB header: {_first_line(exc)}") from None
    if not isinstance(header, wfdb.MultiRecord):
        _check_header_fields(hea, header)
    if isinstance(header, wfdb.MultiRecord):
        return _read_multi(path, base, header, modality)
    if not header.n_sig:
        raise ReadError(hea, "the WFDB header lists no signals (annotation-only record)")
    _check_signal_files(hea, header)

    names = tuple(f"ch{i + 1}" if n is None else str(n)
                  for i, n in enumerate(header.sig_name or [None] * header.n_sig))
    src_units = [str(u) if u else "" for u in (header.units or [""] * header.n_sig)]
    sig_len = header.sig_len
    eager = None
    if not sig_len:  # header without a length: the signal file decides
        eager = _rdrecord(hea, base, 0, None)
        sig_len = eager.shape[0]
    guessed = modality or _guess_modality(names, src_units)
    if guessed not in ("ecg", "eeg"):
        raise ReadError(path, f"modality must be 'ecg' or 'eeg', not {guessed!r}")
    factors, units, unconverted = _unit_plan(names, src_units, guessed)
    check_gains(hea, header.adc_gain or [], header.baseline or [0] * len(names), factors)

    fast = DatReader.from_header(hea.parent, header) if eager is None else None

    def sample_reader(start: int, stop: int) -> np.ndarray:
        if fast is not None:
            try:
                out = fast.read(start, stop)
            except (OSError, EOFError) as exc:
                raise CorruptFileError(fast.path, f"cannot read samples {start}-{stop}: {exc}") from None
        else:
            arr = _rdrecord(hea, base, start, stop) if eager is None else eager[start:stop]
            out = np.ascontiguousarray(arr.T, dtype=np.float32)
        with np.errstate(over="ignore", invalid="ignore"):
            out *= factors[:, None]
        check_physical(hea, out, start, stop)
        return out

    annotations, ann_meta = _read_annotations(base, float(header.fs))
    uncal = _uncalibrated_channels(hea, names)
    metadata = {
        "format": "WFDB",
        "record": header.record_name,
        "fmt": list(header.fmt or []),
        "adc_gain": [float(g) for g in (header.adc_gain or [])],
        "baseline": [int(b) for b in (header.baseline or [])],
        "adc_res": list(header.adc_res or []),
        "source_units": src_units,
        "comments": list(header.comments or []),
        "invalid_samples": "NaN (WFDB invalid sample values are kept as NaN, not replaced)",
        **ann_meta,
    }
    if header.base_date or header.base_time:
        metadata["start"] = " ".join(str(x) for x in (header.base_date, header.base_time) if x)
    if uncal:
        metadata["uncalibrated_channels"] = uncal
        logger.info("%s: gain 0 (uncalibrated) for %s; amplitudes use WFDB's default 200 ADU/mV "
                       "and are arbitrary", hea.name, ", ".join(uncal))
    if unconverted:
        metadata["unconverted_channels"] = unconverted
    if any((s or 1) > 1 for s in (header.samps_per_frame or [])):
        metadata["samps_per_frame"] = list(header.samps_per_frame)
        metadata["note"] = "channels with several samples per frame are averaged to the frame rate"

    data = None
    if eager is not None or sig_len * len(names) <= EAGER_LIMIT:
        data = sample_reader(0, sig_len)
    else:
        sample_reader(sig_len - 1, sig_len)  # a damaged signal file fails here, not in a later job
    return Signal(
        modality=guessed, sfreq=float(header.fs), channels=names, units=units,
        n_samples=int(sig_len), path=os.fspath(path), annotations=annotations,
        metadata=metadata, sample_reader=None if data is not None else sample_reader, _data=data,
    )


#: Longest header line accepted (PhysioNet headers stay under ~300 characters); wfdb's
#: regex takes minutes on a 100 kB line, so longer lines are refused before wfdb sees them.
MAX_HEADER_LINE = 4096
#: Largest header file accepted, in bytes.
MAX_HEADER_BYTES = 1 << 20


def _check_header_text(hea: Path) -> None:
    """Cheap checks on the header text before wfdb parses it (size, line length)."""
    size = hea.stat().st_size
    if size > MAX_HEADER_BYTES:
        raise CorruptFileError(hea, f"WFDB header of {size} bytes (more than {MAX_HEADER_BYTES}): not a header")
    with open(hea, "rb") as fh:
        for n, line in enumerate(fh, 1):
            if len(line) > MAX_HEADER_LINE:
                raise CorruptFileError(hea, f"WFDB header line {n} has {len(line)} characters (more than "
                                            f"{MAX_HEADER_LINE}): the header is damaged")


def _check_header_fields(hea: Path, header) -> None:
    """Channel count consistent across the signal lines; sampling rate and gains usable."""
    fs = header.fs
    if fs is None or not np.isfinite(float(fs)) or float(fs) <= 0:
        raise CorruptFileError(hea, f"WFDB header: sampling frequency {fs!r} is not a positive number")
    n = int(header.n_sig or 0)
    for field in ("file_name", "fmt", "adc_gain", "baseline", "sig_name", "samps_per_frame"):
        values = getattr(header, field, None)
        if n and values is not None and len(values) != n:
            raise CorruptFileError(hea, f"WFDB header announces {n} signals but gives {len(values)} "
                                        f"values of {field}: the header is damaged")
    for ch, gain in enumerate(header.adc_gain or []):
        if gain is None or not np.isfinite(float(gain)) or float(gain) == 0.0:
            raise CorruptFileError(hea, f"WFDB header: gain {gain!r} of signal {ch + 1} is not a finite, "
                                        f"non-zero number")


def _rdann_arrays(base: str, ext: str):
    """``wfdb.rdann`` reduced to plain arrays (run in the bounded worker)."""
    import wfdb

    ann = wfdb.rdann(base, ext, return_label_elements=["symbol"])
    return (np.asarray(ann.sample), list(ann.symbol), list(ann.aux_note or []),
            None if ann.chan is None else np.asarray(ann.chan), ann.fs)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _rdrecord(hea: Path, base: Path, start: int, stop: int | None) -> np.ndarray:
    import wfdb

    try:
        rec = wfdb.rdrecord(str(base), sampfrom=int(start), sampto=None if stop is None else int(stop),
                            physical=True, return_res=32 if stop is not None else 64)
    except Exception as exc:
        raise CorruptFileError(hea, f"cannot read samples {start}-{stop}: {_first_line(exc)}") from None
    return rec.p_signal


def _check_signal_files(hea: Path, header) -> None:
    """Every signal file named in the header exists and is long enough."""
    per_file: dict[str, list[int]] = {}
    for ch, fname in enumerate(header.file_name):
        per_file.setdefault(fname, []).append(ch)
    for ch, fmt in enumerate(header.fmt or []):
        if str(fmt) not in _KNOWN_FORMATS:
            raise CorruptFileError(hea, f"unknown WFDB sample format {fmt!r} for signal {ch + 1}")
    for fname, chans in per_file.items():
        if fname == "-" or fname.startswith("~"):
            continue
        f = hea.parent / fname
        if not f.is_file():
            raise ReadError(hea, f"the signal file {fname} named in the header is missing")
        fmt = str(header.fmt[chans[0]])
        bps = _BYTES_PER_SAMPLE.get(fmt)
        if bps is None or not header.sig_len:
            continue  # compressed (FLAC) formats or unknown length: wfdb checks when reading
        spf = sum((header.samps_per_frame[c] or 1) for c in chans)
        offset = (header.byte_offset[chans[0]] or 0) if header.byte_offset else 0
        need = offset + int(np.floor(header.sig_len * spf * bps))
        size = f.stat().st_size
        if size < need:
            raise CorruptFileError(f, f"signal file truncated: {size} bytes, the header "
                                      f"{hea.name} implies {need}")


def _uncalibrated_channels(hea: Path, names: tuple[str, ...]) -> list[str]:
    """Channels whose header gain is 0 (WFDB: 'uncalibrated'); wfdb silently uses 200."""
    try:
        lines = [ln for ln in hea.read_text("latin-1").splitlines()
                 if ln.strip() and not ln.lstrip().startswith("#")]
    except OSError:
        return []
    out = []
    for ch, line in enumerate(lines[1:1 + len(names)]):
        parts = line.split()
        if len(parts) >= 3:
            m = re.match(r"[-+0-9.eE]+", parts[2])
            if m and _to_float(m.group(0)) == 0.0:
                out.append(names[ch])
    return out


def _to_float(s: str) -> float | None:
    try:
        return float(s)
    except ValueError:
        return None


def _guess_modality(names, units) -> str:
    if any(is_ecg_name(n) for n in names):
        return "ecg"
    volts = [canonical_unit(u) for u in units]
    n_eeg = sum(is_eeg_name(n) for n in names)
    if 2 * n_eeg >= len(names) or (volts and all(u == "uV" for u in volts)):
        return "eeg"
    return "ecg"


def _unit_plan(names, src_units, modality):
    """Per-channel factor to the modality's unit; non-voltage channels keep their unit."""
    target = modality_unit(modality)
    factors, units, unconverted = [], [], []
    for name, u in zip(names, src_units):
        if canonical_unit(u) is not None:
            factors.append(unit_factor(u, target))
            units.append(target)
        else:
            factors.append(1.0)
            units.append(u)
            unconverted.append(name)
    return np.asarray(factors, np.float32), tuple(units), unconverted


def _read_annotations(base: Path, fs: float):
    """Annotations of every standard annotator file beside the record."""
    found = [ext for ext in ANNOTATORS if base.with_name(f"{base.name}.{ext}").is_file()]
    annotations: list[Annotation] = []
    ranges: dict[str, list[int]] = {}
    for ext in found:
        f = base.with_name(f"{base.name}.{ext}")
        try:
            # a damaged 90-byte .atr makes rdann loop forever: bounded worker, 10 s + 20 s/MB
            samples, symbols, aux, chan, ann_fs = bounded_call(
                _rdann_arrays, str(base), ext, path=f, what="reading the WFDB annotations",
                timeout_s=10.0 + 20.0 * f.stat().st_size / 2**20)
        except CorruptFileError:
            if ext == found[0]:
                raise
            logger.warning("%s: skipped, reading it as WFDB annotations did not finish", f.name)
            continue
        except Exception as exc:
            if ext == found[0]:
                raise CorruptFileError(f, f"cannot read the annotation file: {_first_line(exc)}") from None
            logger.warning("%s: skipped, cannot be read as WFDB annotations (%s)", f.name, _first_line(exc))
            continue
        afs = float(ann_fs) if ann_fs else fs
        scale = fs / afs
        start = len(annotations)
        aux = aux or [""] * len(samples)
        chan = chan if chan is not None else [None] * len(samples)
        for s, sym, note, c in zip(samples, symbols, aux, chan):
            sample = int(round(int(s) * scale))
            annotations.append(Annotation(
                onset=sample / fs, duration=0.0, description=str(sym), sample=sample,
                channel=None if c is None else int(c), aux=str(note or "").rstrip("\x00").strip()))
        ranges[ext] = [start, len(annotations)]
    meta = {"annotators": list(ranges), "annotation_ranges": ranges}
    return tuple(annotations), meta


def _read_multi(path, base: Path, header, modality):
    """Multi-segment records: read through wfdb's segment merging (``m2s``), lazily."""
    import wfdb

    hea = base.with_name(base.name + ".hea")
    try:
        probe = wfdb.rdrecord(str(base), sampfrom=0, sampto=1, m2s=True, return_res=32)
    except Exception as exc:
        raise CorruptFileError(hea, f"cannot read the multi-segment record: {_first_line(exc)}") from None
    names = tuple(str(n) for n in probe.sig_name)
    src_units = [str(u) if u else "" for u in probe.units]
    guessed = modality or _guess_modality(names, src_units)
    factors, units, unconverted = _unit_plan(names, src_units, guessed)

    def sample_reader(start: int, stop: int) -> np.ndarray:
        try:
            rec = wfdb.rdrecord(str(base), sampfrom=int(start), sampto=int(stop), m2s=True, return_res=32)
        except Exception as exc:
            raise CorruptFileError(hea, f"cannot read samples {start}-{stop}: {_first_line(exc)}") from None
        out = np.ascontiguousarray(rec.p_signal.T, dtype=np.float32)
        with np.errstate(over="ignore", invalid="ignore"):
            out *= factors[:, None]
        check_physical(hea, out, start, stop)
        return out

    annotations, ann_meta = _read_annotations(base, float(header.fs))
    metadata = {"format": "WFDB multi-segment", "record": header.record_name,
                "segments": [str(s) for s in header.seg_name], "comments": list(header.comments or []),
                "source_units": src_units,
                "invalid_samples": "NaN (gaps between segments and invalid samples are NaN)", **ann_meta}
    if unconverted:
        metadata["unconverted_channels"] = unconverted
    return Signal(modality=guessed, sfreq=float(header.fs), channels=names, units=units,
                  n_samples=int(header.sig_len), path=os.fspath(path), annotations=annotations,
                  metadata=metadata, sample_reader=sample_reader)
