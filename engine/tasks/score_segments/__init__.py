"""EEG segment scores (``score-segments``): seizure-likeness and per-window anomaly tracks.

Two methods:

``"seizure"`` (model ``eeg-seizure``, architecture ``ssae-logreg``)
    Each file (or each window of a long recording) is cut into segments of the
    model's length (4097 samples at 173.61 Hz = 23.6 s; a file up to 1.5 segments
    long is scored whole), resampled to 173.61 Hz if needed, and scored per channel
    by the stacked-sparse-AE + logistic model; the window score is the maximum over
    channels (a seizure in any channel counts). The score is the logit of
    P(seizure): higher = more seizure-like; ``label = score > threshold``.
``"anomaly"`` (model ``eeg-cae`` or any calibrated signal AE)
    The recording is reconstructed window by window (engine.inference.windows) and the
    calibrated per-sample anomaly (0 = typical normal, 1 = the normal p99) is
    averaged over channels and over 2-s windows (hop 1 s): a score track for a
    multi-channel EDF; ``label = score > 1``.

``"auto"`` uses ``anomaly`` for one multi-channel recording longer than two
segments when no model is named, and ``seizure`` otherwise.

Headerless text files (the Bonn set) store no rate: :func:`read_segments` uses
``--sfreq`` when given, else the model's expected rate (173.61 Hz).
"""
from __future__ import annotations

import csv
import dataclasses
import logging
import os
import time
from pathlib import Path
from typing import Generator, Sequence

import numpy as np

from engine.data import Signal
from engine.errors import ModalityMismatchError, ModelError, WeightsError
from engine.io.montages import montage_params
from engine.jobs import Progress
from engine.results import SegmentScores
from engine.tasks import default_model

__all__ = ["score_segments_task", "write_segment_scores", "estimate_segment_scores_bytes", "summarize", "read_segments",
           "model_sfreq", "seizure_scores"]

logger = logging.getLogger("engine")

TRACK_WINDOW_S, TRACK_HOP_S = 2.0, 1.0


def model_sfreq(model: str | os.PathLike | None = None) -> float:
    """The sampling rate a segment model expects (without loading torch): 173.61 Hz for eeg-seizure."""
    from engine.weights import model_path, read_metadata

    name = os.fspath(model) if model is not None else default_model("score-segments", "eeg")
    try:
        path = Path(name) if Path(name).suffix == ".safetensors" else model_path(name)
        meta = read_metadata(path)
    except WeightsError:
        if model is None:
            return 173.61
        raise
    return float(meta.get("sfreq") or meta.get("input", {}).get("sfreq") or 173.61)


def read_segments(files: Sequence[str], *, sfreq: float | None = None, model=None) -> list[Signal]:
    """Read each file (headerless text/NumPy files as EEG, others with the reader's modality guess);
    headerless files get *sfreq* or the model's expected rate."""
    from engine.io import read
    from engine.tasks._modality import reader_modality

    rate = float(sfreq) if sfreq is not None else model_sfreq(model)
    out = []
    for f in files:
        sig = read(f, sfreq=rate, modality=reader_modality(f, "eeg"))  # ECG records are refused by the task
        out.append(sig)
    return out


def _windows(n: int, length: int) -> list[tuple[int, int]]:
    if n <= int(1.5 * length):
        return [(0, n)]
    hop = length // 2
    starts = list(range(0, n - length + 1, hop))
    if starts[-1] + length < n:
        starts.append(n - length)
    return [(s, s + length) for s in starts]


def seizure_scores(net, x: np.ndarray, fs: float) -> float:
    """Logit of one single-channel segment (µV at *fs* Hz) under a ``ssae-logreg`` model."""
    import torch

    from engine.inference.preprocess import resample
    from engine.tasks.score_segments.features import SEIZURE_FS, segment_features, window_spectra

    x = np.nan_to_num(np.asarray(x, np.float64))
    if abs(fs - SEIZURE_FS) > 1e-6:
        x = resample(x[None], fs, SEIZURE_FS, int(round(x.size * SEIZURE_FS / fs)))[0].astype(np.float64)
    spec = torch.from_numpy(window_spectra(x))[None]
    extra = torch.from_numpy(segment_features(x))[None]
    with torch.inference_mode():
        return float(net(spec, extra)[0])


def _seizure(datas, lm) -> Generator[Progress, None, tuple]:
    seg_m = int(lm.meta.get("segment_samples", 4097))
    fs_m = float(lm.meta.get("sfreq", 173.61))
    rows = []
    for i, d in enumerate(datas):
        length = max(8, int(round(seg_m * d.sfreq / fs_m)))
        for a, b in _windows(d.n_samples, length):
            x = d.read(a, b)
            s = max(seizure_scores(lm.module, x[c], d.sfreq) for c in range(x.shape[0]))
            rows.append((i, a, b, s))
        yield Progress((i + 1) / len(datas), f"scored {i + 1}/{len(datas)}")
    return rows, float(lm.meta.get("threshold", 0.0))


