"""EEG/ECG files read through MNE: EDF/EDF+/BDF/GDF, FIF, BrainVision and EEGLAB.

Files are opened with ``preload=False``; samples are read window by window with
``raw.get_data(picks, start, stop)``, so a multi-hour recording is never loaded whole.

Conventions
-----------
* Voltage channels are returned in µV (EEG, EOG, EMG...) or mV (ECG channels, and
  every channel of an ECG recording). Other channels (temperature, respiration...)
  keep MNE's SI value and unit (listed in ``metadata["unconverted_channels"]``).
* Stimulus/trigger channels (MNE type ``stim``, e.g. the BDF ``Status`` channel) are
  not data: they are dropped and listed in ``metadata["dropped_channels"]``.
* Channel names are kept as stored; ``metadata["clean_names"]`` holds tidied names
  (padding dots stripped, standard 10-10 capitalisation: ``"Fc5."`` -> ``"FC5"``).
* The modality is ECG when every data channel is ECG-like (MNE type ``ecg`` or a lead
  name such as ECG, EKG, MLII, V1-V6, I, II, III, aVR, aVL, aVF), or when every voltage
  channel is stored in mV and none has an EEG electrode name; otherwise EEG.
"""
from __future__ import annotations

import logging
import os
import re
import warnings
from pathlib import Path

import numpy as np

from engine._shared.guard import bounded_call
from engine.data import Annotation, Signal
from engine.errors import CorruptFileError, ReadError, UnsupportedFormatError
from engine.io.signal_common import canonical_unit, is_ecg_name, is_eeg_name, strip_channel_name

__all__ = ["read_mne", "clean_channel_name"]

logger = logging.getLogger("engine")

#: Below this many samples x channels the data are read at once (4 MB of float32).
EAGER_LIMIT = 1_000_000

_FIFF_UNIT_V = 107
_UNIT_NAMES = {112: "T", 201: "T/m", 108: "K", 109: "s", 114: "Ohm"}
_TEN_TEN = re.compile(r"^(fp|af|ft|fc|tp|cp|po|f|c|t|p|o|i|a|m|n|x)(z|\d+)$")


def clean_channel_name(name: str) -> str:
    """A tidied channel name: no padding dots, standard 10-10 capitalisation.

    >>> [clean_channel_name(n) for n in ("Fc5.", "Fpz.", "Afz.", "C3..", "T10.", "Poz.", "EKG")]
    ['FC5', 'Fpz', 'AFz', 'C3', 'T10', 'POz', 'EKG']
    """
    s = strip_channel_name(name)
    m = _TEN_TEN.match(s.lower())
    if not m:
        return s
    prefix, site = m.groups()
    prefix = "Fp" if prefix == "fp" else prefix.upper()
    return prefix + site


#: the ``mne.io`` reader of each file name ending, tried in this order
_RAW_READERS = (((".edf", ".rec"), "read_raw_edf"), (".bdf", "read_raw_bdf"), (".gdf", "read_raw_gdf"),
                ((".fif", ".fif.gz"), "read_raw_fif"), (".vhdr", "read_raw_brainvision"),
                (".set", "read_raw_eeglab"))


def _open_raw(path: Path, preload: bool):
    import mne

    name = path.name.lower()
    # "warning": MNE's info chatter is silenced, its warnings are caught and logged
    opts = {"preload": preload, "verbose": "warning"}
    for suffixes, reader in _RAW_READERS:
        if name.endswith(suffixes):
            return getattr(mne.io, reader)(path, **opts)
    if name.endswith((".vmrk", ".eeg")):
        raise ReadError(path, "open the BrainVision header (.vhdr) beside this file instead")
    raise UnsupportedFormatError(path, "not an EDF/BDF/GDF/FIF/BrainVision/EEGLAB file")


