"""Beat anomaly AUROC (AAMI N against S/V/F): leave-records-out CV of the beat AE against the median-beat template.

    .venv/bin/python benchmarks/bench_ecg_beats.py [--data ../shared/data] [--epochs 8] [--max-beats 600]

Same folds as the denoising CV (``signal_splits.ecg_folds``: 5 folds over the 35 MIT-BIH
records, grouped by record). In each fold a ``beat-cae`` is fitted on the N beats of
the other folds' records only (``scripts/train_ecg_beats.fit_ae``; at most
``--max-beats`` beats per record, a fixed seeded subset), and each score's RR weight
is chosen among ``RR_GRID`` by AUROC on those training records, and two class-balanced
logistic read-outs are fitted on those records' labelled beats; the test fold is only
scored. Beats come from the reference annotations, lead MLII read by name;
Q-class beats are left out. Scores (higher = more abnormal):

* ``AE + RR``: ``log(d / median d) + w * max(prematurity, 0)``, *d* the AE-code distance
  to the record's median code (the shipped ``ecg-beats`` score);
* ``AE only`` (w = 0); ``RR only`` (prematurity alone);
* ``template``: ``1 - corr(beat, record median beat)`` (the baseline), and
  ``template + RR`` with its own RR weight chosen the same way;
* ``LR: template + RR`` / ``LR: AE + template + RR``: logistic read-outs over the
  record-relative features (log template distance, prematurity, signed prematurity),
  without and with the log AE-code distance (what the AE adds on top of the template).
Printed: pooled AUROC per fold and over all folds, per class (N vs S, V, F
separately), and per record.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

SCORES = ("AE + RR", "AE only", "RR only", "template", "template + RR", "LR: template + RR", "LR: AE + template + RR")
RR_GRID = (0.0, 2.0, 4.0, 8.0, 12.0, 16.0, 24.0, 32.0)


def _auc(y, s) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, s)) if 0 < y.sum() < len(y) else float("nan")


def record_terms(model, rec) -> dict:
    """Labels and raw score terms of one record's valid non-Q beats."""
    import torch

    from engine.tasks.score_beats import baseline_corr_scores, beat_scale, latent_distance

    beats, valid, cls, prem = rec
    m = valid & (cls != "Q")
    b = torch.from_numpy((beats[m] / beat_scale(beats[valid])).astype(np.float32))[:, None]
    with torch.inference_mode():
        lat = latent_distance(model.encode(b).numpy())
    return {"cls": cls[m], "prem": prem[m], "lat": lat, "corr": baseline_corr_scores(beats, valid)[m]}


def features(t: dict) -> np.ndarray:
    """Per-beat, record-relative features: log AE-code distance, log template distance, prematurity."""
    from engine.tasks.score_beats import combine_scores

    return np.stack([combine_scores(t["lat"], t["prem"], rr_weight=0.0),
                     combine_scores(t["corr"] + 1e-3, t["prem"], rr_weight=0.0),
                     np.maximum(t["prem"], 0), t["prem"]], axis=1).astype(np.float64)


