"""The ``nuclei`` recipe (histo-nuclei from point annotations) and its validation."""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Generator

import numpy as np

from engine.errors import ModelError
from engine.jobs import Progress
from engine.training.finetune.common import _Plan, _train_job, split_units


def read_annotations(path: str | os.PathLike) -> np.ndarray:
    """``(N, 2)`` x, y points from a CSV (``x``, ``y`` columns) or a (QuPath) GeoJSON of points.

    GeoJSON: a FeatureCollection, a list of features (QuPath's export) or one geometry; ``Point``
    and ``MultiPoint`` geometries give their points, polygons their vertex mean (a nucleus outline).
    """
    from engine.errors import ReadError
    from engine.tasks.nuclei.evaluate import read_points_csv

    p = Path(path)
    if p.suffix.lower() == ".csv":
        return read_points_csv(p)
    try:
        doc = json.loads(p.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReadError(str(p), f"not a readable GeoJSON file ({exc})") from None
    feats = doc if isinstance(doc, list) else doc.get("features", [doc]) if isinstance(doc, dict) else []
    pts: list[tuple[float, float]] = []

    def geom(g):
        if not isinstance(g, dict):
            return
        t, c = g.get("type"), g.get("coordinates")
        if t == "Point":
            pts.append((float(c[0]), float(c[1])))
        elif t == "MultiPoint":
            pts.extend((float(q[0]), float(q[1])) for q in c)
        elif t == "Polygon" and c:
            ring = np.asarray(c[0], float)[:, :2]
            pts.append(tuple(ring[:-1].mean(0)) if len(ring) > 1 else tuple(ring[0]))
        elif t == "GeometryCollection":
            for gg in g.get("geometries", []):
                geom(gg)
    for f in feats:
        geom(f.get("geometry") if isinstance(f, dict) and "geometry" in f else f)
    return np.asarray(pts, np.float64).reshape(-1, 2)


def _annotation_for(image_path: Path) -> Path | None:
    for suffix in (".csv", ".geojson", ".json", ".points.csv"):
        for cand in (image_path.with_suffix(suffix), image_path.parent / (image_path.stem + suffix)):
            if cand.exists() and cand != image_path:
                return cand
    return None


_RGB_FROM_HED = np.array([[0.65, 0.70, 0.29], [0.07, 0.99, 0.11], [0.27, 0.57, 0.78]])


def _hed_jitter(x, gen, sigma: float = 0.05, bias: float = 0.05):
    """Tellez-style stain augmentation: scale/shift each HED optical density per sample (torch only)."""
    import torch

    rgb_from_hed = torch.tensor(_RGB_FROM_HED, dtype=torch.float32)
    hed_from_rgb = torch.linalg.inv(rgb_from_hed)
    od = torch.log(x.clamp(min=1e-6)) / math.log(1e-6)
    hed = torch.einsum("nchw,cd->ndhw", od, hed_from_rgb)
    n = x.shape[0]
    a = 1 + (torch.rand(n, 3, 1, 1, generator=gen) * 2 - 1) * sigma
    b = (torch.rand(n, 3, 1, 1, generator=gen) * 2 - 1) * bias * 0.1
    od = torch.einsum("ndhw,dc->nchw", hed * a + b, rgb_from_hed)
    return torch.exp(od * math.log(1e-6)).clamp(0, 1)


def _gaussian_target(points, size: int, sigma: float):
    import torch

    yy, xx = torch.meshgrid(torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32),
                            indexing="ij")
    grid = torch.stack([xx.reshape(-1), yy.reshape(-1)], 1)
    out = torch.zeros(len(points), 1, size, size)
    for i, p in enumerate(points):
        if len(p):
            d2 = torch.cdist(grid, torch.as_tensor(p, dtype=torch.float32)).min(1).values ** 2
            out[i, 0] = torch.exp(-d2 / (2 * sigma ** 2)).reshape(size, size)
    return out


