"""Beat score read-outs over record-relative rhythm and morphology features, in the beat CV.

    .venv/bin/python benchmarks/bench_ecg_beat_readouts.py [--data ../shared/data] [--cache runs/beat_cv]

Same 5 leave-records-out folds as ``bench_ecg_beats.py`` (``signal_splits.ecg_folds``).
Per fold, the AE (``train_ecg_beats.fit_ae``, 8 epochs, 600 seeded beats per training
record) is fitted on the training records only and its code distances are cached under
``--cache`` (one ``fold<i>.npz``; the same recipe as ``bench_ecg_beats.py``). Every
supervised choice (RR weights of the baselines, the read-outs' fit) uses the training
records of the fold; the test fold is only scored.

Features per beat (``engine.tasks.score_beats.readout.beat_features``; relative to the beat's record, no labels):

* rhythm: prematurity ``1 - RR_prev/RR_local`` (raw and irregularity-scaled), the
  compensatory pause ``RR_next/RR_local - 1``, ``RR_next/RR_prev``, prematurity against
  the median of the previous 16 RR intervals, local irregularity;
* morphology: ``log(d / median d)`` of the template distance ``1 - corr`` of the whole
  window and of its P-wave (-256..-33 ms), QRS (-33..+100 ms) and ST-T (+100..+456 ms)
  parts against the record's median beat, the RMS difference of each part (in record
  amplitude units), and optionally the AE-code distance.

Read-outs: a class-balanced logistic regression and a class-balanced
``HistGradientBoostingClassifier``, each without and with the AE feature.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_ecg_beats import _auc, print_fold_and_record_tables  # noqa: E402

from engine.tasks.score_beats.readout import record_relative  # noqa: E402

RR_GRID = (0.0, 2.0, 4.0, 8.0, 12.0, 16.0, 24.0, 32.0)


def record_features(mitdb: Path, name: str) -> dict:
    """Labels and label-free features of one record's valid non-Q beats."""
    from train_ecg_beats import annotated_beats

    from engine.tasks.score_beats import baseline_corr_scores, beat_scale
    from engine.tasks.score_beats.readout import beat_features

    smp, cls, beats, valid, fs = annotated_beats(mitdb, name)
    idx = np.flatnonzero(valid)  # as score_beats_task: features over every valid beat, Q left out afterwards
    f = beat_features(beats / beat_scale(beats[valid]), smp, fs, idx)
    nq = cls[idx] != "Q"
    return {"cls": cls[idx][nq], "corr": baseline_corr_scores(beats, valid)[idx][nq],
            "f": {k: v[nq] for k, v in f.items()}}


RHYTHM = ("prem_adj", "prem", "pause", "next_prev", "prem_past", "irr")
MORPH = ("tpl", "tpl_P", "tpl_QRS", "tpl_T", "rms_P", "rms_QRS", "rms_T")
FEATURE_SETS = {
    "rhythm + template": RHYTHM + ("tpl",),
    "rhythm + template + AE": RHYTHM + ("tpl", "ae"),
    "rhythm + template parts": RHYTHM + MORPH,
    "rhythm + template parts + AE": RHYTHM + MORPH + ("ae",),
}


def _x(t: dict, cols) -> np.ndarray:
    return np.stack([t["f"][c] for c in cols], axis=1)


def _combine(d, prem, w):
    return record_relative(d) + w * np.maximum(prem, 0)


def choose_w(terms, key):
    y = np.concatenate([t["cls"] for t in terms]) != "N"
    auc = {w: _auc(y, np.concatenate([_combine(t[key], t["f"]["prem_adj"], w) for t in terms])) for w in RR_GRID}
    return max(auc, key=auc.get)


def make_readout(kind: str):
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if kind == "LR":
        return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, class_weight="balanced", max_iter=1000))
    return HistGradientBoostingClassifier(max_iter=200, learning_rate=0.1, max_leaf_nodes=15, min_samples_leaf=50,
                                          l2_regularization=1.0, class_weight="balanced", random_state=0)


