"""Train the bundled ``eeg-seizure`` model (Bonn set S against Z, O, N, F) and cross-validate it.

One command reproduces the shipped weights (CPU, about 2 minutes) and prints the
cross-validation table::

    .venv/bin/python scripts/train_eeg_seizure.py --data ../shared/data --out resources/models/eeg-seizure.safetensors

Model (engine.models.signal_nets.SegmentClassifier, "ssae-logreg"):
1. a stacked sparse AE (58 -> 32 -> 16, sigmoid, KL sparsity toward rho = 0.1),
   pre-trained greedily layer by layer, unsupervised, on the log spectra of
   512-sample windows of the training segments (Lin et al. 2016 style);
2. segment features = mean SSAE code over the segment's windows (16) + 17 hand-crafted
   values (time-domain + band power, engine.eeg_features);
3. a class-balanced read-out on the standardised features, chosen by 5-fold CV
   balanced accuracy: L2 logistic regression or one tanh hidden layer of 16 (the
   supervised fine-tuning stage); the decision threshold is logit 0.

Evaluation: stratified 5-fold CV over all segments (everything, SSAE included, is
refitted inside each fold) for this model and the band-power + logistic-regression
baseline; then the shipped model is trained on the fixed training split
(segments whose number is not a multiple of 5) and tested on the held-out split
(numbers 005, 010, ...; 14 per set here).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from signal_splits import BONN_SETS  # noqa: E402

from engine.eeg_features import band_power_features, segment_features, window_spectra  # noqa: E402

HIDDEN = (32, 16)
RHO, BETA, EPOCHS, C = 0.1, 1.0, 300, 0.1
READOUTS = {"logistic": 0, "mlp16": 16}  # read-out candidates, chosen by 5-fold CV balanced accuracy
MLP_EPOCHS, MLP_WD = 800, 1e-2


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

    from engine.losses import kl_sparsity
    from engine.models.signal_nets import SegmentClassifier

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


def main(argv=None):
    import torch
    from sklearn.model_selection import StratifiedKFold

    from engine.weights import register_bundled, save

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-register", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    files, x, y = load_bonn(args.data / "eeg" / "bonn")
    spec, extra, bp = features(x)
    cv = {**{f"ssae+features/{k}": [] for k in READOUTS}, "baseline band power + LR": []}
    for tr, te in StratifiedKFold(5, shuffle=True, random_state=args.seed).split(x, y):
        for k, h in READOUTS.items():
            m = fit(spec[tr], extra[tr], y[tr], seed=args.seed, readout_hidden=h)
            cv[f"ssae+features/{k}"].append(metrics(y[te], predict(m, spec[te], extra[te])))
        cv["baseline band power + LR"].append(metrics(y[te], baseline_fit_predict(bp[tr], y[tr], bp[te])))
    summary = {k: {m: [float(np.mean([f[m] for f in v])), float(np.std([f[m] for f in v]))] for m in v[0]}
               for k, v in cv.items()}
    num = np.array([int(re.sub(r"\D", "", f.stem) or 0) for f in files])
    test = num % 5 == 0
    chosen = max(READOUTS, key=lambda k: summary[f"ssae+features/{k}"]["balanced_accuracy"][0])
    model = fit(spec[~test], extra[~test], y[~test], seed=args.seed, readout_hidden=READOUTS[chosen])
    held = metrics(y[test], predict(model, spec[test], extra[test]))
    held_base = metrics(y[test], baseline_fit_predict(bp[~test], y[~test], bp[test]))
    print("5-fold CV (mean ± sd):")
    for k, v in summary.items():
        print(f"  {k:<26} " + "  ".join(f"{m} {a:.4f}±{s:.4f}" for m, (a, s) in v.items()))
    print(f"held-out split ({int(test.sum())} segments, {int(y[test].sum())} S):")
    print(f"  ssae+features/{chosen} (shipped) " + "  ".join(f"{m} {v:.4f}" for m, v in held.items()))
    print("  baseline band power + LR   " + "  ".join(f"{m} {v:.4f}" for m, v in held_base.items()))
    meta = {
        "name": "eeg-seizure", "architecture": "ssae-logreg", "hparams": model.hparams, "modality": "eeg",
        "task": "score-segments", "sfreq": 173.61, "segment_samples": 4097, "units": "uV",
        "preprocessing": {"kind": "segment-features", "sfreq": 173.61, "units": "uV", "window": 512, "hop": 256,
                          "spectrum": "log power 0.5-40 Hz, bin pairs", "extra": "engine.eeg_features.segment_features"},
        "threshold": 0.0, "score": "logit of P(seizure); seizure = score > threshold",
        "training": {
            "command": "python scripts/train_eeg_seizure.py --data ../shared/data --out resources/models/eeg-seizure.safetensors",
            "data": "Bonn sets Z,O,N,F,S segments whose number % 5 != 0",
            "held_out": "segments whose number % 5 == 0",
            "files": [f"{f.parent.name}/{f.name}" for f, t in zip(files, test) if not t], "ssae": {"hidden": list(HIDDEN), "rho": RHO, "beta": BETA,
                                                                 "epochs_per_layer": EPOCHS},
            "readout": chosen, "readout_choice": "by 5-fold CV balanced accuracy among " + ", ".join(READOUTS),
            "logistic": f"class-balanced, C={C}", "mlp16": f"tanh hidden 16, balanced BCE, weight decay {MLP_WD}",
            "seed": args.seed,
        },
        "metrics": {"cv5": summary, "held_out": held, "held_out_baseline": held_base},
    }
    digest = save(model, args.out, meta)
    print(json.dumps({"saved": str(args.out), "sha256": digest}))
    if not args.no_register:
        register_bundled("eeg-seizure", args.out, task="score-segments",
                         description="Bonn-trained seizure detector: stacked sparse AE spectra features + logistic read-out")


if __name__ == "__main__":
    main()