def _anomaly(data: Signal, lm, device) -> Generator[Progress, None, tuple]:
    from engine.inference.windows import infer_signal, signal_anomaly

    if not lm.meta.get("calibration"):
        raise ModelError(f"{lm.name} has no anomaly calibration; it cannot give a score track")
    recon = yield from infer_signal(lm, data, device=device)
    anomaly, _ = signal_anomaly(lm, data, recon)
    del recon
    mean = anomaly.mean(axis=0)
    w, h = max(1, int(TRACK_WINDOW_S * data.sfreq)), max(1, int(TRACK_HOP_S * data.sfreq))
    rows = []
    starts = range(0, max(1, data.n_samples - w + 1), h)
    for a in starts:
        b = min(data.n_samples, a + w)
        rows.append((0, a, b, float(np.mean(mean[a:b]))))
    return rows, 1.0


def score_segments_task(data, *, model=None, device=None, method: str = "auto",
                        **options) -> Generator[Progress, None, SegmentScores]:
    """Score EEG segments or windows (higher = more seizure-like / anomalous).

    Parameters
    ----------
    data : Signal or sequence of Signal
        One recording or several segment files.
    model : str, path or LoadedModel, optional
        ``eeg-seizure`` (default) or a calibrated signal AE such as ``eeg-cae``.
    method : {"auto", "seizure", "anomaly"}
        See the module docstring.
    """
    from engine.weights import LoadedModel, load

    datas = [data] if isinstance(data, Signal) else list(data)
    if not datas:
        raise ModelError("no segments to score")
    for d in datas:
        if d.modality != "eeg":
            raise ModalityMismatchError(f"{d.path}: score-segments needs EEG, this is {d.modality}")
        if d.n_samples == 0:
            raise ModelError(f"{d.path}: the recording has no samples")
    if method not in ("auto", "seizure", "anomaly"):
        raise ModelError(f"unknown method {method!r}; valid: auto, seizure, anomaly")
    t0 = time.perf_counter()
    lm = None
    if isinstance(model, LoadedModel):
        lm = model
    elif model is not None:
        lm = load(model)
    elif method == "auto":
        long_multi = (len(datas) == 1 and len(datas[0].channels) > 1
                      and datas[0].duration > 2 * 4097 / 173.61)
        if long_multi:
            try:
                lm = load(default_model("reconstruct", "eeg"))
            except WeightsError as exc:
                logger.warning("%s unavailable (%s); scoring seizure-likeness instead",
                               default_model("reconstruct", "eeg"), exc)
    if lm is None:
        lm = load(default_model("reconstruct" if method == "anomaly" else "score-segments", "eeg"))
    kind = "seizure" if lm.meta.get("architecture") == "ssae-logreg" else "anomaly"
    if method not in ("auto", kind):
        raise ModelError(f"{lm.name} gives {kind} scores, not {method} scores")
    method = kind
    if lm.meta.get("modality") != "eeg":
        raise ModalityMismatchError(f"{lm.name} is a {lm.meta.get('modality')} model, not an EEG model")
    yield Progress(0.0, f"scoring with {lm.name} ({method})")
    if method == "seizure":
        rows, thr = yield from _seizure(datas, lm)
    else:
        if len(datas) != 1:
            raise ModelError("the anomaly track scores one recording at a time")
        rows, thr = yield from _anomaly(datas[0], lm, device)
    idx = np.array([r[0] for r in rows], np.int64)
    score = np.array([r[3] for r in rows], np.float32)
    params = {"method": method, "n_files": len(datas), "seconds": round(time.perf_counter() - t0, 3),
              "file_index": idx.tolist(), "sfreq": [float(d.sfreq) for d in datas]}
    params.update(montage_params(datas[0]))  # the montage the recording was read through
    if method == "anomaly":
        params.update(window_s=TRACK_WINDOW_S, hop_s=TRACK_HOP_S)
    yield Progress(1.0, f"{len(rows)} segment(s) scored")
    return SegmentScores(start=np.array([r[1] for r in rows], np.int64), stop=np.array([r[2] for r in rows], np.int64),
                         score=score, label=(score > thr).astype(np.int64), model=lm.name, sha256=lm.sha256,
                         threshold=thr, names=tuple(os.fspath(datas[i].path) for i in idx), params=params)


#: Upper bounds (bytes): a CSV row (a file path and numbers), a CSV header, the summary JSON.
_ROW_BYTES, _HEADER_BYTES, _SUMMARY_BYTES = 96, 64, 16 << 10