def _nuclei_inputs(items, paths, annotations, mpp, model_mpp):
    """``[(name, rgb at model mpp uint8, points at model mpp, scale)]`` for every annotated image."""
    import torch

    from engine.tasks.nuclei.core import rescale_tensor, to_tensor

    if isinstance(mpp, (list, tuple)) and len(mpp) not in (1, len(items)):
        raise ModelError(f"{len(mpp)} --mpp values for {len(items)} image(s); give one, or one per image")
    if isinstance(mpp, (list, tuple)) and len(mpp) == 1:
        mpp = mpp[0]
    if annotations is not None and len(annotations) != len(items):
        raise ModelError(f"{len(annotations)} annotation file(s) for {len(items)} image(s); give one per image, "
                         "in the same order")
    out = []
    for i, (it, p) in enumerate(zip(items, paths)):
        ann = annotations[i] if annotations is not None else None
        if ann is None:
            if not isinstance(p, (str, os.PathLike)) or (ann := _annotation_for(Path(p))) is None:
                raise ModelError(f"{p}: no point annotations; put {Path(str(p)).stem}.csv (x,y) or "
                                 f"{Path(str(p)).stem}.geojson beside it, or pass annotations")
        pts = ann if isinstance(ann, np.ndarray) else read_annotations(ann)
        m_i = mpp[i] if isinstance(mpp, (list, tuple)) else mpp
        img_mpp = float(m_i or it.mpp or model_mpp)
        scale = img_mpp / model_mpp
        rgb = it.read_region(0, 0, 0, it.shape[1], it.shape[0])
        t = rescale_tensor(to_tensor(rgb), scale)
        arr = (t[0].permute(1, 2, 0).clamp(0, 1) * 255).round().to(torch.uint8).numpy()
        f = np.array([t.shape[-1] / rgb.shape[1], t.shape[-2] / rgb.shape[0]])
        pts_m = (np.asarray(pts, np.float64).reshape(-1, 2) + 0.5) * f - 0.5
        out.append((str(getattr(it, "path", p)), arr, pts_m, scale, img_mpp))
    return out


def _nuclei_recipe(parent, items, paths, *, annotations, mpp, steps, lr, batch, freeze, val_fraction, device,
                   seed, patch: int = 96):
    import torch
    from torch.nn import functional as F

    from engine.tasks.nuclei.core import random_patch

    meta = parent.meta
    det = meta.get("detector", {})
    model_mpp = float(meta.get("mpp", 0.5))
    sigma = float(det.get("sigma_px", 3.0))
    data = _nuclei_inputs(items, paths, annotations, mpp, model_mpp)
    tr_i, ho_i = split_units(len(data), val_fraction)
    fit, held = [data[i] for i in tr_i], [data[i] for i in ho_i]
    plan = _Plan(n_train=len(fit), n_held_out=len(held),
                 held_out_note=", ".join(h[0] for h in held))
    small = min(min(d[1].shape[:2]) for d in fit)
    patch = int(min(patch, small - small % 8))
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)

    def batch_fn(step):
        xs, pts = [], []
        for _ in range(batch):
            _, img, xy, _, _ = fit[int(rng.integers(len(fit)))]
            t, p = random_patch(img, xy, rng, size=patch, scale=(0.85, 1.18))
            xs.append(t[0])
            pts.append(p.reshape(-1, 2))
        x = _hed_jitter(torch.stack(xs), gen)
        return x, _gaussian_target(pts, patch, sigma)

    def loss_fn(module, xb, yb):
        return F.binary_cross_entropy_with_logits(module(xb), yb)

    return _train_job(parent, plan, batch_fn, loss_fn, what=f"{len(fit)} annotated image(s)", held=(held or fit),
                      tag="nuclei", freeze=freeze, seed=seed, steps=steps, lr=lr, device=device, weight_decay=1e-4)


def _nuclei_validation(parent, module, held, *, device) -> Generator[Progress, None, tuple]:
    """F1 before (parent operating point) / after (re-tuned operating point) on the held-out images."""
    from engine.tasks.nuclei.core import pooled_counts, probability_map, to_tensor, tune_operating_point

    det = parent.meta.get("detector", {})
    radius = float(det.get("radius_px", 6.0))
    maps_b, maps_a, truths = [], [], []
    for i, (_, img, pts, _, _) in enumerate(held):
        x = to_tensor(img)
        maps_b.append(probability_map(parent.module, x).numpy())
        maps_a.append(probability_map(module, x).numpy())
        truths.append(pts)
        yield Progress((i + 1) / len(held), f"validated {i + 1}/{len(held)} image(s)")

    def score(maps, th, md):
        tp, fp, fn = (int(v) for v in pooled_counts(maps, truths, threshold=th, min_distance=md, radius=radius))
        return {"precision": tp / max(1, tp + fp), "recall": tp / max(1, tp + fn),
                "f1": 2 * tp / max(1, 2 * tp + fp + fn), "tp": tp, "fp": fp, "fn": fn,
                "threshold": th, "min_distance": md}
    th0, md0 = float(det.get("threshold", 0.5)), int(det.get("min_distance", 4))
    before = score(maps_b, th0, md0)
    _, th1, md1 = tune_operating_point(maps_a, truths, radius=radius)
    after = score(maps_a, th1, md1)
    after["at_parent_operating_point"] = score(maps_a, th0, md0)
    return before, after, {"threshold": th1, "min_distance": md1}
