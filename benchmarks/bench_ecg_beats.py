"""Beat anomaly AUROC (AAMI N against S/V/F) on MIT-BIH records the model never saw.

    .venv/bin/python benchmarks/bench_ecg_beats.py [--data ../shared/data] [--model ecg-beats] [--records 100 119 ...]

Records listed in the model's metadata ``training.records`` are always excluded.
Beats come from the reference annotations (lead 0, MLII); Q-class beats are left out.
Rows: the shipped score (the model's score mode -- the AE-code distance to the
record's median code, relative to the record median -- plus RR prematurity), the
same without RR ("ae only"), the AE reconstruction error with and without RR, the
unsupervised baseline ``1 - corr(beat, record median beat)``, and that baseline
with the same RR term. Pooled AUROC over all beats, plus the mean
of per-record AUROCs (records with at least 5 abnormal beats).
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    import torch
    from sklearn.metrics import roc_auc_score

    from engine.io import read
    from engine.jobs import run_job
    from engine.tasks.score_beats import baseline_corr_scores, score_beats_task
    from engine.tasks.score_beats.beats import aami_class, extract_beats, rr_features
    from engine.weights import load

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--model", default="ecg-beats")
    ap.add_argument("--records", nargs="*", default=None, help="default: every record in ecg/mitdb not trained on")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    lm = load(args.model)
    trained = set(lm.meta.get("training", {}).get("records", []))
    mitdb = args.data / "ecg" / "mitdb"
    names = args.records or sorted(p.stem for p in mitdb.glob("*.hea"))
    names = [r for r in names if r not in trained]
    w = float(lm.meta.get("score", {}).get("rr_weight", 0.0))
    rows = {k: ([], []) for k in ("ae+rr (shipped)", "ae only", "ae recon error + rr", "ae recon error only",
                                  "baseline 1-corr", "baseline 1-corr + rr")}
    lm_err = dataclasses.replace(lm, meta={**lm.meta, "score": {**lm.meta.get("score", {}), "mode": "error"}})
    per_rec = {k: [] for k in rows}
    print(f"model {lm.name} sha256 {lm.sha256[:12]}  rr_weight {w:g}  excluded (trained on): {' '.join(sorted(trained))}")
    print(f"test records: {' '.join(names)}")
    for r in names:
        sig = read(str(mitdb / r))
        res = run_job(score_beats_task(sig, model=lm, device="cpu"))
        ae_only = run_job(score_beats_task(sig, model=lm, device="cpu", use_rr=False))
        err_rr = run_job(score_beats_task(sig, model=lm_err, device="cpu"))
        err_only = run_job(score_beats_task(sig, model=lm_err, device="cpu", use_rr=False))
        x = sig.read(0, sig.n_samples)[0]
        beats, valid = extract_beats(x, sig.sfreq, res.sample)
        corr = baseline_corr_scores(beats, valid)
        prem = rr_features(res.sample, sig.sfreq)["premature_adj"]
        cls = np.array([aami_class(s) for s in res.symbol])
        m = valid & (cls != "Q") & (cls != "")
        y = cls[m] != "N"
        scores = {"ae+rr (shipped)": res.score[m], "ae only": ae_only.score[m],
                  "ae recon error + rr": err_rr.score[m], "ae recon error only": err_only.score[m],
                  "baseline 1-corr": corr[m],
                  "baseline 1-corr + rr": (np.log(corr[m] + 1e-3) - np.log(np.median(corr[m]) + 1e-3)
                                           + w * np.maximum(prem[m], 0))}
        for k, s in scores.items():
            rows[k][0].append(y)
            rows[k][1].append(s)
            if y.sum() >= 5:
                per_rec[k].append(roc_auc_score(y, s))
        print(f"  {r}: {m.sum()} beats, {int(y.sum())} S/V/F, AUROC shipped {roc_auc_score(y, scores['ae+rr (shipped)']) if 0 < y.sum() < len(y) else float('nan'):.4f}"
              f" baseline {roc_auc_score(y, scores['baseline 1-corr']) if 0 < y.sum() < len(y) else float('nan'):.4f}")
    print()
    print(f"| {'score':<22} | pooled AUROC | mean per-record AUROC |")
    print(f"|{'-' * 24}|--------------|-----------------------|")
    for k, (ys, ss) in rows.items():
        yy, sc = np.concatenate(ys), np.concatenate(ss)
        pooled = roc_auc_score(yy, sc)
        pr = np.mean(per_rec[k]) if per_rec[k] else float("nan")
        print(f"| {k:<22} | {pooled:12.4f} | {pr:21.4f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