def estimate_segment_scores_bytes(result: SegmentScores, data, formats=None) -> int:
    """Bytes :func:`write_segment_scores` writes: a row per file and per window (paths counted as they
    are), the summary, and the annotations of every file when asked."""
    from engine.export.signal_annotations import check_score_formats, estimate_score_annotation_bytes

    datas = _as_list(data)
    paths = [len(os.fspath(d.path).encode()) for d in datas]
    n = 2 * _HEADER_BYTES + _SUMMARY_BYTES + sum(paths) + _ROW_BYTES * len(datas)
    if len(result.score) > len(datas):
        idx = _file_index(result)
        n += sum(paths[i] for i in idx) + _ROW_BYTES * len(idx)
    if "annotations" in check_score_formats(formats, data):
        idx = _file_index(result)
        n += sum(estimate_score_annotation_bytes(_file_part(result, idx == i), d) for i, d in enumerate(datas))
    return int(n)


def write_segment_scores(result: SegmentScores, data, out_dir: str | os.PathLike, formats=None, *,
                         free_bytes=None) -> list[Path]:
    """Write ``segments.csv`` (``file,score,seizure``: one row per file, the maximum over its
    windows), ``windows.csv`` when a file had several windows (``file,start_s,stop_s,score,label``)
    and ``segments.summary.json``, as one output set (:func:`engine._shared.output_set.output_set`)."""
    from engine._shared.output_set import output_set
    from engine.export.signal_annotations import check_score_formats

    formats = check_score_formats(formats, data)
    names = ["segments.summary.json", "segments.csv", "windows.csv"]
    with output_set(out_dir, "segments", index=names[:1], family=names,
                    estimate=estimate_segment_scores_bytes(result, data, formats), free_bytes=free_bytes) as staged:
        written = _write_segment_files(result, _as_list(data), staged.dir, formats)
    return staged.finals(written)


def _write_segment_files(result: SegmentScores, datas: list, out_dir: Path, formats) -> list[Path]:
    from engine._shared.files import atomic_path, stem_of, write_json_atomic
    from engine.export.signal_annotations import write_score_annotations

    idx = _file_index(result)
    written = []
    seg = out_dir / "segments.csv"
    with atomic_path(seg) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(["file", "score", "seizure"])
            for path, best, lab in _per_file(result, datas):
                w.writerow([path, f"{best:.6g}", lab])
    written.append(seg)
    if len(result.score) > len(datas):
        win = out_dir / "windows.csv"
        with atomic_path(win) as tmp:
            with open(tmp, "w", newline="", encoding="utf-8") as fh:
                w = csv.writer(fh, lineterminator="\n")
                w.writerow(["file", "start_s", "stop_s", "score", "label"])
                for i, a, b, s, lab in zip(idx, result.start, result.stop, result.score, result.label):
                    fs = datas[i].sfreq
                    w.writerow([os.fspath(datas[i].path), f"{a / fs:.3f}", f"{b / fs:.3f}", f"{s:.6g}", int(lab)])
        written.append(win)
    if "annotations" in formats:  # the CSV files are always written
        idx = _file_index(result)
        for i, d in enumerate(datas):
            written += write_score_annotations(_file_part(result, idx == i), d, out_dir, stem_of(d.path))
    written.append(write_json_atomic(out_dir / "segments.summary.json", summarize(result, datas, outputs=written)))
    return written


def _file_part(result: SegmentScores, keep: np.ndarray) -> SegmentScores:
    """The windows of one input file (*keep*: its mask over the windows)."""
    return dataclasses.replace(result, start=result.start[keep], stop=result.stop[keep],
                               score=result.score[keep], label=result.label[keep],
                               names=tuple(np.asarray(result.names, dtype=object)[keep])
                               if len(result.names) == len(keep) else ())


def _as_list(data) -> list:
    return [data] if isinstance(data, Signal) else list(data)


def _file_index(result: SegmentScores) -> np.ndarray:
    return np.asarray(result.params.get("file_index", range(len(result.score))), np.int64)


def _per_file(result: SegmentScores, datas) -> list[tuple[str, float, int]]:
    """``(path, maximum score over its windows, label at the threshold)`` per input file."""
    idx = _file_index(result)
    rows = []
    for i, d in enumerate(datas):
        s = result.score[idx == i]
        best = float(np.max(s)) if s.size else float("nan")
        rows.append((os.fspath(d.path), best, int(result.threshold is not None and best > result.threshold)))
    return rows


def summarize(result: SegmentScores, data, *, outputs=()) -> dict:
    """Provenance, file count and seizure-like files of one scoring run; the outputs it writes."""
    datas = _as_list(data)
    names = [Path(p).name for p in outputs] or (["segments.csv"] + (["windows.csv"] if len(result.score) > len(datas)
                                                                      else []))
    return {"task": "score-segments", "model": result.model, "sha256": result.sha256,
            "threshold": result.threshold, "n_files": len(datas),
            "n_seizure_files": int(sum(p[2] for p in _per_file(result, datas))),
            "parameters": {k: v for k, v in result.params.items() if k != "file_index"},
            "outputs": names}