def read_mne(path: str, *, modality: str | None = None, preload: bool = False, **_) -> Signal:
    """Read an EDF/EDF+/BDF/GDF/FIF/BrainVision/EEGLAB recording through MNE.

    Parameters
    ----------
    path : str
        The recording (for BrainVision the ``.vhdr`` header, for EEGLAB the ``.set``).
    modality : {"ecg", "eeg"}, optional
        Overrides the guess from the channel types and names.
    preload : bool
        Load every sample now (default: read lazily, window by window).

    Returns
    -------
    engine.data.Signal
        Float32 ``(channels, samples)``; EEG in µV, ECG in mV; annotations from the file.

    Raises
    ------
    engine.errors.ReadError
        With the file name when MNE cannot read the file or it holds no data channel.
    """
    p = Path(path)
    if p.suffix.lower() == ".event" and p.with_suffix("").suffix.lower() in (".edf", ".bdf"):
        p = p.with_suffix("")  # PhysioNet's X.edf.event repeats the events stored in X.edf
    if not p.is_file():
        raise ReadError(path, "no such file")
    truncated = _check_edf_size(p)
    if p.name.lower().endswith((".fif", ".fif.gz")):
        # MNE's FIF directory walk loops (memory growing past 4 GB) on a tag size of -16 or a
        # self-pointing tag: open once in a bounded worker first; ~the cost of one extra open.
        bounded_call(_probe_fif, p, path=path, what="opening the FIF file")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            raw = _open_raw(p, preload)
        except ReadError:
            raise
        except MemoryError:
            raise ReadError(path, "not enough memory to read this file") from None
        except Exception as exc:
            raise CorruptFileError(path, f"cannot be read by MNE: {_first_line(exc)}") from None
    for w in caught:
        if truncated and "does not match the file size" in str(w.message):
            continue  # said below, with the numbers
        logger.warning("%s: %s", p.name, w.message)
    if truncated:
        logger.warning("%s: truncated: read %d of %d data records; %.1f s missing at the end", p.name,
                       truncated["records_read"], truncated["records_announced"], truncated["missing_s"])

    info = raw.info
    types = raw.get_channel_types()
    picks = [i for i, t in enumerate(types) if t != "stim"]
    dropped = [raw.ch_names[i] for i, t in enumerate(types) if t == "stim"]
    if not picks:
        raise ReadError(path, "the file holds no data channels (only stimulus/annotation channels)")
    names = tuple(raw.ch_names[i] for i in picks)
    ptypes = [types[i] for i in picks]
    volt = [info["chs"][i]["unit"] == _FIFF_UNIT_V for i in picks]
    ecg_like = [t == "ecg" or is_ecg_name(n) for t, n in zip(ptypes, names)]
    orig = getattr(raw, "_orig_units", None) or {}
    stored = [canonical_unit(orig.get(n)) for n, v in zip(names, volt) if v]
    # Generic names ("CH1") stored in mV with no electrode name: an ECG (EEG is stored in µV)
    in_mv = bool(stored) and all(u == "mV" for u in stored) and not any(is_eeg_name(n) for n in names)
    guessed = modality or ("ecg" if all(ecg_like) or in_mv else "eeg")
    if guessed not in ("ecg", "eeg"):
        raise ReadError(path, f"modality must be 'ecg' or 'eeg', not {guessed!r}")

    factors, units, unconverted = [], [], []
    for i, name, is_v, is_ecg in zip(picks, names, volt, ecg_like):
        if not is_v:
            factors.append(1.0)
            units.append(_UNIT_NAMES.get(int(info["chs"][i]["unit"]), ""))
            unconverted.append(name)
        elif guessed == "ecg" or is_ecg:
            factors.append(1e3)
            units.append("mV")
        else:
            factors.append(1e6)
            units.append("uV")
    scale = np.asarray(factors, np.float64)[:, None]
    n_samples = int(raw.n_times)

    def sample_reader(start: int, stop: int) -> np.ndarray:
        try:
            x = raw.get_data(picks=picks, start=int(start), stop=int(stop), verbose="error")
        except Exception as exc:
            raise CorruptFileError(path, f"cannot read samples {start}-{stop}: {_first_line(exc)}") from None
        out = (x * scale).astype(np.float32)
        bad = out.size - int(np.count_nonzero(np.isfinite(out)))
        if bad:
            raise CorruptFileError(path, f"{bad} non-finite samples (NaN/Inf) in samples {start}-{stop} "
                                         f"of {out.size}: the file is damaged")
        return out

    counts: dict[str, int] = {}
    for t in ptypes:
        counts[t] = counts.get(t, 0) + 1
    metadata = {
        "format": _format_name(p),
        "clean_names": [clean_channel_name(n) for n in names],
        "channel_types": counts,
        "highpass_hz": float(info["highpass"]),
        "lowpass_hz": float(info["lowpass"]),
    }
    if info["meas_date"] is not None:
        metadata["meas_date"] = info["meas_date"].isoformat()
    if truncated:
        metadata["truncated"] = truncated
    if dropped:
        metadata["dropped_channels"] = dropped
    if unconverted:
        metadata["unconverted_channels"] = unconverted
    if orig:
        metadata["source_units"] = [orig.get(n, "") for n in names]

    annotations = _annotations(raw)
    data = None
    if preload or n_samples * len(picks) <= EAGER_LIMIT:
        data = sample_reader(0, n_samples)
    elif n_samples:
        sample_reader(n_samples - 1, n_samples)  # a truncated file fails here, not in a later job
    return Signal(
        modality=guessed, sfreq=float(info["sfreq"]), channels=names, units=tuple(units),
        n_samples=n_samples, path=os.fspath(path), annotations=annotations, metadata=metadata,
        sample_reader=None if data is not None else sample_reader, _data=data,
    )


