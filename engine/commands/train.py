"""``python -m engine train``: train an autoencoder on your own files and save it as a Latent model.

Parses the options and drives :func:`engine.training.from_files.train_on_files` (the held-out
and calibration rules are documented there) with a progress bar.
"""
from __future__ import annotations

import json
import time

from engine.training.from_files import FAMILIES, MODALITIES


def register(sub) -> None:
    p = sub.add_parser("train", help="train an autoencoder (conv, sparse, stacked sparse, denoising, contractive, "
                                     "variational) on your files")
    p.add_argument("--family", choices=FAMILIES, required=True)
    p.add_argument("--modality", choices=MODALITIES, required=True)
    p.add_argument("--data", nargs="+", required=True, metavar="PATH", help="input files/folders")
    p.add_argument("--out", required=True, help="output folder for NAME.safetensors + NAME.json")
    p.add_argument("--name", default=None, help="model name (default: <modality>-<family>)")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--patch", type=int, default=64, help="image patch side in pixels (multiple of 8)")
    p.add_argument("--n-patches", type=int, default=1000, help="random patches per epoch (images)")
    p.add_argument("--window", type=int, default=512, help="signal window in samples (multiple of 8)")
    p.add_argument("--sfreq", type=float, default=None, help="sampling rate for headerless signals")
    p.add_argument("--corruption", choices=("gaussian", "masking", "coarse"), default=None,
                   help="denoising family: noise model (default: coarse for images, gaussian for signals)")
    p.add_argument("--noise", type=float, default=None, help="corruption strength (sigma or fraction)")
    p.add_argument("--channels", default="16,32,64", help="feature channels per level (convolutional families)")
    p.add_argument("--hidden", default="256,64", help="layer sizes of the stacked-sparse family")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None)
    p.add_argument("--patience", type=int, default=5)
    p.add_argument("--resume", action="store_true", help="continue from OUT/<name>.ckpt/last.safetensors")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: the thread policy, one on <= 2 usable cores)")
    p.add_argument("--json", action="store_true", help="print the final metrics as JSON")
    p.set_defaults(func=run)


def _command(args) -> str:
    """The equivalent command line (from the parsed options, so in-process calls are recorded too)."""
    parts = ["python -m engine train", f"--family {args.family}", f"--modality {args.modality}",
             "--data " + " ".join(args.data), f"--out {args.out}"]
    for opt in ("name", "epochs", "batch_size", "lr", "patch", "n_patches", "window", "sfreq", "corruption",
                "noise", "channels", "hidden", "seed", "patience"):
        v = getattr(args, opt)
        if opt == "hidden" and args.family != "stacked-sparse":
            continue
        if v is not None:
            parts.append(f"--{opt.replace('_', '-')} {v}")
    return " ".join(parts)


def run(args) -> int:
    from engine.commands._progress import run_with_bar
    from engine.training.from_files import train_on_files

    name = args.name or f"{args.modality}-{args.family}"
    t0 = time.time()
    summary = run_with_bar(f"train {name}", train_on_files(
        args.data, family=args.family, modality=args.modality, out_dir=args.out, name=name, epochs=args.epochs,
        batch_size=args.batch_size, lr=args.lr, patch=args.patch, n_patches=args.n_patches, window=args.window,
        sfreq=args.sfreq, corruption=args.corruption, noise=args.noise,
        channels=[int(c) for c in args.channels.split(",") if c.strip()],
        hidden=[int(h) for h in args.hidden.split(",") if h.strip()], seed=args.seed, device=args.device,
        patience=args.patience, resume=args.resume, command=_command(args)))
    if args.json:
        print(json.dumps(summary, default=str))
    else:
        m = summary["metrics"]
        print(f"wrote {summary['model']} (sha256 {summary['sha256'][:16]}…), best val loss {m['best_val_loss']:.5g} "
              f"after {m['epochs_run']} epochs, {time.time() - t0:.1f} s")
    return 0
