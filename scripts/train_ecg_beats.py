"""Train the bundled ``ecg-beats`` model: a 1-D convolutional AE on AAMI-N beats.

One command reproduces the shipped weights (CPU, a few minutes)::

    .venv/bin/python scripts/train_ecg_beats.py --data ../shared/data --out resources/models/ecg-beats.safetensors

Only the training records of scripts/signal_splits.py are read (N beats from
annotations, lead 0 = MLII). The beat score (engine.tasks.score_beats) is
``log(d / median record d) + rr_weight * max(premature, 0)``. The score mode (d = AE
reconstruction error or AE-code distance to the record's median code) and
``rr_weight`` are chosen by AUROC on two *training* records (105, 109) held out of a
first, validation fit (the only supervised choices); the shipped AE is then fitted
on all training records. The threshold is the 99th percentile of the training N
beats' score.

``--readout lr`` (the recipe the leave-records-out CV of
benchmarks/bench_ecg_beat_readouts.py chose) skips the mode/weight selection: the AE is
fitted on ``--max-beats`` seeded beats per record, and a class-balanced logistic
regression over the record-relative features ``--features``
(engine.tasks.score_beats.readout) is fitted on the labelled beats of the same records;
its standardisation and coefficients go in the metadata's ``score.readout`` (JSON, no
pickle), mode ``readout``.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from signal_splits import BEATS_TRAIN, training_parser  # noqa: E402

from engine.tasks.score_beats.beats import BEAT_SYMBOLS, aami_class, extract_beats, rr_features  # noqa: E402


def annotated_beats(mitdb: Path, name: str):
    """``(samples, AAMI classes, beats, valid, fs)`` of one record's annotated beats, lead MLII read by name."""
    import wfdb

    rec = wfdb.rdrecord(str(mitdb / name))
    ann = wfdb.rdann(str(mitdb / name), "atr")
    keep = [i for i, s in enumerate(ann.symbol) if s in BEAT_SYMBOLS]
    smp = ann.sample[keep]
    cls = np.array([aami_class(ann.symbol[i]) for i in keep])
    lead = rec.sig_name.index("MLII") if "MLII" in rec.sig_name else 0  # by name: 114 stores MLII second
    fs = float(rec.fs)
    beats, valid = extract_beats(rec.p_signal[:, lead], fs, smp)
    return smp, cls, beats, valid, fs


def record_beats(mitdb: Path, name: str):
    smp, cls, beats, valid, fs = annotated_beats(mitdb, name)
    return beats, valid, cls, rr_features(smp, fs)["premature_adj"]


VAL_RECORDS = ("105", "109")  # left out of the validation fit; they hold V/F beats
MODES = ("error", "latent")
RR_WEIGHTS = (0.0, 2.0, 4.0, 6.0, 8.0, 12.0)


