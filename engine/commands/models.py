"""``python -m engine models``: bundled and user models; ``--install FILE`` / ``--remove NAME`` user models."""
from __future__ import annotations

import json


def register(sub) -> None:
    p = sub.add_parser("models", help="list the bundled and user models; install or remove user models")
    p.add_argument("--json", action="store_true", help="print one JSON list")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--install", metavar="FILE", default=None,
                   help="copy a .safetensors model (+ its JSON) into the user model folder, sha256 checked")
    g.add_argument("--remove", metavar="NAME", default=None, help="delete a user model")
    p.add_argument("--name", default=None, help="with --install: install under this name")
    p.add_argument("--overwrite", action="store_true", help="with --install: replace a user model of that name")
    p.set_defaults(func=run)


def run(args) -> int:
    from engine.weights import install_user, list_models, model_path, read_metadata, remove_user, user_models_dir

    if args.install:
        row = install_user(args.install, name=args.name, overwrite=args.overwrite)
        print(json.dumps(row, default=str) if args.json else
              f"installed {row['name']} ({row['sha256'][:12]}…) into {user_models_dir()}")
        return 0
    if args.remove:
        path = remove_user(args.remove)
        print(json.dumps({"removed": args.remove, "file": str(path)}) if args.json else f"removed {path}")
        return 0
    rows = []
    for row in list_models():
        try:
            meta = read_metadata(model_path(row["name"]))
        except Exception as exc:  # a damaged file is listed, not fatal
            meta = {"error": str(exc)}
        rows.append({**row, "input": meta.get("input"), "preprocessing": meta.get("preprocessing"),
                     "calibration": meta.get("calibration"), "training": {
                         k: v for k, v in (meta.get("training") or {}).items() if k not in ("history", "data")}})
    if args.json:
        print(json.dumps(rows, default=str))
        return 0
    if not rows:
        print("no models installed")
        return 0
    for r in rows:
        origin = (f"user, from {r['parent'].get('name')} {str(r['parent'].get('sha256', ''))[:12]}"
                  if r.get("source") == "user" and r.get("parent") else r.get("source", ""))
        print(f"{r['name']:<20} {r.get('modality', ''):<10} {r.get('task', ''):<14} "
              f"{r.get('architecture') or '':<15} {str(r.get('sha256', ''))[:12]}  [{origin}] {r.get('description', '')}")
    return 0
