"""``python -m engine models``: the bundled models and their metadata."""
from __future__ import annotations

import json


def register(sub) -> None:
    p = sub.add_parser("models", help="list the bundled models (name, modality, task, sha256, metrics)")
    p.add_argument("--json", action="store_true", help="print one JSON list")
    p.set_defaults(func=run)


def run(args) -> int:
    from engine.weights import bundled_path, list_bundled, read_metadata

    rows = []
    for row in list_bundled():
        try:
            meta = read_metadata(bundled_path(row["name"]))
        except Exception as exc:  # a damaged file is listed, not fatal
            meta = {"error": str(exc)}
        rows.append({**row, "input": meta.get("input"), "preprocessing": meta.get("preprocessing"),
                     "calibration": meta.get("calibration"), "training": {
                         k: v for k, v in (meta.get("training") or {}).items() if k != "history"}})
    if args.json:
        print(json.dumps(rows, default=str))
        return 0
    if not rows:
        print("no bundled models installed")
        return 0
    for r in rows:
        print(f"{r['name']:<14} {r.get('modality', ''):<10} {r.get('task', ''):<14} "
              f"{r.get('architecture') or '':<15} {r['sha256'][:12]}  {r.get('description', '')}")
    return 0