def _probe_fif(p: Path) -> None:
    """Open a FIF file and drop it (run in the bounded worker; returns nothing to pickle)."""
    try:
        _open_raw(p, False)
    except ReadError:
        raise
    except MemoryError:
        raise
    except Exception as exc:
        raise CorruptFileError(p, f"cannot be read by MNE: {_first_line(exc)}") from None


def _edf_numbers(p: Path, block: bytes, ns: int, what: str, kind=float) -> list:
    """The ``ns`` 8-character fields of one EDF signal-header block, as numbers."""
    try:
        return [kind(block[i * 8:(i + 1) * 8].decode("ascii").strip()) for i in range(ns)]
    except (UnicodeDecodeError, ValueError):
        raise CorruptFileError(p, f"malformed EDF/BDF header: {what} is not a number") from None


def _check_edf_fields(p: Path, fh, ns: int) -> None:
    """Physical range finite with min != max, digital min < max, for every signal."""
    fh.seek(256 + ns * 104)
    pmin = _edf_numbers(p, fh.read(ns * 8), ns, "physical minimum")
    pmax = _edf_numbers(p, fh.read(ns * 8), ns, "physical maximum")
    dmin = _edf_numbers(p, fh.read(ns * 8), ns, "digital minimum", int)
    dmax = _edf_numbers(p, fh.read(ns * 8), ns, "digital maximum", int)
    for i in range(ns):
        if not (np.isfinite(pmin[i]) and np.isfinite(pmax[i]) and abs(pmin[i]) < 1e30 and abs(pmax[i]) < 1e30):
            raise CorruptFileError(p, f"malformed EDF/BDF header: signal {i + 1} has a non-finite or absurd "
                                      f"physical range [{pmin[i]:g}, {pmax[i]:g}]")
        if pmin[i] == pmax[i]:
            raise CorruptFileError(p, f"malformed EDF/BDF header: signal {i + 1} has physical minimum equal "
                                      f"to maximum ({pmin[i]:g})")
        if dmin[i] >= dmax[i]:
            raise CorruptFileError(p, f"malformed EDF/BDF header: signal {i + 1} has digital minimum "
                                      f"{dmin[i]} not below digital maximum {dmax[i]}")


#: Longest data-record duration accepted, in seconds (EDF records are 0.1..60 s in practice).
MAX_EDF_RECORD_S = 86_400.0


def _check_edf_duration(p: Path, head: bytes) -> None:
    """The data-record duration is a finite number of seconds in (0, MAX_EDF_RECORD_S]."""
    try:
        record_s = float(head[244:252].decode("ascii").strip())
    except (UnicodeDecodeError, ValueError):
        raise CorruptFileError(p, "malformed EDF/BDF header: the data-record duration is not a number") from None
    if not (np.isfinite(record_s) and 0 < record_s <= MAX_EDF_RECORD_S):
        raise CorruptFileError(p, f"malformed EDF/BDF header: data-record duration {record_s:g} s is not in "
                                  f"(0, {MAX_EDF_RECORD_S:g}] s")


#: Most a mixed-rate EDF/BDF may grow when MNE presents every data channel at the highest rate:
#: channels x highest samples-per-record over the samples stored per record. Real mixed-rate files
#: stay far below (Sleep-EDF: 7 channels at 100 and 1 Hz, 2.3x; PSG with one fast ECG channel, ~6x);
#: a damaged samples-per-record field (e.g. one of 64 signals at 160 claiming 32767) is ~50x, and the
#: reader would then serve (and a task allocate) 50 times what the file holds.
MAX_EDF_RATE_INFLATION = 16.0


