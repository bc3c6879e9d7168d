"""Train the bundled ``eeg-seizure`` model (Bonn set S against Z, O, N, F) and cross-validate it.

One command reproduces the shipped weights (CPU, one thread, about 4 minutes) and prints
the cross-validation table::

    .venv/bin/python scripts/train_eeg_seizure.py --data ../shared/data --out resources/models/eeg-seizure.safetensors

Recipe (engine.models.signal_nets.SegmentClassifier, "ssae-logreg"):
1. a stacked sparse AE (58 -> 32 -> 16, sigmoid, KL sparsity toward rho = 0.1),
   pre-trained greedily layer by layer, unsupervised, on the log spectra of
   512-sample windows of the training segments (Lin et al. 2016 style);
2. segment features = mean SSAE code over the segment's windows (16) + 17 hand-crafted
   values (time-domain + band power, engine.tasks.score_segments.features);
3. a class-balanced L2 logistic read-out (C = 0.1) on the standardised features;
4. decision threshold by a rule fixed in advance: logit 0 (P = 0.5) unless the
   balanced-accuracy-maximising threshold on out-of-fold scores (nested inside the CV)
   raises the CV mean balanced accuracy by more than its fold sd / sqrt(5).

Evaluation: stratified 5-fold CV over all shared segments; everything (SSAE, scalers,
read-out, the tuned threshold via an inner 5-fold CV) is refitted inside each fold, for
this recipe and for the band-power + logistic-regression baseline. The CV is the
generalisation estimate. The shipped model is then the final fit of the same recipe on
ALL shared segments, so it has no held-out test of its own.

Tried in the same CV folds (logit 0) and not adopted, since neither raised the mean
balanced accuracy by more than its sd/sqrt(5): SSAE code mean + std over windows
(0.973 ± 0.019) and + 1-s window features (segment_features) aggregated by mean, std,
max (0.986 ± 0.012), against 0.984 ± 0.015 for this recipe.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from signal_splits import BONN_SETS, training_parser  # noqa: E402

from engine.tasks.score_segments.features import band_power_features, segment_features, window_spectra  # noqa: E402

HIDDEN = (32, 16)
RHO, BETA, EPOCHS, C = 0.1, 1.0, 300, 0.1
MLP_EPOCHS, MLP_WD = 800, 1e-2  # optional one-hidden-layer read-out (not used by the shipped recipe)
ROW_MODEL, ROW_BASE = "SSAE + features (logistic)", "baseline band power + LR"
COMMAND = ("python scripts/train_eeg_seizure.py --data ../shared/data "
           "--out resources/models/eeg-seizure.safetensors")


def load_bonn(root: Path):
    files, y = [], []
    for folder, letter in BONN_SETS.items():
        for f in sorted((root / folder).glob("*")):
            if f.suffix.lower() == ".txt":
                files.append(f)
                y.append(letter == "S")
    x = np.stack([np.loadtxt(f) for f in files])
    return files, x, np.array(y)


def features(x: np.ndarray):
    spec = np.stack([window_spectra(s) for s in x])          # (N, W, 58)
    extra = np.stack([segment_features(s) for s in x])       # (N, 17)
    bp = np.stack([band_power_features(s) for s in x])       # (N, 10)
    return spec, extra, bp


def fit(spec, extra, y, seed=0, readout_hidden=0):
    """Fit SSAE (unsupervised) + a class-balanced read-out; return a SegmentClassifier."""
    import torch
    from sklearn.linear_model import LogisticRegression

    from engine.models.signal_nets import SegmentClassifier
    from engine.training.losses import kl_sparsity

    torch.manual_seed(seed)
    flat = spec.reshape(-1, spec.shape[-1])
    mu, sd = flat.mean(0), flat.std(0) + 1e-6
    model = SegmentClassifier(n_in=spec.shape[-1], hidden=HIDDEN, n_extra=extra.shape[1],
                              readout_hidden=readout_hidden)
    model.in_mean.copy_(torch.from_numpy(mu))
    model.in_std.copy_(torch.from_numpy(sd))
    h = torch.from_numpy((flat - mu) / sd).float()
    for layer in model.layers:  # greedy layer-wise sparse AE pre-training
        dec = torch.nn.Linear(layer.out_features, layer.in_features)
        opt = torch.optim.Adam(list(layer.parameters()) + list(dec.parameters()), lr=1e-2, weight_decay=1e-5)
        for _ in range(EPOCHS):
            a = torch.sigmoid(layer(h))
            loss = ((dec(a) - h) ** 2).mean() + BETA * kl_sparsity(a, RHO) / layer.out_features
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            h = torch.sigmoid(layer(h))
    with torch.no_grad():
        codes = model.encode(torch.from_numpy(spec).float()).mean(1).numpy()
    feats = np.concatenate([codes, extra], 1)
    fm, fs = feats.mean(0), feats.std(0) + 1e-6
    with torch.no_grad():
        model.feat_mean.copy_(torch.from_numpy(fm).float())
        model.feat_std.copy_(torch.from_numpy(fs).float())
    z = (feats - fm) / fs
    if not readout_hidden:
        lr = LogisticRegression(C=C, max_iter=5000, class_weight="balanced").fit(z, y)
        with torch.no_grad():
            model.readout.weight.copy_(torch.from_numpy(lr.coef_).float())
            model.readout.bias.copy_(torch.from_numpy(lr.intercept_).float())
        return model.eval()
    # one hidden layer, class-balanced BCE, L2 (weight decay), full batch
    zt, yt = torch.from_numpy(z).float(), torch.from_numpy(y.astype(np.float32))
    pw = torch.tensor(float((1 - y.mean()) / max(y.mean(), 1e-6)))
    opt = torch.optim.Adam(model.readout.parameters(), lr=1e-2, weight_decay=MLP_WD)
    for _ in range(MLP_EPOCHS):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model.readout(zt).squeeze(-1), yt, pos_weight=pw)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def predict(model, spec, extra) -> np.ndarray:
    import torch

    with torch.no_grad():
        return model(torch.from_numpy(spec).float(), torch.from_numpy(extra).float()).numpy()


def baseline_fit_predict(bp_tr, y_tr, bp_te):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=5000, class_weight="balanced"))
    return clf.fit(bp_tr, y_tr).decision_function(bp_te)


def metrics(y, s, thr=0.0) -> dict:
    from sklearn.metrics import roc_auc_score

    p = s > thr
    sens, spec = float(p[y].mean()), float((~p[~y]).mean())
    return {"balanced_accuracy": (sens + spec) / 2, "sensitivity": sens, "specificity": spec,
            "auroc": float(roc_auc_score(y, s))}


def best_threshold(y, s) -> float:
    """Threshold maximising balanced accuracy of ``s > thr`` (midpoints between sorted scores).

    Ties are broken toward 0 (logit 0 = P 0.5), the rule fixed before any result was seen.
    """
    u = np.unique(s)
    cand = np.concatenate([[u[0] - 1.0], (u[1:] + u[:-1]) / 2, [u[-1] + 1.0]])
    ba = np.array([metrics(y, s, t)["balanced_accuracy"] for t in cand])
    best = cand[np.isclose(ba, ba.max())]
    return float(best[np.argmin(np.abs(best))])


def _oof(fit_predict, y, idx, seed):
    """Out-of-fold scores of ``fit_predict(train_idx, test_idx)`` over ``idx`` (stratified 5-fold)."""
    from sklearn.model_selection import StratifiedKFold

    out = np.zeros(len(idx))
    for tr, te in StratifiedKFold(5, shuffle=True, random_state=seed).split(idx, y[idx]):
        out[te] = fit_predict(idx[tr], idx[te])
    return out


def cross_validate(spec, extra, bp, y, seed=0, log=print):
    """Stratified 5-fold CV of the recipe and of the band-power + LR baseline, both threshold rules.

    Per outer fold, everything (SSAE, scalers, read-out) is refitted on the training part; the
    "oof-thr" rule picks the balanced-accuracy-maximising threshold on inner 5-fold out-of-fold
    scores of that training part only, then applies it to the outer test part.
    Returns (per-row list of fold metrics, outer out-of-fold scores per method).
    """
    def model_fp(tr, te):
        return predict(fit(spec[tr], extra[tr], y[tr], seed=seed), spec[te], extra[te])

    def base_fp(tr, te):
        return baseline_fit_predict(bp[tr], y[tr], bp[te])

    rows = {ROW_MODEL + " @logit 0": [], ROW_MODEL + " @oof-thr": [],
            ROW_BASE + " @logit 0": [], ROW_BASE + " @oof-thr": []}
    oof = {"model": np.zeros(len(y)), "baseline": np.zeros(len(y))}
    allidx = np.arange(len(y))
    for k, (tr, te) in enumerate(_oof_splits(y, seed)):
        for key, name, fp in (("model", ROW_MODEL, model_fp), ("baseline", ROW_BASE, base_fp)):
            s_te = fp(allidx[tr], allidx[te])
            oof[key][te] = s_te
            thr = best_threshold(y[tr], _oof(fp, y, allidx[tr], seed + 1))
            rows[name + " @logit 0"].append(metrics(y[te], s_te, 0.0))
            rows[name + " @oof-thr"].append({**metrics(y[te], s_te, thr), "threshold": thr})
        log(f"  fold {k + 1}/5 done")
    return rows, oof


def _oof_splits(y, seed):
    from sklearn.model_selection import StratifiedKFold

    return list(StratifiedKFold(5, shuffle=True, random_state=seed).split(np.zeros(len(y)), y))


def summarise(rows) -> dict:
    keys = ("balanced_accuracy", "sensitivity", "specificity", "auroc")
    return {name: {m: [float(np.mean([f[m] for f in v])), float(np.std([f[m] for f in v]))] for m in keys}
            for name, v in rows.items()}


def print_table(summary, out=print):
    out("| method (5-fold stratified CV, mean ± sd)      | bal.acc       | sens.         | spec.         | AUROC         |")
    out("|-----------------------------------------------|---------------|---------------|---------------|---------------|")
    for k, v in summary.items():
        cells = " | ".join(f"{a:.4f}±{s:.4f}" for a, s in v.values())
        out(f"| {k:<45} | {cells} |")


def choose_threshold_rule(summary) -> str:
    """Rule fixed in advance: logit 0 unless the OOF-tuned threshold's CV mean balanced accuracy
    is higher by more than its fold sd / sqrt(5)."""
    a0, _ = summary[ROW_MODEL + " @logit 0"]["balanced_accuracy"]
    a1, s1 = summary[ROW_MODEL + " @oof-thr"]["balanced_accuracy"]
    return "oof-thr" if a1 - a0 > s1 / np.sqrt(5) else "logit 0"


def _looks_like_pickle(path: Path) -> bool:
    with open(path, "rb") as fh:
        raw = fh.read(2)
    return raw[:1] == b"\x80" or raw == b"PK"


def main(argv=None):
    import torch

    from engine.weights import register_bundled, save

    ap = training_parser(__doc__)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-register", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    files, x, y = load_bonn(args.data / "eeg" / "bonn")
    spec, extra, bp = features(x)
    print(f"Bonn segments: {len(y)} ({int(y.sum())} S); nested 5-fold CV (about 3-4 min on one CPU thread)")
    rows, oof = cross_validate(spec, extra, bp, y, seed=args.seed)
    summary = summarise(rows)
    print_table(summary)
    rule = choose_threshold_rule(summary)
    # final fit: the same recipe on every shared segment; the threshold by the chosen rule
    # (for "oof-thr": on the outer out-of-fold scores of the CV above, i.e. of models not trained on them)
    thr = 0.0 if rule == "logit 0" else best_threshold(y, oof["model"])
    model = fit(spec, extra, y, seed=args.seed, readout_hidden=0)
    with torch.no_grad():
        model.threshold.fill_(thr)
    print(f"threshold rule: {rule}; shipped threshold {thr:g} (logit)")
    meta = {
        "name": "eeg-seizure", "architecture": "ssae-logreg", "hparams": model.hparams, "modality": "eeg",
        "task": "score-segments", "sfreq": 173.61, "segment_samples": 4097, "units": "uV",
        "preprocessing": {"kind": "segment-features", "sfreq": 173.61, "units": "uV", "window": 512, "hop": 256,
                          "spectrum": "log power 0.5-40 Hz, bin pairs", "extra": "engine.tasks.score_segments.features.segment_features"},
        "threshold": thr, "score": "logit of P(seizure); seizure = score > threshold",
        "training": {
            "command": COMMAND,
            "data": f"all {len(y)} shared Bonn segments (sets Z,O,N,F,S); final fit of the cross-validated recipe",
            "held_out": "none: every shared segment is used; the generalisation estimate is the 5-fold CV in metrics",
            "files": [f"{f.parent.name}/{f.name}" for f in files],
            "ssae": {"hidden": list(HIDDEN), "rho": RHO, "beta": BETA, "epochs_per_layer": EPOCHS},
            "readout": "logistic", "logistic": f"class-balanced, C={C}",
            "threshold_rule": ("fixed in advance: logit 0 (P 0.5) unless the balanced-accuracy-maximising "
                               "threshold on out-of-fold scores (nested inside the CV) improves the CV mean "
                               "balanced accuracy by more than its sd/sqrt(5); chosen: " + rule),
            "seed": args.seed,
        },
        "metrics": {
            "note": ("generalisation estimate = stratified 5-fold CV over all 350 shared segments with "
                     "everything refitted per fold (mean, sd over folds); the shipped model itself is "
                     "trained on all of them and has no held-out test of its own"),
            "cv5": summary,
        },
    }
    digest = save(model, args.out, meta)
    while _looks_like_pickle(args.out):
        # engine.weights refuses files whose 8-byte header length starts with 0x80 or "PK"
        # (pickle/zip magic); pad the metadata until the length no longer collides
        meta["training"]["header_pad"] = meta["training"].get("header_pad", "") + " "
        digest = save(model, args.out, meta)
    print(json.dumps({"saved": str(args.out), "sha256": digest}))
    if not args.no_register:
        register_bundled("eeg-seizure", args.out, task="score-segments",
                         description="Bonn-trained seizure detector (all 350 shared segments): stacked sparse AE "
                                     "spectra features + logistic read-out; 5-fold CV balanced accuracy "
                                     f"{summary[ROW_MODEL + ' @' + rule]['balanced_accuracy'][0]:.3f}")


if __name__ == "__main__":
    main()
