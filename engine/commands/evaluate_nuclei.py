"""``python -m engine evaluate-nuclei --pred CSV --truth CSV --radius PX``: precision, recall, F1."""
from __future__ import annotations

import json


def register(sub) -> None:
    p = sub.add_parser("evaluate-nuclei", help="precision/recall/F1 of detected points against reference points")
    p.add_argument("--pred", required=True, help="CSV with x,y columns (e.g. a .nuclei.csv)")
    p.add_argument("--truth", required=True, help="CSV with x,y columns (extra columns are ignored)")
    p.add_argument("--radius", type=float, required=True, help="match radius in pixels (e.g. 6 at 20x)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args) -> int:
    from engine.errors import LatentError
    from engine.tasks.nuclei.evaluate import precision_recall_f1, read_points_csv

    if not args.radius > 0:
        raise LatentError(f"--radius must be positive, got {args.radius}")
    r = precision_recall_f1(read_points_csv(args.pred), read_points_csv(args.truth), args.radius)
    if args.json:
        print(json.dumps(r))
    else:
        print(f"precision {r['precision']:.4f}")
        print(f"recall    {r['recall']:.4f}")
        print(f"f1        {r['f1']:.4f}")
        print(f"tp {r['tp']}  fp {r['fp']}  fn {r['fn']}  (radius {r['radius']:g} px, "
              f"{r['n_pred']} predicted, {r['n_truth']} reference)")
    return 0
