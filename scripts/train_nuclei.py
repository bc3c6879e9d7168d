"""Train the bundled nucleus detector ``histo-nuclei`` from the shared CRCHistoPhenotypes images.

One command reproduces the bundled model (about 25 minutes of one free CPU core; ~45 min on a busy 2-core box)::

    .venv/bin/python scripts/train_nuclei.py --data ../shared/data --bundle

Steps: (1) unsupervised sparse convolutional AE pre-training (L1 sparsity on the
1/8-resolution code) on H&E patches of the training images; (2) supervised fine-tuning
of the encoder + proximity-map head on the centroid annotations (Gaussian targets,
sigma 3 px, binary cross-entropy), with flips/rotations, scale jitter and colour
augmentation (HED stain jitter + torchvision ColorJitter); (3) threshold and minimum
peak distance tuned on a *tune* split of training images; (4) F1 reported on the
SFCN-OPI "validation" images (never trained or tuned on) and, out of distribution,
on MoNuSeg (40x, rescaled by mpp) and MICCAI 2015.

Split: ``split.csv`` "validation" images = report set; every 7th "train" image (sorted
by number) = tune set; the other train images = fitting set.
Variants: ``--input-mode``, ``--pretrain-steps 0`` (no AE), ``--no-color-aug``.

Several organs and magnifications (issue 14, item 1): ``--sets crchisto monuseg_train miccai`` also fits
on the MoNuSeg *training* images (40x, centroids of the outlines) and MICCAI 2015 (brain, 20x/40x);
each image is sampled at the model's 0.5 um/px (a 40x crop of 2x the patch is resized), jittered by
``--scale-jitter``; sets are drawn with ``--set-weights``. Held out, never trained or tuned on
(``nuclei_sets``): 3 MoNuSeg training images (lung, breast, kidney), 2 MICCAI images (20x, 40x), the
CRCHisto validation images, and the MoNuSeg *test* images. One MoNuSeg training image (prostate) joins
the CRCHisto tune images for the peak threshold (pooled, radius 6 model px = 12 px at 40x).
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from engine.models.nuclei_net import NucleiNet  # noqa: E402
from engine.tasks.nuclei.core import (detect_array, probability_map, random_patch, rescale_tensor,  # noqa: E402
                                     to_tensor, tune_operating_point)
from engine.tasks.nuclei.evaluate import precision_recall_f1  # noqa: E402
from nuclei_sets import MODEL_MPP, load_rgb, load_sets, miccai_truth, monuseg_truth  # noqa: E402

PATCH = 96


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, flush=True)


# ---------------------------------------------------------------------------------- augmentation
_RGB_FROM_HED = torch.linalg.inv(torch.tensor([[1.87798274, -1.00767869, -0.55611582],
                                               [-0.06590806, 1.13473037, -0.1355218],
                                               [-0.60190736, -0.48041419, 1.57358807]]))


def hed_jitter(x: torch.Tensor, gen: torch.Generator, sigma: float = 0.05, bias: float = 0.05) -> torch.Tensor:
    """Tellez-style stain augmentation: scale and shift each HED optical density per sample."""
    hed_from_rgb = torch.linalg.inv(_RGB_FROM_HED)
    od = torch.log(x.clamp(min=1e-6)) / math.log(1e-6)
    hed = torch.einsum("nchw,cd->ndhw", od, hed_from_rgb)
    n = x.shape[0]
    a = 1 + (torch.rand(n, 3, 1, 1, generator=gen) * 2 - 1) * sigma
    b = (torch.rand(n, 3, 1, 1, generator=gen) * 2 - 1) * bias * 0.1
    hed = hed * a + b
    od = torch.einsum("ndhw,dc->nchw", hed, _RGB_FROM_HED)
    return torch.exp(od * math.log(1e-6)).clamp(0, 1)


def color_augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    from torchvision.transforms import v2

    x = hed_jitter(x, gen)
    jitter = v2.ColorJitter(brightness=0.15, contrast=0.2, saturation=0.2, hue=0.04)
    return torch.stack([jitter(xi) for xi in x]).clamp(0, 1)


def gaussian_target(points: list[np.ndarray], size: int, sigma: float) -> torch.Tensor:
    """``(N, 1, size, size)`` max-of-Gaussians proximity map around each (x, y) point."""
    yy, xx = torch.meshgrid(torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32),
                            indexing="ij")
    grid = torch.stack([xx.reshape(-1), yy.reshape(-1)], 1)
    out = torch.zeros(len(points), 1, size, size)
    for i, p in enumerate(points):
        if len(p) == 0:
            continue
        d2 = torch.cdist(grid, torch.as_tensor(p, dtype=torch.float32)).min(1).values ** 2
        out[i, 0] = torch.exp(-d2 / (2 * sigma ** 2)).reshape(size, size)
    return out


def sample_batch(data, batch: int, rng: np.random.Generator, *, scale_jitter=(0.8, 1.25), size: int = PATCH,
                 set_weights=None):
    """Random *size* x *size* patches (RGB [0,1] tensor) and their points in patch pixels, with flips/rot90/scale.

    *data* is a list of ``(name, rgb, xy, scale)`` items, or with *set_weights* a list of such lists
    (one per set, drawn with those probabilities). Each patch is taken at the model's resolution
    (the item's *scale*) times a log-uniform jitter in *scale_jitter* (``None``: no jitter).
    """
    xs, pts = [], []
    lo, hi = scale_jitter or (1.0, 1.0)
    for _ in range(batch):
        items = data if set_weights is None else data[rng.choice(len(data), p=set_weights)]
        _, img, xy, base = items[rng.integers(len(items))]
        scale = (base * lo, base * hi) if (scale_jitter or base != 1.0) else None
        t, p = random_patch(img, xy, rng, size=size, scale=scale)
        xs.append(t[0])
        pts.append(p)
    return torch.stack(xs), pts


# ---------------------------------------------------------------------------------- training
def pretrain_ae(net: NucleiNet, data, steps: int, *, batch: int, l1: float, seed: int, **sample_kw):
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    net.train()
    for step in range(steps):
        x, _ = sample_batch(data, batch, rng, **sample_kw)
        x = color_augment(x, gen)
        target, recon, code = net.autoencode(x)
        loss = F.mse_loss(recon, target) + l1 * code.abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 200 == 0 or step == steps - 1:
            log(f"AE step {step}: loss {loss.item():.4f} code mean {code.mean().item():.3f} "
                f"active {(code > 0).float().mean().item():.3f}")


def finetune(net: NucleiNet, data, steps: int, *, batch: int, sigma: float, color_aug: bool, seed: int,
             max_lr: float = 3e-3, patch: int = PATCH, ema: float = 0.0, checkpoint=None, checkpoint_every: int = 0,
             **sample_kw):
    """Supervised fine-tuning; returns the exponential moving average of the weights when *ema* > 0, else None."""
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    rng = np.random.default_rng(seed + 1)
    gen = torch.Generator().manual_seed(seed + 1)
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=max_lr, total_steps=steps, pct_start=0.1)
    averaged = AveragedModel(net, multi_avg_fn=get_ema_multi_avg_fn(ema), use_buffers=True) if ema else None
    net.train()
    for step in range(steps):
        x, pts = sample_batch(data, batch, rng, size=patch, **sample_kw)
        if color_aug:
            x = color_augment(x, gen)
        y = gaussian_target(pts, patch, sigma)
        loss = F.binary_cross_entropy_with_logits(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if averaged is not None:
            averaged.update_parameters(net)
        if step % 200 == 0 or step == steps - 1:
            log(f"fine-tune step {step}: loss {loss.item():.4f}")
        if checkpoint is not None and checkpoint_every and (step + 1) % checkpoint_every == 0:
            from safetensors.torch import save_file

            state = (averaged.module if averaged else net).state_dict()
            save_file({k: v.detach().contiguous() for k, v in state.items()}, str(checkpoint))
            log(f"checkpoint {checkpoint} after {step + 1} steps")
    return None if averaged is None else averaged.module


# ---------------------------------------------------------------------------------- evaluation
def tune_peaks(net, data, radius: float = 6.0):
    """Grid search of threshold x min_distance maximising pooled F1 on *data* (radius in model pixels)."""
    probs = [probability_map(net, rescale_tensor(to_tensor(img), s)).numpy() for _, img, _, s in data]
    truths = [t if s == 1.0 else (t + 0.5) * s - 0.5 for _, _, t, s in data]  # input -> model px (align_corners=False)
    f1, threshold, min_distance = tune_operating_point(probs, truths, radius=radius)
    return {"tune_f1": f1, "threshold": threshold, "min_distance": min_distance}


def pooled(net, items, *, threshold, min_distance):
    """Pooled P/R/F1 over (rgb, truth, scale, radius) items."""
    tp = fp = fn = 0
    for rgb, truth, scale, radius in items:
        xy, _ = detect_array(net, rgb, scale=scale, threshold=threshold, min_distance=min_distance)
        r = precision_recall_f1(xy, truth, radius)
        tp, fp, fn = tp + r["tp"], fp + r["fp"], fn + r["fn"]
    p, rc = tp / max(1, tp + fp), tp / max(1, tp + fn)
    return {"precision": p, "recall": rc, "f1": 2 * tp / max(1, 2 * tp + fp + fn), "tp": tp, "fp": fp, "fn": fn}


def ood_sets(data_root: Path):
    mon = data_root / "histo" / "monuseg"
    monuseg = []
    for png in sorted(mon.glob("*.png")):
        rgb = load_rgb(png)
        monuseg.append((rgb, monuseg_truth(mon / (png.stem + ".xml.gz"), rgb.shape[:2]), 0.25 / MODEL_MPP, 12.0))
    mic = data_root / "histo" / "miccai2015_seg"
    miccai = []
    for row in csv.DictReader(open(mic / "pairs.csv")):
        rgb = load_rgb(mic / row["image"])
        forty = row["magnification"].startswith("40")
        miccai.append((rgb, miccai_truth(mic / row["mask_file"]), 0.25 / MODEL_MPP if forty else 1.0,
                       12.0 if forty else 6.0))
    return monuseg, miccai


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"),
                    help="shared data folder")
    ap.add_argument("--input-mode", default="rgbh", choices=("rgb", "h", "rgbh"))
    ap.add_argument("--widths", type=int, nargs="+", default=[16, 32, 48, 64],
                    help="channels at full, 1/2, 1/4, 1/8 (and 1/16) resolution: 4 or 5 numbers")
    ap.add_argument("--blocks", type=int, default=1, help="3x3 convs per encoder level at 1/4 and below")
    ap.add_argument("--margin", type=int, default=64, help="tile context margin written to the model, px")
    ap.add_argument("--pretrain-steps", type=int, default=800, help="sparse conv AE steps (0 = no AE)")
    ap.add_argument("--steps", type=int, default=4000, help="supervised fine-tuning steps")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--sigma", type=float, default=3.0, help="Gaussian target sigma, px at 0.5 um/px")
    ap.add_argument("--l1", type=float, default=0.01, help="L1 sparsity weight on the AE code")
    ap.add_argument("--no-color-aug", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--init", default=None,
                    help="continue from these nuclei-net safetensors weights (skips AE pre-training)")
    ap.add_argument("--patch", type=int, default=PATCH, help="fine-tuning patch size, px")
    ap.add_argument("--max-lr", type=float, default=3e-3, help="one-cycle peak learning rate")
    ap.add_argument("--fixed-peaks", type=float, nargs=2, default=None, metavar=("THRESHOLD", "MIN_DISTANCE"),
                    help="train on the tune images too and use this operating point instead of tuning one "
                         "(the validation images are still never trained on)")
    ap.add_argument("--ema", type=float, default=0.0,
                    help="keep an exponential moving average of the weights with this decay (e.g. 0.999) and ship it; "
                         "the raw final weights are evaluated too, for comparison")
    ap.add_argument("--sets", nargs="+", default=["crchisto"], choices=("crchisto", "monuseg_train", "miccai"),
                    help="training sets (CRCHisto always supplies the tune and validation images)")
    ap.add_argument("--set-weights", type=float, nargs="+", default=None,
                    help="probability of drawing a patch from each of --sets (default: proportional to "
                         "image area at the model's resolution)")
    ap.add_argument("--scale-jitter", type=float, nargs=2, default=[0.8, 1.25], metavar=("LO", "HI"),
                    help="log-uniform resize factor around the model's 0.5 um/px")
    ap.add_argument("--checkpoint-every", type=int, default=500, help="fine-tuning steps between checkpoints "
                    "(WORKDIR/NAME.ckpt.safetensors, plain state dict, usable with --init)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--name", default="histo-nuclei", help="variant name (results file name)")
    ap.add_argument("--workdir", default="runs/nuclei", help="where variant weights/results go")
    ap.add_argument("--bundle", action="store_true", help="write resources/models/histo-nuclei.* and register it")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    if "crchisto" not in args.sets:
        ap.error("--sets must include crchisto (its tune/validation images choose and report the operating point)")
    loaded = load_sets(Path(args.data), args.sets)
    (fit, tune, val) = loaded["crchisto"]
    fit_names, tune_names, val_names = ([it[0] for it in part] for part in (fit, tune, val))
    unlabelled = fit + tune  # the AE pre-training images, whichever images the fine-tuning uses
    if args.fixed_peaks:
        fit_names, fit = fit_names + tune_names, fit + tune
    fits = [fit] + [loaded[k][0] for k in args.sets if k != "crchisto"]
    for k in args.sets:
        if k != "crchisto":
            tune = tune + loaded[k][1]
    sample_kw = {"scale_jitter": tuple(args.scale_jitter)}
    if len(fits) > 1:
        area = [sum(im.shape[0] * im.shape[1] * s * s for _, im, _, s in f) for f in fits]
        w = np.asarray(args.set_weights if args.set_weights else area, dtype=np.float64)
        if len(w) != len(fits):
            ap.error("--set-weights needs one number per set")
        sample_kw["set_weights"] = (w / w.sum()).tolist()
        unlabelled = [unlabelled] + fits[1:]
        fit = fits
    set_names = ["crchisto"] + [k for k in args.sets if k != "crchisto"]
    log(f"sets {set_names} fit {[len(f) for f in fits]} weights {sample_kw.get('set_weights')} tune {len(tune)} "
        f"validation {len(val)} images; variant {args.name}")

    net = NucleiNet(input_mode=args.input_mode, widths=tuple(args.widths), blocks=args.blocks)
    t0 = time.time()
    if args.init:
        from safetensors.torch import load_file

        net.load_state_dict(load_file(args.init))
        log(f"continuing from {args.init}")
    elif args.pretrain_steps:
        # Unsupervised: all training images (fit + tune), no labels used.
        pretrain_ae(net, unlabelled, args.pretrain_steps, batch=args.batch, l1=args.l1, seed=args.seed, **sample_kw)
    t1 = time.time()
    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    averaged = finetune(net, fit, args.steps, batch=args.batch, sigma=args.sigma, color_aug=not args.no_color_aug,
                        seed=args.seed, max_lr=args.max_lr, patch=args.patch, ema=args.ema,
                        checkpoint=Path(args.workdir) / f"{args.name}.ckpt.safetensors",
                        checkpoint_every=args.checkpoint_every, **sample_kw)
    t2 = time.time()
    net.eval()
    raw = None
    if averaged is not None:
        raw_peaks = tune_peaks(net, tune)
        raw = {"peaks": raw_peaks, "crchisto_validation_r6": pooled(
            net, [(im, t, 1.0, 6.0) for _, im, t, _ in val],
            threshold=raw_peaks["threshold"], min_distance=raw_peaks["min_distance"])}
        log(f"raw final weights: tune {raw_peaks}, validation F1 {raw['crchisto_validation_r6']['f1']:.3f}")
        net = averaged.eval()
    if args.fixed_peaks:
        peaks = {"tune_f1": None, "threshold": args.fixed_peaks[0], "min_distance": int(args.fixed_peaks[1]),
                 "note": "fixed in advance; the tune images were trained on"}
    else:
        peaks = tune_peaks(net, tune)
    log(f"operating point ({len(tune)} tune images): {peaks}")
    kw = {"threshold": peaks["threshold"], "min_distance": peaks["min_distance"]}
    metrics = {"crchisto_validation_r6": pooled(net, [(im, t, 1.0, 6.0) for _, im, t, _ in val], **kw)}
    monuseg, miccai = ood_sets(Path(args.data))
    metrics["monuseg_r12_mpp0.25"] = pooled(net, monuseg, **kw)
    metrics["miccai2015"] = pooled(net, miccai, **kw)  # all 5 images: some are fitting images with --sets miccai
    for k in ("monuseg_train", "miccai"):
        if k in loaded:
            metrics[f"{k}_held_out"] = pooled(net, [(im, t, s, 6.0 / s) for _, im, t, s in loaded[k][2]], **kw)
    for k, v in metrics.items():
        log(f"{k}: P {v['precision']:.3f} R {v['recall']:.3f} F1 {v['f1']:.3f}")

    meta = {
        "architecture": "nuclei-net",
        "hparams": net.hparams,
        "modality": "histology",
        "name": "histo-nuclei",
        "task": "detect-nuclei",
        "input": "RGB in [0,1] at the model mpp; hematoxylin by colour deconvolution inside the network",
        "mpp": MODEL_MPP,
        "detector": {"threshold": peaks["threshold"], "min_distance": peaks["min_distance"],
                     "radius_px": 6.0, "sigma_px": args.sigma, "tile": 1024, "margin": args.margin},
        "stain": "in-network rgb2hed hematoxylin channel + HED jitter / ColorJitter augmentation"
                 if not args.no_color_aug else "in-network rgb2hed hematoxylin channel, no colour augmentation",
        "training": {"data": "CRCHistoPhenotypes (shared) SFCN-OPI train images" if len(fits) == 1 else
                     "CRCHistoPhenotypes SFCN-OPI train images + " + " + ".join(
                         {"monuseg_train": "MoNuSeg training images (40x)", "miccai": "MICCAI 2015 (brain)"}[k]
                         for k in set_names[1:]),
                     "fit_images": fit_names, "tune_images": [it[0] for it in tune], "validation_images": val_names,
                     **({"sets": {k: {"fit": [it[0] for it in loaded[k][0]], "tune": [it[0] for it in loaded[k][1]],
                                      "held_out": [it[0] for it in loaded[k][2]]} for k in set_names[1:]},
                         "set_weights": sample_kw["set_weights"]} if len(fits) > 1 else {}),
                     "scale_jitter": list(args.scale_jitter),
                     "pretrain": {"kind": "sparse conv AE, L1 on 1/8 code", "steps": args.pretrain_steps,
                                  "l1": args.l1, "seconds": round(t1 - t0)},
                     "init": args.init,
                     "finetune": {"steps": args.steps, "batch": args.batch, "patch": args.patch, "max_lr": args.max_lr,
                                  "loss": "BCE vs Gaussian proximity map", "seconds": round(t2 - t1),
                                  "ema_decay": args.ema or None},
                     "seed": args.seed, "command": "scripts/train_nuclei.py " + " ".join(argv or sys.argv[1:])},
        "metrics": {"tune_f1_r6": peaks["tune_f1"], **metrics},
    }
    if raw is not None:
        meta["metrics"]["raw_final_weights"] = raw
    from engine import weights

    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    weights.save(net, work / f"{args.name}.safetensors", meta)
    (work / f"{args.name}.results.json").write_text(json.dumps({"args": vars(args), **meta["metrics"],
                                                                  "peaks": peaks}, indent=2))
    if args.bundle:
        dest = Path(__file__).resolve().parents[1] / "resources" / "models" / "histo-nuclei.safetensors"
        weights.save(net, dest, meta)
        weights.register_bundled("histo-nuclei", dest, task="detect-nuclei",
                                 description="H&E nucleus detector: sparse conv AE encoder + proximity head, "
                                             f"0.5 um/px, F1 {metrics['crchisto_validation_r6']['f1']:.3f} "
                                             "on CRCHisto validation (r=6 px)")
        log(f"bundled {dest}")


if __name__ == "__main__":
    main()
