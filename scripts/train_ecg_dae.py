"""Train the bundled ``ecg-dae`` (1-D U-Net denoising AE) on MIT-BIH + NSTDB noise.

One command reproduces the shipped weights::

    .venv/bin/python scripts/train_ecg_dae.py --data ../shared/data --out resources/models/ecg-dae.safetensors \
        --steps 3000 --minutes 38

``--minutes`` is a wall-time budget: the learning-rate schedule follows
max(step/steps, elapsed/budget), so on a busy machine training anneals and stops
early; the metadata records the steps actually run (``training.steps``). To repeat
the shipped run exactly on any machine, pass ``--steps <training.steps> --minutes 0``.

Split by record (see scripts/signal_splits.py): training windows come from
the training records only (first 90 % of each record; the last 10 % is validation);
the test records are never read here. Noise comes from the *train* half of bw/ma/em
(ecg_noise), mixed at an SNR drawn uniformly in [-6, 24] dB.
"""
from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ecg_noise import NOISE_KINDS, load_noise, noise_segment  # noqa: E402
from signal_splits import DAE_TRAIN, ECG_RECORDS, ecg_folds, training_parser  # noqa: E402

FS = 360
WIN = 1024
MAX_LR = 2e-3


def load_records(mitdb: Path, names) -> list[np.ndarray]:
    """Each record as ``(2, n)`` float32 mV with lead MLII first (read by name: 114 stores it second)."""
    import wfdb

    out = []
    for r in names:
        rec = wfdb.rdrecord(str(mitdb / r))
        order = sorted(range(rec.n_sig), key=lambda i: rec.sig_name[i] != "MLII")
        out.append(rec.p_signal[:, order].astype(np.float32).T)
    return out


