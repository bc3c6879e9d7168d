"""``python -m engine calibrate``: re-calibrate a model's anomaly scale on your normal cases (no training)."""
from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("calibrate", help="re-calibrate the fixed anomaly scale on your NORMAL cases (no training)")
    p.add_argument("--model", required=True, metavar="NAME|FILE")
    p.add_argument("--data", nargs="+", required=True, metavar="NORMALS", help="normal cases (files/folders)")
    p.add_argument("--out", required=True, help="output folder for NAME.safetensors + NAME.json")
    p.add_argument("--name", default=None, help="name of the re-calibrated model (default <model>-calibrated)")
    p.add_argument("--sfreq", type=float, default=None)
    p.add_argument("--mpp", type=float, default=None)
    p.add_argument("--device", default=None)
    p.add_argument("--install", action="store_true", help="also install the result into the user model folder")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    from engine.commands._progress import install_or_print_json, run_with_bar
    from engine.training.finetune import calibrate_model

    s = run_with_bar(f"calibrate {args.model}", calibrate_model(
        args.model, args.data, out_dir=args.out, name=args.name, sfreq=args.sfreq, mpp=args.mpp, device=args.device,
        command=f"python -m engine calibrate --model {args.model} --data {' '.join(args.data)} --out {args.out}"))
    if install_or_print_json(args, s):
        return 0
    f = s["fraction_above_1"]
    print(f"wrote {s['model']} (sha256 {s['sha256'][:16]}…), {s['seconds']:.1f} s; fraction of the cases above 1: "
          f"{f['parent_scale']:.4f} on {s['parent']['name']}'s scale -> {f['new_scale']:.4f} on the new one")
    return 0
