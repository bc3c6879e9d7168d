"""Beat, segment and anomaly scores as annotations signal viewers show: WFDB annotation files
(``wfdb.wrann``, the score in ``aux_note``) and EDF+ annotations (onset, duration, label with score)."""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from engine._shared.files import atomic_path
from engine._shared.output_set import output_set
from engine.data import Annotation, Signal
from engine.results import BeatScores, SegmentScores

__all__ = ["score_annotations", "anomaly_runs", "write_wfdb_annotations", "write_edf_annotations",
           "write_score_annotations", "SCORE_FORMATS", "check_score_formats", "WFDB_EXTENSION",
           "ANOMALY_THRESHOLD", "estimate_score_annotation_bytes"]

#: ``--formats`` of the scoring tasks: the CSV table (default) and annotations in the input's family.
SCORE_FORMATS = ("csv", "annotations")

#: WFDB annotator (file extension) for Latent's scores; ``wfdb.rdann(record, "latent")`` reads it.
WFDB_EXTENSION = "latent"
#: Calibrated per-sample anomaly above which a run of samples becomes an annotation.
ANOMALY_THRESHOLD = 1.0
#: WFDB "comment" annotation: shown with its aux text, means nothing about the beat.
_NOTE = '"'


def anomaly_runs(anomaly: np.ndarray, *, threshold: float = ANOMALY_THRESHOLD) -> list[tuple[int, int, float]]:
    """``(start, stop, max)`` of each run of samples whose anomaly (max over channels) exceeds *threshold*.

    >>> anomaly_runs(np.array([[0, 2, 3, 0, 0, 1.5]]))
    [(1, 3, 3.0), (5, 6, 1.5)]
    """
    a = np.nan_to_num(np.atleast_2d(np.asarray(anomaly, np.float32)), nan=0.0).max(axis=0)
    above = np.concatenate([[False], a > threshold, [False]])
    edges = np.flatnonzero(np.diff(above.astype(np.int8)))
    return [(int(s), int(e), float(a[s:e].max())) for s, e in zip(edges[0::2], edges[1::2])]


def score_annotations(scores, sfreq: float) -> list[Annotation]:
    """Annotations (seconds and samples) for BeatScores, SegmentScores or an ``(channels, n)`` anomaly map.

    Each description holds the score (``score=1.234``) and, where a threshold is known, ``abnormal``.
    """
    out = []
    sf = float(sfreq)
    if isinstance(scores, BeatScores):
        for s, sym, v in zip(np.asarray(scores.sample), scores.symbol, np.asarray(scores.score)):
            flag = " abnormal" if scores.threshold is not None and v > scores.threshold else ""
            out.append(Annotation(onset=int(s) / sf, duration=0.0, sample=int(s),
                                  description=f"beat {sym or '?'} score={float(v):.4g}{flag}"))
    elif isinstance(scores, SegmentScores):
        # "segment", not the segment's file name: names are input paths, which may identify the patient
        for a, b, v, lab in zip(np.asarray(scores.start), np.asarray(scores.stop),
                                np.asarray(scores.score), np.asarray(scores.label)):
            out.append(Annotation(onset=int(a) / sf, duration=(int(b) - int(a)) / sf, sample=int(a),
                                  description=f"segment score={float(v):.4g}{' abnormal' if int(lab) else ''}"))
    else:
        for a, b, v in anomaly_runs(np.asarray(scores)):
            out.append(Annotation(onset=a / sf, duration=(b - a) / sf, sample=a,
                                  description=f"anomaly score={v:.4g}"))
    return out