def fold_ae_distances(mitdb: Path, cache: Path, folds, records) -> None:
    """Fit and cache each fold's AE (the recipe of bench_ecg_beats.py) where ``fold<i>.npz`` is missing."""
    if all((cache / f"fold{i}.npz").exists() for i in range(len(folds))):
        return
    import torch
    from bench_ecg_beats import record_terms
    from train_ecg_beats import fit_ae, record_beats

    torch.set_num_threads(1)
    recs = {r: record_beats(mitdb, r) for r in records}
    rng = np.random.default_rng(0)
    sub = {}
    for r, (beats, valid, cls, prem) in recs.items():
        keep = np.sort(rng.permutation(len(beats))[:600])
        sub[r] = (beats[keep], valid[keep], cls[keep], prem[keep])
    cache.mkdir(parents=True, exist_ok=True)
    for i, fold in enumerate(folds):
        if (cache / f"fold{i}.npz").exists():
            continue
        model, _, _ = fit_ae({r: sub[r] for r in records if r not in fold}, 8, 0, log=lambda m: None)
        np.savez(cache / f"fold{i}.npz", **{r: record_terms(model, recs[r])["lat"] for r in records})
        print(f"fold {i}: AE fitted and cached", flush=True)


def main(argv=None) -> int:
    from signal_splits import ECG_RECORDS, ecg_folds

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--cache", type=Path, default=Path(__file__).resolve().parents[1] / "runs" / "beat_cv")
    ap.add_argument("--readouts", nargs="*", default=["LR", "HGB"])
    ap.add_argument("--no-ae", action="store_true", help="skip the AE rows (no cache needed)")
    args = ap.parse_args(argv)
    sets = {s: c for s, c in FEATURE_SETS.items() if not (args.no_ae and "ae" in c)}
    mitdb = args.data / "ecg" / "mitdb"
    folds = ecg_folds()
    if not args.no_ae:
        fold_ae_distances(mitdb, args.cache, folds, ECG_RECORDS)
    feats = {r: record_features(mitdb, r) for r in ECG_RECORDS}
    names = ([] if args.no_ae else ["AE + RR"]) + ["template + RR"] + [f"{k}: {s}" for k in args.readouts for s in sets]
    test, rows = {}, []
    for i, fold in enumerate(folds):
        lat = None if args.no_ae else np.load(args.cache / f"fold{i}.npz")
        for r in ECG_RECORDS:
            feats[r]["lat"] = feats[r]["corr"] if lat is None else lat[r]
            feats[r]["f"]["ae"] = record_relative(feats[r]["lat"])
        train = [feats[r] for r in ECG_RECORDS if r not in fold]
        w_ae, w_tpl = choose_w(train, "lat"), choose_w(train, "corr")
        y_tr = np.concatenate([t["cls"] for t in train]) != "N"
        models = {}
        for k in args.readouts:
            for s, cols in sets.items():
                models[f"{k}: {s}"] = (cols, make_readout(k).fit(np.concatenate([_x(t, cols) for t in train]), y_tr))
        for r in fold:
            t = feats[r]
            sc = {"template + RR": _combine(t["corr"], t["f"]["prem_adj"], w_tpl)}
            if lat is not None:
                sc["AE + RR"] = _combine(t["lat"], t["f"]["prem_adj"], w_ae)
            for n, (cols, mdl) in models.items():
                x = _x(t, cols)
                sc[n] = mdl.decision_function(x) if hasattr(mdl, "decision_function") else mdl.predict_proba(x)[:, 1]
            test[r] = (t["cls"], sc)
        y = np.concatenate([test[r][0] for r in fold]) != "N"
        row = {n: _auc(y, np.concatenate([test[r][1][n] for r in fold])) for n in names}
        rows.append(row)
        print(f"fold {i}: RR weight AE {w_ae:g} / template {w_tpl:g}; "
              + ", ".join(f"{n} {v:.4f}" for n, v in row.items()), flush=True)
    cls_all = np.concatenate([test[r][0] for r in ECG_RECORDS])
    print("\n### Pooled AUROC on unseen records\n")
    print("| score | N vs S/V/F | N vs S | N vs V | N vs F | folds > template + RR |")
    print("|---|---|---|---|---|---|")
    for n in names:
        s = np.concatenate([test[r][1][n] for r in ECG_RECORDS])
        cells = [_auc(cls_all != "N", s)]
        for c in "SVF":
            m = (cls_all == "N") | (cls_all == c)
            cells.append(_auc(cls_all[m] == c, s[m]))
        above = sum(row[n] > row["template + RR"] for row in rows)
        print(f"| {n} | " + " | ".join(f"{v:.4f}" for v in cells) + f" | {above}/5 |")
    print_fold_and_record_tables(names, rows, test, ECG_RECORDS, "Per fold",
                                 "Per record (records with >= 5 abnormal beats)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
