"""Nucleus detector F1 on every CRCHistoPhenotypes image it was not trained on, with cross-tuning.

The bundled detector's operating point (threshold, minimum peak distance) is tuned on the
*tune* images (every 7th SFCN-OPI train image, never trained on) and its F1 is reported on
the *validation* images (never trained or tuned on). Ten images per set is a small sample,
so this script also measures the detector on both sets with the operating point chosen on
the *other* one (2-fold cross-tuning) and pools the 20 images: an estimate in which no image
is scored with a point chosen on itself. One row per model::

    .venv/bin/python benchmarks/eval_nuclei_unseen.py [--data ../shared/data] [MODEL ...]

MODEL: bundled name or ``.safetensors`` path (default ``histo-nuclei``). Pooled F1 at
r = 6 px, Hungarian matching, CPU. ``--precision bf16`` runs the network as detect-nuclei's
bf16 path does (BatchNorm folded, channels_last, bfloat16 autocast); ``float32`` (default)
as trained.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))  # benchmark data helpers


def _f1(c) -> float:
    return float(2 * c[0] / max(1, 2 * c[0] + c[1] + c[2]))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*", default=["histo-nuclei"])
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--precision", choices=("float32", "bf16"), default="float32")
    args = ap.parse_args(argv)

    import torch
    from nuclei_sets import crchisto_split, crchisto_truth
    from PIL import Image as PILImage

    from engine.tasks.nuclei.core import pooled_counts, probability_map, to_tensor, tune_operating_point
    from engine.weights import load

    torch.set_num_threads(args.threads)
    root = Path(args.data) / "histo" / "crchisto"
    _, tune_names, val_names = crchisto_split(root)
    sets = {}
    for key, names in (("tune", tune_names), ("validation", val_names)):
        sets[key] = [(np.asarray(PILImage.open(root / n / f"{n}.png").convert("RGB")),
                      crchisto_truth(root / n / f"{n}_detection.mat")) for n in names]
    print(f"CRCHisto images not trained on: {len(tune_names)} tune + {len(val_names)} validation; "
          f"pooled F1 at r = 6 px; network in {args.precision}")
    print("| model | shipped point | validation @ shipped | tune @ shipped | validation @ tune-chosen | "
          "tune @ validation-chosen | 20 images cross-tuned |")
    print("|---|---|---|---|---|---|---|")
    for name in args.models:
        loaded = load(name)
        net = loaded.module.eval()
        if args.precision == "bf16":
            from engine.inference.optimize import for_inference

            net = for_inference(net, bf16=True)
        det = loaded.meta.get("detector", {})
        maps = {k: [probability_map(net, to_tensor(im)).float().numpy() for im, _ in items]
                for k, items in sets.items()}
        truths = {k: [t for _, t in items] for k, items in sets.items()}
        th0, md0 = float(det.get("threshold", 0.35)), int(det.get("min_distance", 3))
        at_shipped = {k: pooled_counts(maps[k], truths[k], threshold=th0, min_distance=md0, radius=6.0)
                      for k in sets}
        _, th_t, md_t = tune_operating_point(maps["tune"], truths["tune"], radius=6.0)
        _, th_v, md_v = tune_operating_point(maps["validation"], truths["validation"], radius=6.0)
        val_x = pooled_counts(maps["validation"], truths["validation"], threshold=th_t, min_distance=md_t, radius=6.0)
        tune_x = pooled_counts(maps["tune"], truths["tune"], threshold=th_v, min_distance=md_v, radius=6.0)
        print(f"| {Path(str(name)).stem} | {th0:g} / {md0} | {_f1(at_shipped['validation']):.3f} | "
              f"{_f1(at_shipped['tune']):.3f} | {_f1(val_x):.3f} ({th_t:g} / {md_t}) | "
              f"{_f1(tune_x):.3f} ({th_v:g} / {md_v}) | {_f1(val_x + tune_x):.3f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