def write_wfdb_annotations(annotations: list[Annotation], sfreq: float, out_dir: str | os.PathLike,
                           record_name: str, *, extension: str = WFDB_EXTENSION) -> Path:
    """Write *annotations* as the WFDB annotation file ``out_dir/record_name.<extension>``.

    Every annotation is a comment annotation (``"``) at its sample, with its description (and duration
    when it has one) as ``aux_note``, so WFDB viewers show the score without claiming a beat type.
    Written to a temporary folder first, then moved into place.

    Returns
    -------
    Path
        The annotation file.
    """
    import wfdb

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    dest = out_dir / f"{record_name}.{extension}"
    anns = sorted(annotations, key=lambda a: a.sample if a.sample is not None else round(a.onset * sfreq))
    samples = np.array([a.sample if a.sample is not None else round(a.onset * sfreq) for a in anns], np.int64)
    aux = [a.description + (f" dur={a.duration:.4g}s" if a.duration else "") for a in anns]
    with output_set(out_dir, f"{record_name}.{extension}") as staged:  # fsynced, renamed into place
        tmp = staged.dir
        if len(anns):
            wfdb.wrann(record_name, extension, samples, symbol=[_NOTE] * len(anns), aux_note=aux,
                       fs=float(sfreq), write_dir=str(tmp))
        else:  # wrann refuses an empty list; an empty annotation file is just its end marker
            (tmp / dest.name).write_bytes(b"\x00\x00")
    return dest


def write_edf_annotations(signal: Signal, annotations: list[Annotation], dest: str | os.PathLike) -> Path:
    """Write *signal* as EDF+ (BDF+ for ``.bdf``) whose annotations are *annotations* (atomic).

    The samples go through :func:`engine.export.signals.write_edf`; the header's patient and
    recording fields are the anonymous defaults ("X").
    """
    from engine.export.signals import write_edf

    return write_edf(dataclasses.replace(signal, annotations=tuple(annotations)), dest, annotations=True)


def write_npy(array: np.ndarray, dest: str | os.PathLike) -> Path:
    """A float32 ``.npy`` written atomically."""
    with atomic_path(dest) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, np.asarray(array, np.float32))
    return Path(dest)


def check_score_formats(formats, data) -> tuple[str, ...]:
    """The validated ``--formats`` of a scoring task (None: ``("csv",)``); annotations need WFDB or EDF/BDF input."""
    from engine.errors import LatentError
    from engine.export import parse_formats

    if formats is None:
        return ("csv",)
    names = parse_formats(formats, SCORE_FORMATS, "scores")
    if "annotations" in names:
        for d in ([data] if isinstance(data, Signal) else list(data)):
            fmt = str(d.metadata.get("format", "")).upper()
            if not (fmt.startswith("WFDB") or fmt in ("EDF", "BDF")):
                raise LatentError(f"format 'annotations' needs a WFDB or EDF/BDF recording; {d.path} is "
                                  f"{fmt or 'a headerless file'}")
    return tuple(dict.fromkeys(names))


#: Upper bound of the bytes of one score annotation (WFDB: code, skip, aux text; EDF+: its TAL entry).
_SCORE_ANNOTATION_BYTES = 96


def estimate_score_annotation_bytes(scores, data: Signal) -> int:
    """Bytes :func:`write_score_annotations` writes: the annotations, plus (EDF/BDF input) the recording."""
    n = len(score_annotations(scores, data.sfreq)) * _SCORE_ANNOTATION_BYTES + 1024
    fmt = str(data.metadata.get("format", "")).upper()
    if not fmt.startswith("WFDB"):  # the recording itself, 2 (EDF) or 3 (BDF) bytes per sample, + headers
        from engine.export.signals import _record_layout

        _, spr = _record_layout(float(data.sfreq), int(data.n_samples))
        n_total = -(-int(data.n_samples) // spr) * spr  # whole data records
        n += (3 if fmt == "BDF" else 2) * len(data.channels) * n_total + 256 * (len(data.channels) + 2)
    return n


def write_score_annotations(scores, data: Signal, out_dir: str | os.PathLike, stem: str) -> list[Path]:
    """*scores* as annotations in the input's family: ``<stem>.latent`` (WFDB annotator, read with
    ``wfdb.rdann(record, "latent")``) beside a WFDB record, or ``<stem>_scores.edf`` / ``.bdf``
    (the recording as EDF+ / BDF+ with the scores as its annotations) for EDF/BDF input."""
    anns = score_annotations(scores, data.sfreq)
    fmt = str(data.metadata.get("format", "")).upper()
    if fmt.startswith("WFDB"):
        return [write_wfdb_annotations(anns, data.sfreq, out_dir, stem)]
    ext = "bdf" if fmt == "BDF" else "edf"
    return [write_edf_annotations(data, anns, Path(out_dir) / f"{stem}_scores.{ext}")]
