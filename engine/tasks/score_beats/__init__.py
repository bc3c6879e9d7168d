"""ECG beat anomaly scores (``score-beats``) with the ``ecg-beats`` autoencoder.

Pipeline, per record:

1. Beat positions: the reference annotations' beat marks (AAMI beat symbols) when
   the record has any, otherwise WFDB's GQRS detector on the scored lead (empty
   symbol for detected beats).
2. Beat windows of lead ``channel`` (default 0, MLII in MIT-BIH) resampled to 360 Hz,
   0.256 s before to 0.456 s after the R peak, each minus its median, divided by
   the record's median beat peak-to-peak amplitude (unsupervised, per record).
3. Score = ``log(d / median(d over the record)) + rr_weight * max(premature, 0)``
   with ``premature`` = ``1 - RR_prev / RR_local`` scaled down in irregular rhythms
   (``premature_adj`` of :func:`engine.tasks.score_beats.beats.rr_features`; rhythm context:
   supraventricular ectopics look normal but come early). ``d`` is, by the model's ``score.mode``:
   ``"latent"`` (shipped) the robust distance of the beat's AE code to the record's
   median code, or ``"error"`` the AE reconstruction MSE. On records left out of the
   AE's training the reconstruction error generalised poorly (the AE trained on
   N beats, which include bundle-branch-block beats, also reconstructs ventricular
   beats of a new patient), the code distance did not; see the training script.
   ``mode``, ``rr_weight`` and the threshold come from the model's metadata.
   Mode ``"readout"``: the score is instead the model's stored linear read-out
   (:mod:`engine.tasks.score_beats.readout`) over record-relative rhythm and template
   features (and the AE-code distance if the read-out lists ``ae``); ``use_rr=False``
   then falls back to ``log(d / median d)`` of the AE-code distance.

The record is read in chunks, so a 24-hour Holter stays within bounded memory
(beats themselves are kept: 1 KB each).
"""
from __future__ import annotations

import csv
import logging
import os
import time
from pathlib import Path
from typing import Generator

import numpy as np

from engine.data import Signal
from engine.errors import ModalityMismatchError, ModelError
from engine.jobs import Progress
from engine.results import BeatScores
from engine.tasks._models import resolve_model
from engine.tasks.score_beats.beats import (BEAT_LEN, beats_from_annotations, corr_distance, detect_qrs,
                                         extract_beats, rr_features)

__all__ = ["score_beats_task", "write_beat_scores", "estimate_beat_scores_bytes", "summarize",
           "beat_scale", "combine_scores", "reference_beats", "latent_distance",
           "baseline_corr_scores"]

logger = logging.getLogger("engine")

#: Samples read per chunk (10 min at 360 Hz) and the overlap kept on each side.
CHUNK_S = 600.0
MARGIN_S = 2.0


def beat_scale(beats: np.ndarray) -> float:
    """The record's amplitude unit: median beat peak-to-peak (mV), floored at 0.05 mV."""
    if len(beats) == 0:
        return 1.0
    return float(max(np.median(beats.max(axis=1) - beats.min(axis=1)), 0.05))


def latent_distance(codes: np.ndarray) -> np.ndarray:
    """Robust distance of each beat's AE code to the record's median code.

    ``sqrt(mean(((z - median(z)) / MAD(z))**2))`` over code dimensions, the median and MAD
    taken over the record's beats (unsupervised, per record).
    """
    z = np.asarray(codes, np.float64)
    if len(z) == 0:
        return np.zeros(0)
    med = np.median(z, axis=0)
    mad = np.median(np.abs(z - med), axis=0) + 1e-3
    return np.sqrt(np.mean(((z - med) / mad) ** 2, axis=1))


def combine_scores(err: np.ndarray, premature: np.ndarray, *, rr_weight: float) -> np.ndarray:
    """``log(err / median(err)) + rr_weight * max(premature, 0)`` (higher = more abnormal).

    *err* is any per-beat deviation (reconstruction error or latent distance).
    """
    err = np.asarray(err, dtype=np.float64)
    ref = float(np.median(err)) if err.size else 1.0
    out = np.log((err + 1e-8) / (ref + 1e-8))
    if rr_weight:
        out = out + rr_weight * np.maximum(np.asarray(premature, dtype=np.float64), 0.0)
    return out.astype(np.float32)


