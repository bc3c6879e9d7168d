"""Bonn seizure detection (S against Z, O, N, F): the eeg-seizure recipe against the baseline.

    .venv/bin/python benchmarks/bench_eeg_seizure.py [--data ../shared/data] [--model eeg-seizure] [--no-cv]

1. Stratified 5-fold cross-validation over every Bonn segment in the data folder
   (everything, the sparse AE and the tuned threshold included, refitted inside each
   fold): the SSAE + features recipe (logistic read-out) against the band-power +
   logistic-regression baseline, at logit 0 (P 0.5) and at the balanced-accuracy-
   maximising threshold chosen on inner out-of-fold scores; mean ± sd over folds.
   This is the generalisation estimate of the shipped model, which is the final fit
   of the same recipe on all shared segments.
2. The shipped model on segments of the folder that are NOT among its training files
   (through the real ``score-segments`` task). With the shared data there are none,
   since the shipped model is trained on all of them; point --data at a folder with
   other Bonn segments to get a held-out test.
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
    from train_eeg_seizure import (
        baseline_fit_predict,
        cross_validate,
        features,
        load_bonn,
        metrics,
        print_table,
        summarise,
    )

    from engine.jobs import run_job
    from engine.tasks.score_segments import read_segments, score_segments_task
    from engine.weights import load

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
        print("\nSPLIT: stratified 5-fold CV over all these segments (nested CV for the tuned threshold)")
        rows, _ = cross_validate(spec, extra, bp, y, seed=0, log=lambda *_: None)
        print_table(summarise(rows))
    lm = load(args.model)
    trained = set(lm.meta.get("training", {}).get("files", []))
    is_train = np.array([f"{f.parent.name}/{f.name}" in trained for f in files])
    unseen = ~is_train
    if not unseen.any():
        print(f"\nshipped model {lm.name}: trained on all {len(y)} segments of this folder, so no held-out test "
              "here; its generalisation estimate is the 5-fold CV table (printed unless --no-cv)")
        return 0
    datas = read_segments([str(f) for f in np.array(files, dtype=object)[unseen]])
    res = run_job(score_segments_task(datas, model=lm, device="cpu"))
    thr = float(res.threshold)
    base = baseline_fit_predict(bp[is_train], y[is_train], bp[unseen]) if is_train.any() else None
    print(f"\nSPLIT: held-out - shipped model {lm.name} (sha256 {lm.sha256[:12]}) on the {int(unseen.sum())} "
          f"segments of this folder it never saw "
          f"({int(y[unseen].sum())} S); threshold {thr:g}:")
    print(head)
    print(_row("eeg-seizure (SSAE + features)", metrics(y[unseen], res.score.astype(np.float64), thr)))
    if base is not None:
        print(_row("baseline band power + LR", metrics(y[unseen], base)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
