"""``python -m engine evaluate-nuclei --pred CSV --truth CSV --radius PX [--image NAME]``: precision, recall, F1."""
from __future__ import annotations

import json
import sys

from engine.commands._options import add_outputs


def register(sub) -> None:
    p = sub.add_parser("evaluate-nuclei", help="precision/recall/F1 of detected points against reference points")
    p.add_argument("--pred", required=True, help="CSV with x,y columns (e.g. a .nuclei.csv)")
    p.add_argument("--truth", required=True, help="CSV with x,y columns (extra columns are ignored)")
    p.add_argument("--radius", type=float, required=True, help="match radius in pixels (e.g. 6 at 20x)")
    p.add_argument("--image", default=None, metavar="NAME",
                   help="use only the rows of this image when a CSV has an 'image' column with several images "
                        "(default: the image whose name matches the --pred file, else an error)")
    add_outputs(p, run, out_help=None, json_help="print one JSON object")


def run(args) -> int:
    from engine.errors import LatentError
    from engine.tasks.nuclei.evaluate import _stem, image_names_csv, precision_recall_f1, read_points_csv

    if not args.radius > 0:
        raise LatentError(f"--radius must be positive, got {args.radius}")
    image = args.image
    if image is None:
        names = image_names_csv(args.truth)
        guess = _stem(args.pred)
        if len(names) > 1 and guess in names:
            image = guess
            if not args.json:
                print(f"truth: the rows of image {image} (matched to the --pred file name)", file=sys.stderr)
    truth = read_points_csv(args.truth, image=image)
    pred_image = image if image is not None and len(image_names_csv(args.pred)) > 1 else None
    r = precision_recall_f1(read_points_csv(args.pred, image=pred_image), truth, args.radius)
    r["image"] = _stem(image) if image is not None else None
    if args.json:
        print(json.dumps(r))
    else:
        if image is not None:
            print(f"image     {image}")
        print(f"precision {r['precision']:.4f}")
        print(f"recall    {r['recall']:.4f}")
        print(f"f1        {r['f1']:.4f}")
        print(f"tp {r['tp']}  fp {r['fp']}  fn {r['fn']}  (radius {r['radius']:g} px, "
              f"{r['n_pred']} predicted, {r['n_truth']} reference)")
    return 0
