"""The ``seizure`` recipe (eeg-seizure from labelled segments) and its validation."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from engine.errors import ModelError
from engine.training.finetune.common import _Plan, _train_job, split_units


def _read_labels(labels, paths) -> list[int]:
    if labels is None:
        raise ModelError("eeg-seizure fine-tuning needs labels: a CSV file,label (1 = seizure, 0 = not) "
                         "or {file: label}")
    if isinstance(labels, (str, os.PathLike)):
        import csv

        with open(labels, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh))
        if rows and not rows[0][-1].strip().lstrip("-").isdigit() and rows[0][-1].strip().lower() not in (
                "seizure", "normal", "ictal", "non-seizure"):
            rows = rows[1:]
        table = {}
        for r in rows:
            if len(r) >= 2:
                v = r[1].strip().lower()
                table[r[0].strip()] = 1 if v in ("1", "seizure", "ictal", "true", "yes") else 0
        labels = table
    out = []
    for p in paths:
        key = os.fspath(p) if isinstance(p, (str, os.PathLike)) else str(getattr(p, "path", p))
        for k in (key, Path(key).name, Path(key).stem):
            if k in labels:
                out.append(int(labels[k]))
                break
        else:
            raise ModelError(f"{key}: no label for this file in the labels given")
    return out


def _seizure_features(sig):
    from engine.inference.preprocess import resample
    from engine.tasks.score_segments.features import SEIZURE_FS, segment_features, window_spectra

    specs, extras = [], []
    for c in range(sig.data.shape[0]):
        x = np.nan_to_num(np.asarray(sig.data[c], np.float64))
        if abs(sig.sfreq - SEIZURE_FS) > 1e-6:
            x = resample(x[None], sig.sfreq, SEIZURE_FS, int(round(x.size * SEIZURE_FS / sig.sfreq)))[0]
        specs.append(window_spectra(x).astype(np.float32))
        extras.append(segment_features(x).astype(np.float32))
    return specs, extras


def _seizure_recipe(parent, items, paths, *, labels, steps, lr, batch, freeze, val_fraction, device, seed):
    import torch
    from torch.nn import functional as F

    ys = _read_labels(labels, paths)
    # stratified split by file: the last val_fraction of each class is held out
    tr_i, ho_i = [], []
    for cls in (0, 1):
        idx = [i for i, y in enumerate(ys) if y == cls]
        a, b = split_units(len(idx), val_fraction)
        tr_i += [idx[j] for j in a]
        ho_i += [idx[j] for j in b]
    if len({ys[i] for i in tr_i}) < 2:
        raise ModelError("eeg-seizure fine-tuning needs training segments of both classes (seizure and not)")
    feats = [_seizure_features(s) for s in items]
    plan = _Plan(n_train=len(tr_i), n_held_out=len(ho_i),
                 held_out_note=", ".join(str(paths[i]) for i in ho_i))
    n_win = min(s.shape[0] for i in tr_i for s in feats[i][0])
    xs, es, yl = [], [], []
    for i in tr_i:
        for sp, ex in zip(*feats[i]):
            xs.append(sp[:n_win])
            es.append(ex)
            yl.append(ys[i])
    X, E, Y = torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(es)), torch.tensor(yl, dtype=torch.float32)
    pos = float(Y.mean())
    weight = torch.where(Y > 0.5, 0.5 / max(pos, 1e-3), 0.5 / max(1 - pos, 1e-3))
    rng = np.random.default_rng(seed)

    def batch_fn(step):
        idx = torch.from_numpy(rng.integers(0, len(Y), min(batch, len(Y))))
        return torch.cat([X[idx].flatten(1), E[idx]], 1), idx

    def loss_fn(module, xe, idx):
        x = xe[:, :-E.shape[1]].reshape(len(idx), n_win, -1)
        e = xe[:, -E.shape[1]:]
        return F.binary_cross_entropy_with_logits(module(x, e), Y[idx].to(xe.device), weight=weight[idx].to(xe.device))

    held = [(feats[i], ys[i], paths[i]) for i in (ho_i or tr_i)]
    return _train_job(parent, plan, batch_fn, loss_fn, what=f"{len(tr_i)} labelled segment(s)", held=held,
                      tag="seizure", freeze=freeze, seed=seed, steps=steps, lr=lr, device=device, clip=None)


def _seizure_validation(parent, module, held):
    import torch

    def scores(net):
        out = []
        for (specs, extras), _, _ in held:
            with torch.inference_mode():
                out.append(max(float(net(torch.from_numpy(sp)[None], torch.from_numpy(ex)[None])[0])
                               for sp, ex in zip(specs, extras)))
        return np.asarray(out)
    y = np.asarray([h[1] for h in held])
    th = float(parent.meta.get("threshold", 0.0))

    def metrics(s):
        pred = s > th
        sens = float(pred[y == 1].mean()) if (y == 1).any() else float("nan")
        spec = float((~pred[y == 0]).mean()) if (y == 0).any() else float("nan")
        m = {"sensitivity": sens, "specificity": spec, "balanced_accuracy": float(np.nanmean([sens, spec])),
             "n": int(len(y))}
        if len(set(y.tolist())) == 2:
            from sklearn.metrics import roc_auc_score

            m["auroc"] = float(roc_auc_score(y, s))
        return m
    return metrics(scores(parent.module)), metrics(scores(module))