def fit_readouts(terms: list[dict]) -> dict:
    """Logistic read-outs (class-balanced) on the training records' beats: without / with the AE feature."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = np.concatenate([features(t) for t in terms])
    y = np.concatenate([t["cls"] for t in terms]) != "N"
    out = {}
    for name, cols in (("LR: template + RR", [1, 2, 3]), ("LR: AE + template + RR", [0, 1, 2, 3])):
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, class_weight="balanced", max_iter=500))
        out[name] = (cols, clf.fit(x[:, cols], y))
    return out


def scores_of(t: dict, w_ae: float, w_tpl: float, readouts: dict) -> dict:
    from engine.tasks.score_beats import combine_scores

    p = np.maximum(t["prem"], 0)
    out = {"AE + RR": combine_scores(t["lat"], t["prem"], rr_weight=w_ae),
           "AE only": combine_scores(t["lat"], t["prem"], rr_weight=0.0), "RR only": p,
           "template": t["corr"], "template + RR": combine_scores(t["corr"] + 1e-3, t["prem"], rr_weight=w_tpl)}
    f = features(t)
    for name, (cols, clf) in readouts.items():
        out[name] = clf.decision_function(f[:, cols])
    return out


def choose_weight(terms: list[dict], key: str, weights) -> float:
    """The RR weight with the best pooled AUROC on these (training) records."""
    from engine.tasks.score_beats import combine_scores

    y = np.concatenate([t["cls"] for t in terms]) != "N"
    auc = {w: _auc(y, np.concatenate([combine_scores(t[key] + (1e-3 if key == "corr" else 0), t["prem"],
                                                     rr_weight=w) for t in terms])) for w in weights}
    return max(auc, key=auc.get)


def main(argv=None) -> int:
    import torch
    from signal_splits import ECG_RECORDS, ecg_folds
    from train_ecg_beats import fit_ae, record_beats

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--max-beats", type=int, default=600, help="training beats per record (seeded subset)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    mitdb = args.data / "ecg" / "mitdb"
    recs = {r: record_beats(mitdb, r) for r in ECG_RECORDS}
    rng = np.random.default_rng(args.seed)
    sub = {}
    for r, (beats, valid, cls, prem) in recs.items():
        keep = np.sort(rng.permutation(len(beats))[:args.max_beats])
        sub[r] = (beats[keep], valid[keep], cls[keep], prem[keep])
    folds = ecg_folds()
    test_terms, fold_rows, weights = {}, [], []
    for i, fold in enumerate(folds):
        train = [r for r in ECG_RECORDS if r not in fold]
        model, _, n = fit_ae({r: sub[r] for r in train}, args.epochs, args.seed, log=lambda m: None)
        tr_terms = [record_terms(model, recs[r]) for r in train]
        w_ae, w_tpl = choose_weight(tr_terms, "lat", RR_GRID), choose_weight(tr_terms, "corr", RR_GRID)
        readouts = fit_readouts(tr_terms)
        weights.append((w_ae, w_tpl))
        for r in fold:
            t = record_terms(model, recs[r])
            test_terms[r] = (t["cls"], scores_of(t, w_ae, w_tpl, readouts))
        y = np.concatenate([test_terms[r][0] for r in fold]) != "N"
        row = {k: _auc(y, np.concatenate([test_terms[r][1][k] for r in fold])) for k in SCORES}
        fold_rows.append(row)
        print(f"fold {i} ({' '.join(fold)}): {n} training beats, RR weight AE {w_ae:g} / template {w_tpl:g}; "
              + ", ".join(f"{k} {v:.4f}" for k, v in row.items()), flush=True)
    cls_all = np.concatenate([test_terms[r][0] for r in ECG_RECORDS])
    sc_all = {k: np.concatenate([test_terms[r][1][k] for r in ECG_RECORDS]) for k in SCORES}
    print("\n### Pooled AUROC on unseen records (N vs S/V/F, and per class vs N)\n")
    print("| score | N vs S/V/F | N vs S | N vs V | N vs F | folds above template + RR | folds above template |")
    print("|---|---|---|---|---|---|---|")
    for k in SCORES:
        cells = [_auc(cls_all != "N", sc_all[k])]
        for c in "SVF":
            m = (cls_all == "N") | (cls_all == c)
            cells.append(_auc(cls_all[m] == c, sc_all[k][m]))
        above = sum(row[k] > row["template + RR"] for row in fold_rows)
        above_t = sum(row[k] > row["template"] for row in fold_rows)
        print(f"| {k} | " + " | ".join(f"{v:.4f}" for v in cells) + f" | {above}/5 | {above_t}/5 |")
    print("\nfolds where LR: AE + template + RR > LR: template + RR: "
          f"{sum(r['LR: AE + template + RR'] > r['LR: template + RR'] for r in fold_rows)}/5")
    print(f"\nbeats: {len(cls_all)} (N {int((cls_all == 'N').sum())}, S {int((cls_all == 'S').sum())}, "
          f"V {int((cls_all == 'V').sum())}, F {int((cls_all == 'F').sum())})")
    print_fold_and_record_tables(SCORES, fold_rows, test_terms, ECG_RECORDS,
                                 "Per fold (pooled AUROC N vs S/V/F)",
                                 "Per record (AUROC N vs S/V/F; records with >= 5 abnormal beats)")
    return 0


def print_fold_and_record_tables(names, fold_rows, test, records, fold_title, record_title) -> None:
    """Markdown tables: pooled AUROC per fold (``fold_rows[i][name]``) and AUROC N vs S/V/F per
    record with >= 5 abnormal beats (``test[record] = (classes, {name: scores})``)."""
    print(f"\n### {fold_title}\n")
    print("| fold | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for i, row in enumerate(fold_rows):
        print(f"| {i} | " + " | ".join(f"{row[n]:.4f}" for n in names) + " |")
    print(f"\n### {record_title}\n")
    print("| record | N | S/V/F | " + " | ".join(names) + " |")
    print("|---|---|---|" + "---|" * len(names))
    for r in records:
        cls, sc = test[r]
        y = cls != "N"
        if y.sum() >= 5:
            cells = " | ".join(f"{_auc(y, sc[n]):.4f}" for n in names)
            print(f"| {r} | {int((~y).sum())} | {int(y.sum())} | {cells} |")


if __name__ == "__main__":
    raise SystemExit(main())