def fit_ae(recs: dict, epochs: int, seed: int, log=print):
    import torch

    from engine.models.signal_nets import BeatAE
    from engine.tasks.score_beats import beat_scale

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    train_x = []
    for beats, valid, cls, _ in recs.values():
        b = beats / beat_scale(beats[valid])
        train_x.append(b[valid & (cls == "N")])
    x = torch.from_numpy(np.concatenate(train_x).astype(np.float32))[:, None]
    perm = torch.from_numpy(rng.permutation(len(x)))
    n_val = len(x) // 10
    xv, xt = x[perm[:n_val]], x[perm[n_val:]]
    model = BeatAE(length=x.shape[-1], widths=(16, 32, 32), latent=12)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    t0, best, best_state = time.time(), float("inf"), None
    for ep in range(epochs):
        model.train()
        order = torch.randperm(len(xt))
        for i in range(0, len(xt), 128):
            xb = xt[order[i:i + 128]]
            xb_in = xb * torch.exp(torch.randn(len(xb), 1, 1) * 0.1)  # amplitude jitter
            loss = ((model(xb_in) - xb_in) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
        model.eval()
        with torch.inference_mode():
            vl = float(((model(xv) - xv) ** 2).mean())
        log(f"epoch {ep + 1} train {float(loss.detach()):.5f} val {vl:.5f} ({time.time() - t0:.0f}s)")
        if vl < best:
            best, best_state = vl, {k: v.clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    return model.eval(), best, int(len(x))


def record_terms(model, recs: dict):
    """Per record: (labels, premature, reconstruction error, latent distance) of non-Q beats."""
    import torch

    from engine.tasks.score_beats import beat_scale, latent_distance

    out = []
    with torch.inference_mode():
        for beats, valid, cls, pr in recs.values():
            b = torch.from_numpy((beats / beat_scale(beats[valid])).astype(np.float32))[:, None]
            e = ((model(b) - b) ** 2).mean(dim=(1, 2)).numpy()
            lat = np.zeros(len(b))
            lat[valid] = latent_distance(model.encode(b[torch.from_numpy(valid)]).numpy())
            m = valid & (cls != "Q")
            out.append((cls[m], pr[m], e[m], lat[m]))
    return out


def score_table(terms):
    from sklearn.metrics import roc_auc_score

    from engine.tasks.score_beats import combine_scores

    y = np.concatenate([t[0] for t in terms]) != "N"
    table = {}
    for mode in MODES:
        for w in RR_WEIGHTS:
            s = np.concatenate([combine_scores(t[2] if mode == "error" else t[3], t[1], rr_weight=w) for t in terms])
            table[f"{mode}/{w:g}"] = float(roc_auc_score(y, s))
    return table


#: The read-out features the CV chose (benchmarks/bench_ecg_beat_readouts.py).
READOUT_FEATURES = ("prem_adj", "prem", "pause", "next_prev", "prem_past", "irr", "tpl")


def readout_terms(model, mitdb: Path, name: str):
    """``(AAMI classes, features)`` of one record's valid non-Q beats, as score_beats_task computes them."""
    import torch

    from engine.tasks.score_beats import beat_scale, latent_distance
    from engine.tasks.score_beats.readout import beat_features

    smp, cls, beats, valid, fs = annotated_beats(mitdb, name)
    idx = np.flatnonzero(valid)
    b = (beats / beat_scale(beats[valid])).astype(np.float32)
    with torch.inference_mode():
        lat = latent_distance(model.encode(torch.from_numpy(b[idx])[:, None]).numpy())
    f = beat_features(b, smp, fs, idx, ae_distance=lat)
    nq = cls[idx] != "Q"
    return cls[idx][nq], {k: v[nq] for k, v in f.items()}


def train_readout(args):
    import torch
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.preprocessing import StandardScaler

    from engine.tasks.score_beats.readout import linear_readout
    from engine.weights import register_bundled, save

    torch.set_num_threads(1)
    mitdb = args.data / "ecg" / "mitdb"
    recs = {r: record_beats(mitdb, r) for r in args.records}
    rng = np.random.default_rng(args.seed)
    sub = {}
    for r, (beats, valid, cls, prem) in recs.items():
        keep = np.sort(rng.permutation(len(beats))[:args.max_beats]) if args.max_beats else np.arange(len(beats))
        sub[r] = (beats[keep], valid[keep], cls[keep], prem[keep])
    model, best, n_beats = fit_ae(sub, args.epochs, args.seed, log=lambda m: print(m, flush=True))
    terms = [readout_terms(model, mitdb, r) for r in args.records]
    cols = list(args.features)
    x = np.concatenate([np.stack([f[c] for c in cols], axis=1) for _, f in terms])
    y = np.concatenate([c for c, _ in terms]) != "N"
    sc = StandardScaler().fit(x)
    clf = LogisticRegression(C=1.0, class_weight="balanced", max_iter=1000).fit(sc.transform(x), y)
    readout = {"kind": "logistic regression (class-balanced), decision function", "features": cols,
               "mean": sc.mean_.tolist(), "scale": sc.scale_.tolist(), "coef": clf.coef_[0].tolist(),
               "intercept": float(clf.intercept_[0])}
    s_all = np.concatenate([linear_readout(f, readout) for _, f in terms])
    threshold = float(np.percentile(s_all[~y], 99))
    train_auc = float(roc_auc_score(y, s_all))
    print("read-out", json.dumps(readout), "threshold (p99 of training N beats)", threshold,
          "training-record AUROC (not a test result)", train_auc, flush=True)
    cmd = ("python scripts/train_ecg_beats.py --data ../shared/data --out resources/models/ecg-beats.safetensors "
           f"--readout lr --records {' '.join(args.records)} --epochs {args.epochs} --max-beats {args.max_beats} "
           f"--features {' '.join(cols)}")
    meta = {
        "name": "ecg-beats", "architecture": "beat-cae", "hparams": model.hparams, "modality": "ecg",
        "task": "score-beats", "spatial_dims": 1, "sfreq": 360.0, "units": "mV",
        "preprocessing": {"kind": "beats", "sfreq": 360.0, "pre_samples": 92, "post_samples": 164,
                          "baseline": "beat median subtracted",
                          "scale": "divided by the record's median beat peak-to-peak amplitude"},
        "score": {"formula": "readout: ((features - mean) / scale) @ coef + intercept over record-relative "
                             "rhythm/template features (engine.tasks.score_beats.readout); use_rr=False: "
                             "log(d/median_record_d), d = latent distance to the record's median code",
                  "mode": "readout", "rr_weight": 0.0, "threshold": threshold, "lead": 0, "readout": readout},
        "training": {"command": cmd, "records": list(args.records), "beats": n_beats, "epochs": args.epochs,
                     "seed": args.seed, "max_beats_per_record": args.max_beats,
                     "selection": "read-out features and kind chosen by the 5-fold leave-records-out CV of "
                                  "benchmarks/bench_ecg_beat_readouts.py"},
        "metrics": {"val_mse": best, "training_records_auroc": train_auc},
    }
    digest = save(model, args.out, meta)
    print(json.dumps({"saved": str(args.out), "sha256": digest}))
    if not args.no_register:
        register_bundled("ecg-beats", args.out, task="score-beats",
                         description="1-D conv AE on AAMI-N beats; score = linear read-out of record-relative "
                                     "rhythm and template features")


def main(argv=None):
    import torch

    from engine.tasks.score_beats import combine_scores
    from engine.weights import register_bundled, save

    ap = training_parser(__doc__)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--records", nargs="*", default=list(BEATS_TRAIN), help="training records")
    ap.add_argument("--no-register", action="store_true")
    ap.add_argument("--readout", choices=("none", "lr"), default="none")
    ap.add_argument("--features", nargs="*", default=list(READOUT_FEATURES), help="read-out features")
    ap.add_argument("--max-beats", type=int, default=0, help="AE training beats per record (0 = all)")
    args = ap.parse_args(argv)
    if args.readout == "lr":
        return train_readout(args)
    torch.set_num_threads(1)
    mitdb = args.data / "ecg" / "mitdb"
    recs = {r: record_beats(mitdb, r) for r in args.records}
    # 1) validation fit without VAL_RECORDS: choose the score mode and RR weight on them
    fit_recs = {r: v for r, v in recs.items() if r not in VAL_RECORDS}
    val_recs = {r: v for r, v in recs.items() if r in VAL_RECORDS}
    table = {}
    if val_recs and fit_recs:
        vmodel, _, _ = fit_ae(fit_recs, args.epochs, args.seed, log=lambda m: print("[val fit]", m, flush=True))
        table = score_table(record_terms(vmodel, val_recs))
        print("AUROC on validation records", sorted(val_recs), table, flush=True)
    choice = max(table, key=table.get) if table else "latent/8"
    mode, w_best = choice.split("/")[0], float(choice.split("/")[1])
    # 2) final fit on every training record
    model, best, n_beats = fit_ae(recs, args.epochs, args.seed, log=lambda m: print(m, flush=True))
    terms = record_terms(model, recs)
    s_all = np.concatenate([combine_scores(t[2] if mode == "error" else t[3], t[1], rr_weight=w_best) for t in terms])
    n_mask = np.concatenate([t[0] for t in terms]) == "N"
    threshold = float(np.percentile(s_all[n_mask], 99))
    print("chosen", mode, w_best, "threshold (p99 of training N beats)", threshold)
    meta = {
        "name": "ecg-beats",
        "architecture": "beat-cae",
        "hparams": model.hparams,
        "modality": "ecg",
        "task": "score-beats",
        "spatial_dims": 1,
        "sfreq": 360.0,
        "units": "mV",
        "preprocessing": {"kind": "beats", "sfreq": 360.0, "pre_samples": 92, "post_samples": 164,
                          "baseline": "beat median subtracted",
                          "scale": "divided by the record's median beat peak-to-peak amplitude"},
        "score": {"formula": "log(d/median_record_d) + rr_weight*max(premature,0); d = latent distance "
                             "to the record's median code (mode latent) or reconstruction MSE (mode error)",
                  "mode": mode, "rr_weight": w_best, "threshold": threshold, "lead": 0},
        "training": {
            "command": "python scripts/train_ecg_beats.py --data ../shared/data "
                       "--out resources/models/ecg-beats.safetensors",
            "records": list(args.records), "beats": n_beats, "epochs": args.epochs, "seed": args.seed,
            "selection": f"mode and rr_weight chosen by AUROC on {list(VAL_RECORDS)} with an AE fitted "
                         "on the other training records",
        },
        "metrics": {"val_mse": best, "validation_auroc": table},
    }
    digest = save(model, args.out, meta)
    print(json.dumps({"saved": str(args.out), "sha256": digest}))
    if not args.no_register:
        register_bundled("ecg-beats", args.out, task="score-beats",
                         description="1-D conv AE on AAMI-N beats; score = per-record AE deviation + RR prematurity")


if __name__ == "__main__":
    main()