def load_pairs(mitdb: Path, names, cache: Path | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """(record, clean reference = record minus its median-filter baseline), both (2, n), MLII first.

    With *cache*, the references are stored there as ``<record>.ref.npy`` and reused (they
    take most of the start-up time; CV runs read the same records five times)."""
    from ecg_noise import clean_reference

    out = []
    for name, r in zip(names, load_records(mitdb, names)):
        f = cache / f"{name}.ref.npy" if cache else None
        if f is not None and f.exists():
            ref = np.load(f)
        else:
            ref = clean_reference(r, FS).astype(np.float32)
            if f is not None:
                f.parent.mkdir(parents=True, exist_ok=True)
                np.save(f, ref)
        out.append((r, ref))
    return out


def _clean_window(raw, ref, rng, lo, hi, *, mix: bool, stretch: bool):
    """One clean window (and the record's own baseline over it), both ``(WIN,)`` float64.

    Augmentation widens the morphologies seen beyond the few training records: *mix*
    projects the two leads onto a random direction in their plane (other leads are, to
    first order, linear combinations of the same cardiac dipole; this also flips polarity),
    *stretch* resamples the window by 0.8-1.25 (heart rate and QRS width)."""
    f = float(np.exp(rng.uniform(np.log(0.8), np.log(1.25)))) if stretch else 1.0
    span = int(round(WIN * f))
    if mix and rng.random() < 0.5:
        th = rng.uniform(0, 2 * np.pi)
        w = np.array([np.cos(th), np.sin(th)])
    else:  # without augmentation: the random draws of the original recipe, in its order
        w = np.eye(2)[0 if rng.random() < 0.75 else 1]
    a, b = int(lo * ref.shape[1]), int(hi * ref.shape[1]) - span
    s = int(rng.integers(a, b))
    c = w @ ref[:, s:s + span].astype(np.float64)
    own = w @ (raw[:, s:s + span].astype(np.float64) - ref[:, s:s + span])
    if span != WIN:
        t = np.linspace(0, span - 1, WIN)
        c, own = np.interp(t, np.arange(span), c), np.interp(t, np.arange(span), own)
    return c, own


def make_batch(recs, noise, rng, n, lo, hi, snr_range=(-6.0, 24.0), *, mix=False, stretch=False, own_frac=0.3,
               clean_frac=0.0, kind_p=None):
    """Noisy/clean pairs: clean = baseline-free record window (ecg_noise.clean_reference) minus
    its mean; noise zero-mean, mixed at an SNR relative to clean. In *own_frac* of the windows
    the record's own baseline wander is added to the input too (it must be removed as well);
    in *clean_frac* no noise is added (the output must equal the input: do no harm). *kind_p*: the
    probabilities of bw, ma, em for both noises of a window (default: uniform)."""
    xs, cs = [], []
    for _ in range(n):
        raw, ref = recs[int(rng.integers(len(recs)))]
        c, own = _clean_window(raw, ref, rng, lo, hi, mix=mix, stretch=stretch)
        c = c - c.mean()
        own = own - own.mean()
        g = math.exp(rng.uniform(-0.5, 0.5)) * (-1 if rng.random() < 0.15 else 1)
        c, own = c * g, own * g
        def draw_kind():
            return (NOISE_KINDS[int(rng.integers(len(NOISE_KINDS)))] if kind_p is None
                    else NOISE_KINDS[int(rng.choice(len(NOISE_KINDS), p=kind_p))])

        kind = draw_kind()
        nz = noise_segment(noise[kind], WIN, rng) if noise else np.ones(WIN)
        if noise and rng.random() < 0.2:  # occasionally two noise types at once
            other = draw_kind()
            nz2 = noise_segment(noise[other], WIN, rng)
            nz = nz / (np.std(nz) + 1e-9) + rng.uniform(0.3, 1.0) * nz2 / (np.std(nz2) + 1e-9)
        snr = rng.uniform(*snr_range)
        k = 0.0 if rng.random() < clean_frac else np.sqrt(np.sum(c**2) / (np.sum(nz**2) * 10 ** (snr / 10)))
        x = c + k * nz + (own if rng.random() < own_frac else 0.0)
        m = x.mean()
        xs.append(x - m)
        cs.append(c - m)
    return (np.asarray(xs, np.float32)[:, None], np.asarray(cs, np.float32)[:, None])


SCHEMA = {
    "preprocessing": {"kind": "signal", "units": "mV", "scale": 1.0, "baseline": "mean"},
    "input": {"channels": 1, "channel_mode": "per_channel", "window": 8192, "overlap": 1024,
              "sfreq": float(FS), "size_multiple": 16},
    "anomaly": {"error": "abs", "smooth_s": 0.05},
}


def schema_for(model) -> dict:
    """:data:`SCHEMA` with the input length multiple of *model* (``2 ** downsamplings``)."""
    return {**SCHEMA, "input": {**SCHEMA["input"], "size_multiple": int(model.multiple)}}


def calibrate_gate(model, recs, *, quantile: float, n: int = 256, seed: int = 4321) -> float:
    """Set ``model.gate_level`` to the *quantile* of the running RMS of the ungated change
    ``model(x) - x`` on clean validation windows (tails of the training records, no noise
    added); returns it (mV)."""
    import torch

    x, _ = make_batch(recs, None, np.random.default_rng(seed), n, 0.9, 1.0, own_frac=0.0, clean_frac=1.0)
    return model.calibrate_gate(torch.from_numpy(x), quantile=quantile)  # the rule lives with the model


def recalibrate(args, mitdb: Path) -> None:
    """``--recalibrate``: set the gate level of trained weights again (same records, same rule)."""
    from engine.weights import load, save

    lm = load(args.recalibrate)
    meta = {k: v for k, v in lm.meta.items() if k not in ("sha256", "file", "format_version")}
    recs = load_pairs(mitdb, meta["training"]["records"], args.cache)
    gate = {"window": lm.module.gate_window, "quantile": args.gate_quantile,
            "level_mV": calibrate_gate(lm.module, recs, quantile=args.gate_quantile)}
    meta["training"] = {**meta["training"], "gate": gate}
    print(json.dumps({"saved": str(args.out), "sha256": save(lm.module, args.out, meta), "gate": gate}))


def finalize_meta(model, meta: dict, mitdb: Path, records) -> dict:
    """Add the engine.inference.preprocess schema and an anomaly calibration on clean training-record tails."""
    import torch

    from engine.data import Signal
    from engine.inference.calibration import calibrate_on
    from engine.weights import LoadedModel

    meta = {**meta, **schema_for(model)}
    lm = LoadedModel(name="ecg-dae", path=Path("."), sha256="", meta=meta, module=model.eval())
    items = []
    for r, rec in zip(records, load_records(mitdb, records)):
        tail = rec[:, int(0.9 * rec.shape[1]):]
        items.append(Signal.from_array(tail, sfreq=FS, modality="ecg", channels=("MLII", "other"), path=r))
    with torch.inference_mode():
        meta["calibration"] = calibrate_on(lm, items, data_note="clean tails (last 10%) of training records")
    return meta


def snr_loss(y, c):
    import torch

    err = ((y - c) ** 2).sum(-1)
    pw = (c**2).sum(-1)
    return (10 * torch.log10(err / pw + 1e-5)).mean()


def main(argv=None):
    import torch

    from engine.models.signal_nets import SignalUNetDAE
    from engine.weights import register_bundled, save

    ap = training_parser(__doc__)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--widths", type=int, nargs="+", default=[16, 24, 32, 48, 64], help="U-Net channels per level")
    ap.add_argument("--baseline-taps", type=int, default=721, help="fixed Hann low-pass length (0 = none)")
    ap.add_argument("--baseline-median", type=int, nargs="*", default=[],
                    help="running-median baseline lengths in samples instead of the Hann low-pass "
                         "(e.g. 73 217 = 200 + 600 ms at 360 Hz; needs --baseline-taps 0)")
    ap.add_argument("--init", type=Path, default=None,
                    help="warm start from these safetensors weights (same widths/kernel)")
    ap.add_argument("--lr", type=float, default=MAX_LR, help="peak learning rate")
    ap.add_argument("--own-baseline", type=float, default=0.3,
                    help="fraction of training windows whose input also carries the record's own baseline wander")
    ap.add_argument("--aug", action="store_true",
                    help="lead-mixing / time-stretch augmentation of the clean windows")
    ap.add_argument("--minutes", type=float, default=0.0,
                    help="wall-time budget (0 = none); the LR schedule follows max(step/steps, time/budget) "
                         "so training always anneals before stopping")
    ap.add_argument("--clean-frac", type=float, default=0.0,
                    help="fraction of training windows with no noise added (target = input)")
    ap.add_argument("--gate-window", type=int, default=0,
                    help="odd length (samples) of the do-no-harm gate on the correction (0 = none)")
    ap.add_argument("--gate-quantile", type=float, default=0.99,
                    help="the gate level is this quantile of the correction's running RMS on clean windows")
    ap.add_argument("--fold", type=int, default=None,
                    help="train on every record outside this CV test fold (signal_splits.ecg_folds)")
    ap.add_argument("--no-calibrate", action="store_true", help="skip the anomaly calibration (CV fold models)")
    ap.add_argument("--cache", type=Path, default=None, help="folder caching the clean references (.npy)")
    ap.add_argument("--recalibrate", type=Path, default=None,
                    help="only re-calibrate the gate of these trained weights (on the tails of the records in "
                         "their training.records) and write them to --out")
    ap.add_argument("--noise-weights", type=float, nargs=3, default=None, metavar=("BW", "MA", "EM"),
                    help="relative frequency of the noise kinds in training windows (default: equal)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--checkpoint", type=Path, default=None, help="also save the best state here (safetensors)")
    ap.add_argument("--no-register", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    mitdb, nstdb = args.data / "ecg" / "mitdb", args.data / "ecg" / "nstdb"
    if args.recalibrate is not None:
        return recalibrate(args, mitdb)
    if args.fold is None:
        records = list(DAE_TRAIN)
    else:
        held = set(ecg_folds()[args.fold])
        records = [r for r in ECG_RECORDS if r not in held]
    recs = load_pairs(mitdb, records, args.cache)
    noise = {k: load_noise(nstdb, k, part="train", mitdb_dir=mitdb) for k in NOISE_KINDS}
    vx, vc = make_batch(recs, noise, np.random.default_rng(1234), 256, 0.9, 1.0)
    vx, vc = torch.from_numpy(vx), torch.from_numpy(vc)
    model = SignalUNetDAE(widths=tuple(args.widths), kernel_size=9, baseline_taps=args.baseline_taps,
                          baseline_median=tuple(args.baseline_median), gate_window=args.gate_window)
    if args.init is not None:
        from safetensors.torch import load_file

        model.load_state_dict(load_file(str(args.init)))
        if model.gate_window:  # a calibrated gate stays off while training (it is re-calibrated at the end)
            model.gate_level.zero_()
        print(f"warm start from {args.init}", flush=True)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    kind_p = None
    if args.noise_weights is not None:
        w = np.asarray(args.noise_weights, float)
        if w.min() < 0 or w.sum() <= 0:
            ap.error("--noise-weights must be non-negative and not all zero")
        kind_p = w / w.sum()
    budget = args.minutes * 60

    def progress(step: int) -> float:
        p = step / args.steps
        return max(p, (time.time() - t0) / budget) if budget > 0 else p

    def lr_at(p: float) -> float:  # 3 % warm-up, cosine decay to 2 % of the peak
        cos = 0.5 * (1 + math.cos(math.pi * min(1.0, (p - 0.03) / 0.97)))
        return args.lr * (p / 0.03 if p < 0.03 else 0.02 + 0.98 * cos)
    best, best_state, t0, history = float("inf"), None, time.time(), []
    for step in range(1, args.steps + 1):
        p = progress(step)
        for g in opt.param_groups:
            g["lr"] = lr_at(p)
        model.train()
        x, c = make_batch(recs, noise, rng, args.batch, 0.0, 0.9, mix=args.aug, stretch=args.aug,
                          own_frac=args.own_baseline, clean_frac=args.clean_frac, kind_p=kind_p)
        loss = snr_loss(model(torch.from_numpy(x)), torch.from_numpy(c))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        done = step == args.steps or p >= 1.0
        if step % 200 == 0 or done:
            model.eval()
            with torch.inference_mode():
                vl = float(snr_loss(torch.cat([model(vx[i:i + 64]) for i in range(0, len(vx), 64)]), vc))
            history.append((step, float(loss.detach()), vl))
            print(f"step {step} loss {float(loss.detach()):.2f} val {vl:.2f} ({time.time() - t0:.0f}s)", flush=True)
            if vl < best:
                best = vl
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                if args.checkpoint:
                    from safetensors.torch import save_file

                    save_file(best_state, str(args.checkpoint))
        if done:
            break
    model.load_state_dict(best_state)
    model.eval()
    gate = None
    if args.gate_window:
        gate = {"window": args.gate_window, "quantile": args.gate_quantile,
                "level_mV": calibrate_gate(model, recs, quantile=args.gate_quantile)}
        print(f"gate level {gate['level_mV']:.4f} mV", flush=True)
    meta = {
        "name": "ecg-dae",
        "architecture": "signal-unet-dae",
        "hparams": model.hparams,
        "modality": "ecg",
        "task": "denoise",
        "spatial_dims": 1,
        "training": {
            "command": "python scripts/train_ecg_dae.py " + " ".join(argv if argv is not None else sys.argv[1:]),
            "init": str(args.init) if args.init else None,
            "records": records, "cv_fold": args.fold, "clean_fraction": args.clean_frac, "gate": gate,
            "noise": "NSTDB bw/ma train half + em blocks 1-4 (ecg_noise)",
            "noise_kind_probabilities": dict(zip(NOISE_KINDS, [1 / 3] * 3 if kind_p is None else kind_p.tolist())),
            "snr_db": [-6, 24], "window": WIN, "own_baseline_fraction": args.own_baseline,
            "augmentation": ("random projection of the two leads (50 %), time stretch 0.8-1.25, " if args.aug else "")
                            + "gain 0.6-1.65, polarity",
            "steps": step, "minutes_budget": args.minutes, "batch": args.batch, "seed": args.seed,
            "loss": "mean 10log10(err^2/clean^2) per window", "val_history": history[-5:],
            "clean_definition": "MIT-BIH record minus its 200/600 ms median-filter baseline "
                                "(ecg_noise.clean_reference), minus the window mean",
        },
        "metrics": {"val_snr_loss_db": best},
    }
    meta = {**meta, **schema_for(model)} if args.no_calibrate else finalize_meta(model, meta, mitdb, records)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    digest = save(model, args.out, meta)
    print(json.dumps({"saved": str(args.out), "sha256": digest, "val": best}))
    if not args.no_register:
        register_bundled("ecg-dae", args.out, task="denoise",
                         description="1-D U-Net denoising AE for ECG at 360 Hz (MIT-BIH + NSTDB bw/ma/em)")


if __name__ == "__main__":
    main()
