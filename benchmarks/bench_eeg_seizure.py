"""Bonn seizure detection (S against Z, O, N, F): the shipped eeg-seizure model and baselines.

    .venv/bin/python benchmarks/bench_eeg_seizure.py [--data ../shared/data] [--model eeg-seizure] [--no-cv]

1. Stratified 5-fold cross-validation over every Bonn segment in the data folder
   (everything, the sparse AE included, refitted inside each fold): the SSAE +
   features model (logistic read-out) against the band-power + logistic-regression
   baseline; mean ± sd over folds.
2. The shipped model on every segment it was not trained on (its metadata lists the
   training files), through the real ``score-segments`` task, against the baseline
   fitted on the same training files.
Balanced accuracy, sensitivity and specificity at the model's threshold; AUROC.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))


def _row(name, m):
    return (f"| {name:<34} | {m['balanced_accuracy']:.4f} | {m['sensitivity']:.4f} | "
            f"{m['specificity']:.4f} | {m['auroc']:.4f} |")


def main(argv=None) -> int:
    import torch
    from sklearn.model_selection import StratifiedKFold

    from engine.eeg import read_segments, score_segments_task
    from engine.jobs import run_job
    from engine.weights import load
    from train_eeg_seizure import baseline_fit_predict, features, fit, load_bonn, metrics, predict

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--model", default="eeg-seizure")
    ap.add_argument("--no-cv", action="store_true", help="skip the cross-validation part")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    files, x, y = load_bonn(args.data / "eeg" / "bonn")
    spec, extra, bp = features(x)
    head = ("| method                             | bal.acc | sens.  | spec.  | AUROC  |\n"
            "|------------------------------------|---------|--------|--------|--------|")
    print(f"Bonn segments: {len(y)} ({int(y.sum())} S, {int((~y).sum())} Z/O/N/F)")
    if not args.no_cv:
        cv = {"SSAE + features (logistic)": [], "baseline band power + LR": []}
        for tr, te in StratifiedKFold(5, shuffle=True, random_state=0).split(x, y):
            m = fit(spec[tr], extra[tr], y[tr])
            cv["SSAE + features (logistic)"].append(metrics(y[te], predict(m, spec[te], extra[te])))
            cv["baseline band power + LR"].append(metrics(y[te], baseline_fit_predict(bp[tr], y[tr], bp[te])))
        print("\n5-fold stratified CV (mean ± sd over folds):")
        print("| method                             | bal.acc       | sens.         | spec.         | AUROC         |")
        print("|------------------------------------|---------------|---------------|---------------|---------------|")
        for k, v in cv.items():
            cells = " | ".join(f"{np.mean([f[c] for f in v]):.4f}±{np.std([f[c] for f in v]):.4f}"
                               for c in ("balanced_accuracy", "sensitivity", "specificity", "auroc"))
            print(f"| {k:<34} | {cells} |")
    lm = load(args.model)
    trained = set(lm.meta.get("training", {}).get("files", []))
    is_train = np.array([f"{f.parent.name}/{f.name}" in trained for f in files])
    unseen = ~is_train
    if not unseen.any():
        print("\nno segment outside the model's training files in this folder")
        return 0
    datas = read_segments([str(f) for f in np.array(files, dtype=object)[unseen]])
    res = run_job(score_segments_task(datas, model=lm, device="cpu"))
    thr = float(res.threshold)
    base = baseline_fit_predict(bp[is_train], y[is_train], bp[unseen]) if is_train.any() else None
    print(f"\nshipped model {lm.name} (sha256 {lm.sha256[:12]}) on the {int(unseen.sum())} segments it never saw "
          f"({int(y[unseen].sum())} S); threshold {thr:g}:")
    print(head)
    print(_row("eeg-seizure (SSAE + features)", metrics(y[unseen], res.score.astype(np.float64), thr)))
    if base is not None:
        print(_row("baseline band power + LR", metrics(y[unseen], base)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