def _check_edf_rates(p: Path, fh, ns: int, spr: list[int]) -> None:
    """Refuse a header whose samples-per-record would inflate the data beyond :data:`MAX_EDF_RATE_INFLATION`."""
    fh.seek(256)
    labels = [fh.read(16).decode("ascii", "replace").strip() for _ in range(ns)]
    # the TAL signals, named exactly so (as MNE matches them), are not served as data
    data = [(i, n) for i, (lab, n) in enumerate(zip(labels, spr)) if lab not in ("EDF Annotations", "BDF Annotations")]
    if len(data) < 2:
        return
    top = max(data, key=lambda t: t[1])
    stored = sum(n for _, n in data)
    inflation = len(data) * top[1] / stored
    if inflation > MAX_EDF_RATE_INFLATION:
        others = sorted({n for i, n in data if i != top[0]})
        raise CorruptFileError(p, f"malformed EDF/BDF header: signal {top[0] + 1} ({labels[top[0]] or 'unnamed'}) "
                                  f"has {top[1]} samples per record, the others {', '.join(map(str, others[:4]))}"
                                  f"{' ...' if len(others) > 4 else ''}: all {len(data)} channels at its rate would "
                                  f"be {inflation:.0f}x the samples the file stores (at most "
                                  f"{MAX_EDF_RATE_INFLATION:g}x is read)")


def _check_edf_size(p: Path) -> dict | None:
    """EDF/BDF: how many of the data records the header announces the file really holds.

    None when the file is complete. A truncated file (a recording cut off, a copy stopped
    early) is read up to its last complete record, as EDFbrowser does: the returned dict says
    how much is missing. A file without one complete record is refused.
    """
    name = p.name.lower()
    if not name.endswith((".edf", ".bdf", ".rec")):
        return None
    with open(p, "rb") as fh:
        head = fh.read(256)
        try:
            header_bytes = int(head[184:192].decode("ascii").strip())
            n_records = int(head[236:244].decode("ascii").strip())
            ns = int(head[252:256].decode("ascii").strip())
        except (UnicodeDecodeError, ValueError):
            raise CorruptFileError(p, "malformed EDF/BDF header (record count, header size or "
                                      "number of signals is not a number)") from None
        if ns <= 0 or header_bytes != 256 * (ns + 1):
            raise CorruptFileError(p, f"malformed EDF/BDF header: {ns} signals but a {header_bytes}-byte header")
        if header_bytes > p.stat().st_size:
            raise CorruptFileError(p, f"malformed EDF/BDF header: {ns} signals need a {header_bytes}-byte "
                                      f"header, the file has {p.stat().st_size} bytes")
        _check_edf_fields(p, fh, ns)
        _check_edf_duration(p, head)
        fh.seek(256 + ns * 216)
        spr_field = fh.read(ns * 8)
        spr = _edf_numbers(p, spr_field, ns, "samples per record", int)
        if any(n <= 0 for n in spr):
            raise CorruptFileError(p, "malformed EDF/BDF header: a signal has no samples per record")
        _check_edf_rates(p, fh, ns, spr)
    if n_records < 0:
        return None  # "-1": recording not closed properly; MNE infers the length from the size
    width = 3 if head[:1] == b"\xff" else 2
    record_bytes = sum(spr) * width
    need = header_bytes + n_records * record_bytes
    size = p.stat().st_size
    if size >= need:
        return None
    complete = (size - header_bytes) // record_bytes if record_bytes else 0
    if complete <= 0:
        raise CorruptFileError(p, f"truncated: {size} bytes, the header announces {n_records} data "
                                  f"records ({need} bytes) and not one is complete")
    try:
        record_s = float(head[244:252].decode("ascii").strip())
    except (UnicodeDecodeError, ValueError):
        record_s = float("nan")
    return {"records_announced": n_records, "records_read": int(complete),
            "missing_s": round((n_records - complete) * record_s, 6), "file_bytes": size, "expected_bytes": need}


def _format_name(p: Path) -> str:
    name = p.name.lower()
    for ends, fmt in ((".edf", "EDF"), (".bdf", "BDF"), (".gdf", "GDF"), (".fif", "FIF"),
                      (".fif.gz", "FIF"), (".vhdr", "BrainVision"), (".set", "EEGLAB")):
        if name.endswith(ends):
            return fmt
    return "MNE"


def _annotations(raw) -> tuple[Annotation, ...]:
    """``raw.annotations`` as onsets in seconds from the first sample."""
    ann = raw.annotations
    if ann is None or len(ann) == 0:
        return ()
    sfreq = float(raw.info["sfreq"])
    # MNE stores onsets relative to time zero (meas_date, or the virtual start of a
    # cropped recording) in both cases, so the first sample is at raw.first_time.
    first = float(raw.first_time)
    out = []
    for onset, duration, desc in zip(ann.onset, ann.duration, ann.description):
        rel = float(onset) - first
        out.append(Annotation(onset=rel, duration=float(duration), description=str(desc),
                              sample=int(round(rel * sfreq))))
    return tuple(out)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