def baseline_corr_scores(beats: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """The unsupervised baseline: ``1 - corr(beat, record median beat)`` per beat."""
    med = np.median(beats[valid], axis=0) if valid.any() else np.zeros(beats.shape[1])
    return corr_distance(beats, med).astype(np.float32)


def _reference_annotations(data: Signal):
    ranges = (data.metadata or {}).get("annotation_ranges")
    if ranges:
        first = next(iter(ranges.values()))
        return data.annotations[first[0]:first[1]]
    return data.annotations


def reference_beats(data: Signal, channel: int = 0
                    ) -> Generator[Progress, None, tuple[np.ndarray, tuple[str, ...], bool]]:
    """Beat samples and symbols: annotations when present, else QRS detection chunk by chunk.

    Returns ``(samples, symbols, detected)``.
    """
    samples, symbols = beats_from_annotations(_reference_annotations(data), data.n_samples)
    if len(samples):
        return samples, symbols, False
    fs = float(data.sfreq)
    chunk, margin = int(CHUNK_S * fs), int(MARGIN_S * fs)
    found = []
    for start in range(0, data.n_samples, chunk):
        a, b = max(0, start - margin), min(data.n_samples, start + chunk + margin)
        x = data.read(a, b)[channel]
        peaks = detect_qrs(x, fs) + a
        found.append(peaks[(peaks >= start) & (peaks < start + chunk)])
        yield Progress(0.3 * min(1.0, (start + chunk) / data.n_samples), "detecting QRS complexes")
    samples = np.unique(np.concatenate(found)) if found else np.zeros(0, np.int64)
    if len(samples):
        keep = np.concatenate([[True], np.diff(samples) > int(0.2 * fs)])
        samples = samples[keep]
    return samples.astype(np.int64), ("",) * len(samples), True


def _collect_beats(data: Signal, samples: np.ndarray, channel: int) -> Generator[Progress, None, tuple]:
    fs = float(data.sfreq)
    chunk, margin = int(CHUNK_S * fs), int(MARGIN_S * fs)
    beats = np.zeros((len(samples), BEAT_LEN), np.float32)
    valid = np.zeros(len(samples), bool)
    for start in range(0, data.n_samples, chunk):
        sel = np.flatnonzero((samples >= start) & (samples < start + chunk))
        if sel.size:
            a, b = max(0, start - margin), min(data.n_samples, start + chunk + margin)
            x = data.read(a, b)[channel]
            bt, ok = extract_beats(x, fs, samples[sel], offset=a)
            beats[sel], valid[sel] = bt, ok
        yield Progress(0.3 + 0.3 * min(1.0, (start + chunk) / data.n_samples), "extracting beats")
    return beats, valid


def score_beats_task(data: Signal, *, model=None, device=None, channel: int | None = None, use_rr: bool = True,
                     batch_size: int = 512, **options) -> Generator[Progress, None, BeatScores]:
    """Score every beat of an ECG record (higher = more abnormal).

    Parameters
    ----------
    data : Signal
        An ECG record (any sampling rate; beats are resampled to 360 Hz).
    model : str or LoadedModel, optional
        Bundled name or ``.safetensors`` path; default ``ecg-beats``.
    device : str, optional
        ``"cpu"``/``"cuda"``; default: CUDA when available.
    channel : int, optional
        The lead scored (default: the lead named ``MLII`` if there is one, else 0; MIT-BIH
        record 114, for one, stores MLII second).
    use_rr : bool
        Add the RR-prematurity term (the model's ``rr_weight``); False = morphology only.
    """
    import torch

    from engine._shared.device import choose_device

    if data.modality != "ecg":
        raise ModalityMismatchError(f"{data.path}: score-beats needs an ECG record, this is {data.modality}")
    if channel is None:
        channel = data.channels.index("MLII") if "MLII" in data.channels else 0
    if not 0 <= channel < len(data.channels):
        raise ModelError(f"{data.path}: channel {channel} out of range (record has {len(data.channels)})")
    t0 = time.perf_counter()
    lm = resolve_model(model, "score-beats", "ecg")
    if lm.meta.get("architecture") != "beat-cae":
        raise ModelError(f"{lm.name}: not a beat model (architecture {lm.meta.get('architecture')!r}); use ecg-beats")
    score_cfg = lm.meta.get("score", {})
    rr_weight = float(score_cfg.get("rr_weight", 0.0)) if use_rr else 0.0
    dev = choose_device(device)
    net = lm.module.to(dev).eval()
    yield Progress(0.0, "finding beats")
    samples, symbols, detected = yield from reference_beats(data, channel)
    beats, valid = yield from _collect_beats(data, samples, channel)
    scale = beat_scale(beats[valid])
    mode = str(score_cfg.get("mode", "error"))
    if mode not in ("error", "latent", "readout"):
        raise ModelError(f"{lm.name}: unknown beat score mode {mode!r}")
    err = np.full(len(samples), np.nan, np.float64)
    idx = np.flatnonzero(valid)
    codes = np.zeros((idx.size, int(lm.meta["hparams"]["latent"])), np.float32)
    with torch.inference_mode():
        for i in range(0, idx.size, batch_size):
            sel = idx[i:i + batch_size]
            xb = torch.from_numpy(beats[sel] / scale).to(dev)[:, None]
            z = net.encode(xb)
            codes[i:i + len(sel)] = z.cpu().numpy()
            err[sel] = ((net(xb) - xb) ** 2).mean(dim=(1, 2)).double().cpu().numpy()
            yield Progress(0.6 + 0.4 * min(1.0, (i + batch_size) / max(idx.size, 1)), "scoring beats")
    if mode in ("latent", "readout"):
        err[idx] = latent_distance(codes)
    rr = rr_features(samples, float(data.sfreq))
    score = np.full(len(samples), np.nan, np.float32)
    if idx.size and mode == "readout" and use_rr:
        from engine.tasks.score_beats.readout import beat_features, linear_readout

        feats = beat_features(beats / scale, samples, float(data.sfreq), idx, ae_distance=err[idx])
        score[idx] = linear_readout(feats, score_cfg["readout"])
    elif idx.size:
        score[idx] = combine_scores(err[idx], rr["premature_adj"][idx], rr_weight=rr_weight)
    params = {"score_mode": mode, "channel": int(channel), "channel_name": data.channels[channel],
              "use_rr": bool(use_rr),
              "rr_weight": rr_weight, "beats_from": "QRS detector (gqrs)" if detected else "annotations",
              "n_beats": int(len(samples)), "n_unscored_edge_beats": int((~valid).sum()),
              "amplitude_scale_mv": scale, "seconds": round(time.perf_counter() - t0, 3),
              "device": str(dev), "input": os.fspath(data.path)}
    yield Progress(1.0, f"{len(samples)} beats scored")
    return BeatScores(sample=samples, symbol=tuple(symbols), score=score, model=lm.name, sha256=lm.sha256,
                      threshold=score_cfg.get("threshold"), params=params)


#: Upper bounds (bytes) of the beats CSV header, one row (``sample,symbol,score``) and the summary JSON.
_CSV_HEADER_BYTES, _CSV_ROW_BYTES, _SUMMARY_BYTES = 32, 32, 16 << 10


def estimate_beat_scores_bytes(result: BeatScores, data: Signal, formats=None) -> int:
    """Bytes :func:`write_beat_scores` writes: a CSV row per beat, the summary, the annotations if asked."""
    from engine.export.signal_annotations import check_score_formats, estimate_score_annotation_bytes

    n = _CSV_HEADER_BYTES + _CSV_ROW_BYTES * len(result.sample) + _SUMMARY_BYTES
    if "annotations" in check_score_formats(formats, data):
        n += estimate_score_annotation_bytes(result, data)
    return n


def write_beat_scores(result: BeatScores, data: Signal, out_dir: str | os.PathLike, formats=None, *,
                      free_bytes=None) -> list[Path]:
    """Write ``<record>.beats.csv`` (``sample,symbol,score``) and ``<record>.beats.summary.json``.

    The CSV is always written; *formats* with ``annotations`` adds the scores as annotations
    viewers show (:func:`engine.export.signal_annotations.write_score_annotations`).
    """
    from engine._shared.files import atomic_path, stem_of, write_json_atomic
    from engine._shared.output_set import output_set
    from engine.export.signal_annotations import check_score_formats, write_score_annotations

    formats = check_score_formats(formats, data)
    stem = stem_of(data.path)
    names = [f"{stem}.beats.summary.json", f"{stem}.beats.csv"]
    with output_set(out_dir, f"{stem}.beats", index=names[:1], family=names,
                    estimate=estimate_beat_scores_bytes(result, data, formats),
                    free_bytes=free_bytes) as staged:  # the CSV, annotations and summary as one set
        d = staged.dir
        csv_path = d / f"{stem}.beats.csv"
        with atomic_path(csv_path) as tmp:
            with open(tmp, "w", newline="", encoding="utf-8") as fh:
                w = csv.writer(fh, lineterminator="\n")
                w.writerow(["sample", "symbol", "score"])
                for s, sym, sc in zip(result.sample, result.symbol, result.score):
                    w.writerow([int(s), sym, "" if not np.isfinite(sc) else f"{float(sc):.6g}"])
        extra = write_score_annotations(result, data, d, stem) if "annotations" in formats else []
        js = write_json_atomic(d / f"{stem}.beats.summary.json", summarize(result, data))
    return staged.finals([csv_path, *extra, js])


def summarize(result: BeatScores, data: Signal, *, outputs=()) -> dict:
    """Provenance, beat count and how many beats score above the model's threshold."""
    from engine._shared.files import stem_of

    finite = result.score[np.isfinite(result.score)]
    thr = result.threshold
    return {"model": result.model, "sha256": result.sha256, "threshold": thr,
            "n_beats": int(len(result.sample)),
            "n_above_threshold": None if thr is None else int((finite > thr).sum()),
            "parameters": result.params, "csv": f"{stem_of(data.path)}.beats.csv"}
