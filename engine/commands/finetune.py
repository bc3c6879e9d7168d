"""``python -m engine finetune``: adapt a bundled or user model to your own data (transfer learning).

Drives :func:`engine.training.finetune.finetune` (the recipes, the by-file split and what the JSON
records are documented there) with a progress bar.
"""
from __future__ import annotations

import shlex
import sys


def register(sub) -> None:
    p = sub.add_parser("finetune", help="fine-tune a bundled/user model on your own data (held-out validation, "
                                        "new calibration)")
    p.add_argument("--model", required=True, metavar="NAME|FILE", help="bundled or user model name, or .safetensors")
    p.add_argument("--data", nargs="+", required=True, metavar="PATH",
                   help="your files/folders: normal cases (reconstruction AEs), ECG records (ecg-dae), images "
                        "(histo-nuclei; annotations NAME.csv/.geojson beside each) or segments (eeg-seizure)")
    p.add_argument("--out", required=True, help="output folder for NAME.safetensors + NAME.json + figures")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--steps", type=int, default=None, help="optimiser steps (default per model kind, 200-300)")
    g.add_argument("--epochs", type=int, default=None, help="passes over the training windows/patches")
    p.add_argument("--lr", type=float, default=None, help="peak learning rate (default per model kind)")
    p.add_argument("--freeze", choices=("encoder", "none"), default="none", help="keep the encoder fixed")
    p.add_argument("--val-fraction", type=float, default=0.2,
                   help="fraction of the inputs (files; CT planes; one recording: its end) held out (default 0.2)")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--annotations", nargs="+", default=None, metavar="FILE",
                   help="histo-nuclei: point annotations (CSV x,y or GeoJSON), one per --data image, same order")
    p.add_argument("--labels", default=None, metavar="CSV", help="eeg-seizure: CSV file,label (1 = seizure)")
    p.add_argument("--mpp", type=float, nargs="+", default=None, help="H&E pixel size in um (one, or one per image)")
    p.add_argument("--sfreq", type=float, default=None, help="sampling rate of headerless signals")
    p.add_argument("--device", default=None, help="cpu or cuda (default: CUDA when available)")
    p.add_argument("--name", default=None, help="name of the adapted model (default <model>-adapted)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: the thread policy, one on <= 2 usable cores)")
    p.add_argument("--install", action="store_true", help="also install the result into the user model folder")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    from engine.commands._progress import install_or_print_json, run_with_bar
    from engine.training.finetune import finetune

    mpp = args.mpp if args.mpp is None or len(args.mpp) > 1 else args.mpp[0]
    summary = run_with_bar(f"finetune {args.model}", finetune(
        args.model, args.data, out_dir=args.out, name=args.name, steps=args.steps, epochs=args.epochs, lr=args.lr,
        freeze=args.freeze, val_fraction=args.val_fraction, device=args.device, seed=args.seed,
        batch_size=args.batch_size, annotations=args.annotations, labels=args.labels, sfreq=args.sfreq, mpp=mpp,
        command="python -m engine " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:2] == ["finetune"]
        else "python -m engine finetune (in-process)"))
    if install_or_print_json(args, summary):
        return 0
    v = summary["validation"]
    print(f"wrote {summary['model']} (sha256 {summary['sha256'][:16]}…) from {summary['parent']['name']} "
          f"in {summary['seconds']:.1f} s")
    print(f"held out: {v['held_out']}")
    keys = [k for k, x in v["before"].items() if isinstance(x, (int, float)) and k in v["after"]]
    for k in keys:
        print(f"  {k:<28} before {v['before'][k]:>10.4g}   after {v['after'][k]:>10.4g}")
    for f in summary["figures"]:
        print(f"figure: {f}")
    if summary.get("installed"):
        print(f"installed: {summary['installed']}")
    return 0
