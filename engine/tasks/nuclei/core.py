"""Array-level nucleus detection: probability map, peak finding, magnification rescaling.

All functions take RGB ``uint8`` arrays ``(rows, cols, 3)`` and return points as
``(x = column, y = row)`` float64 in the pixels of the array they were given.
Torch is imported here; import this module only when detecting.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch.nn import functional as F

__all__ = ["to_tensor", "random_patch", "probability_map", "find_peaks", "detect_array", "detect_points",
           "outline_points", "TilePoints", "rescale_tensor",
           "network_stride", "pooled_counts", "tune_operating_point", "TUNE_MIN_DISTANCES", "TUNE_THRESHOLDS"]

#: Downsampling of a detector without a ``stride`` attribute: inputs are padded to a multiple of it.
_MULTIPLE = 8
#: The operating-point grid searched when a detector is tuned: minimum peak distance x score threshold.
TUNE_MIN_DISTANCES = (3, 4, 5, 6)
TUNE_THRESHOLDS = np.arange(0.15, 0.76, 0.05)


def network_stride(module) -> int:
    """Total downsampling of a detector network: its input sizes must be a multiple of this."""
    return int(getattr(module, "stride", _MULTIPLE))


def to_tensor(rgb: np.ndarray, device=None) -> torch.Tensor:
    """``(1, 3, H, W)`` float32 in [0, 1] from an RGB(A) uint8 array (alpha dropped)."""
    rgb = np.asarray(rgb)
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[..., None], 3, axis=2)
    rgb = rgb[..., :3]
    t = torch.from_numpy(np.array(rgb, dtype=np.uint8, copy=True)).to(device)
    return t.permute(2, 0, 1).unsqueeze(0).float().div_(255.0)


def rescale_tensor(x: torch.Tensor, scale: float) -> torch.Tensor:
    """Resize ``(N, C, H, W)`` by *scale* (antialiased when shrinking); 1.0 returns *x*."""
    if abs(scale - 1.0) < 1e-6:
        return x
    h, w = x.shape[-2:]
    size = (max(1, int(round(h * scale))), max(1, int(round(w * scale))))
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=scale < 1.0)


@torch.inference_mode()
def probability_map(module, x: torch.Tensor) -> torch.Tensor:
    """Nucleus proximity probability ``(H, W)`` in [0, 1] for ``(1, 3, H, W)`` RGB in [0, 1].

    The input is reflect-padded to a multiple of the network's stride and the padding cropped again.
    """
    h, w = x.shape[-2:]
    multiple = network_stride(module)
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        mode = "reflect" if h > ph and w > pw else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    logit = module(x.contiguous(memory_format=torch.channels_last))[0, 0, :h, :w]
    return torch.sigmoid(logit)


def find_peaks(prob: np.ndarray, *, threshold: float, min_distance: int) -> tuple[np.ndarray, np.ndarray]:
    """Local maxima of *prob* above *threshold*, at least *min_distance* px apart.

    Returns ``(xy, score)``: ``(N, 2)`` float64 (column, row) and ``(N,)`` float32.
    Plateaus are reduced to one point by skimage's peak_local_max.
    """
    from skimage.feature import peak_local_max

    prob = np.asarray(prob, dtype=np.float32)
    rc = peak_local_max(prob, min_distance=max(1, int(min_distance)), threshold_abs=float(threshold),
                        exclude_border=False)
    if len(rc) == 0:
        return np.zeros((0, 2)), np.zeros((0,), np.float32)
    score = prob[rc[:, 0], rc[:, 1]].astype(np.float32)
    return rc[:, ::-1].astype(np.float64), score


class TilePoints(NamedTuple):
    """The network half of :func:`detect_array` for one array (see :func:`detect_points`)."""

    xy: np.ndarray          # (M, 2) kept detections, input pixels
    score: np.ndarray       # (M,) their scores
    xy_model: np.ndarray    # (N, 2) every detection, model pixels (all of them seed the outlines)
    select: np.ndarray | None  # (N,) bool: the kept ones, None = all
    rgb_model: np.ndarray   # the array at the model's resolution (what the outlines are traced on)
    model_hw: tuple         # its (rows, cols)
    input_hw: tuple         # the input array's (rows, cols)


def detect_points(module, rgb: np.ndarray, *, scale: float = 1.0, threshold: float = 0.5,
                  min_distance: int = 4, device=None, keep=None, for_outlines: bool = False) -> TilePoints:
    """The network and peak half of :func:`detect_array` (same parameters); with *for_outlines*
    the array at the model's resolution is kept for :func:`outline_points`."""
    x = rescale_tensor(to_tensor(rgb, device), scale)
    prob = probability_map(module, x).float().cpu().numpy()
    xy, score = find_peaks(prob, threshold=threshold, min_distance=min_distance)
    input_hw = tuple(np.asarray(rgb).shape[:2])
    xy_in = model_to_input(xy, x.shape[-2:], input_hw)
    sel = None if keep is None else np.asarray(keep(xy_in), bool)
    rgb_model = None
    if for_outlines:
        rgb_model = (x[0].permute(1, 2, 0).clamp(0, 1).mul(255).round().byte().cpu().numpy()
                     if abs(scale - 1.0) >= 1e-6 else np.asarray(rgb)[..., :3])
    kept = slice(None) if sel is None else sel
    return TilePoints(xy_in[kept], score[kept], xy, sel, rgb_model, tuple(x.shape[-2:]), input_hw)


def outline_points(points: TilePoints, *, model_mpp: float) -> tuple[np.ndarray, list[np.ndarray]]:
    """The outline half of :func:`detect_array`: areas (model pixels) and polygons (input pixels) of
    the kept detections of *points*. Torch-free (numpy / scipy / scikit-image / OpenCV), so it can
    run in another thread while the network works on the next tile."""
    from engine.tasks.nuclei.outline import outline_nuclei

    area, polys = outline_nuclei(points.rgb_model, points.xy_model, mpp=model_mpp, select=points.select)
    return area, [model_to_input(p, points.model_hw, points.input_hw) for p in polys]


def detect_array(module, rgb: np.ndarray, *, scale: float = 1.0, threshold: float = 0.5,
                 min_distance: int = 4, device=None, outlines: bool = False, model_mpp: float = 0.5,
                 keep=None):
    """Detect nuclei in one in-memory RGB array.

    Parameters
    ----------
    scale : float
        Input pixel size divided by the model's (``input_mpp / model_mpp``): the array is
        resized by *scale* before the network and detections are mapped back.
    threshold, min_distance
        Peak score threshold and minimum peak distance (in model pixels).
    outlines : bool
        Also outline each nucleus (:func:`engine.tasks.nuclei.outline.outline_nuclei`
        on the rescaled array, whose pixel size is *model_mpp*).
    keep : callable, optional
        ``keep(xy) -> (N,) bool`` on the input-pixel centres: return only those detections
        (and outline only them; every detection still bounds its neighbours' outlines).

    Returns
    -------
    xy, score
        ``(N, 2)`` (column, row) in input pixels and ``(N,)`` scores in [0, 1].
    area_model_px, polygons
        Only with *outlines*: ``(N,)`` areas in model pixels and one ``(K, 2)`` polygon
        per nucleus in input pixels.
    """
    pts = detect_points(module, rgb, scale=scale, threshold=threshold, min_distance=min_distance,
                        device=device, keep=keep, for_outlines=outlines)
    if not outlines:
        return pts.xy, pts.score
    area, polys = outline_points(pts, model_mpp=model_mpp)
    return pts.xy, pts.score, area, polys


def model_to_input(xy: np.ndarray, model_hw, input_hw) -> np.ndarray:
    """Map pixel centres of a resized array back to the input array (align_corners=False)."""
    sy = input_hw[0] / model_hw[0]
    sx = input_hw[1] / model_hw[1]
    out = np.empty_like(xy, dtype=np.float64)
    out[:, 0] = (xy[:, 0] + 0.5) * sx - 0.5
    out[:, 1] = (xy[:, 1] + 0.5) * sy - 0.5
    return out


def pooled_counts(maps, truths, *, threshold: float, min_distance: int, radius: float) -> np.ndarray:
    """Pooled ``[tp, fp, fn]`` of the peaks of probability *maps* against their *truths* points."""
    from engine.tasks.nuclei.evaluate import precision_recall_f1

    counts = np.zeros(3, np.int64)
    for prob, truth in zip(maps, truths):
        xy, _ = find_peaks(prob, threshold=threshold, min_distance=min_distance)
        r = precision_recall_f1(xy, truth, radius)
        counts += (r["tp"], r["fp"], r["fn"])
    return counts


def tune_operating_point(maps, truths, *, radius: float) -> tuple[float, float, int]:
    """``(pooled F1, threshold, min_distance)`` maximising pooled F1 over the tuning grid.

    Ties keep the first point in grid order (smaller distance, then lower threshold).
    """
    best = None
    for md in TUNE_MIN_DISTANCES:
        for th in TUNE_THRESHOLDS:
            tp, fp, fn = pooled_counts(maps, truths, threshold=th, min_distance=md, radius=radius)
            f1 = 2 * tp / max(1, 2 * tp + fp + fn)
            if best is None or f1 > best[0]:
                best = (float(f1), float(round(th, 2)), md)
    return best


def random_patch(img: np.ndarray, xy: np.ndarray, rng: np.random.Generator, *, size: int,
                 scale: tuple[float, float] | None = None) -> tuple[torch.Tensor, np.ndarray]:
    """A random training patch of an RGB image and its nucleus points, augmented.

    A crop of ``size / s`` pixels (``s`` log-uniform in *scale*, or 1) resized to *size* x *size*,
    a random horizontal flip and 0-3 counter-clockwise quarter turns; the ``(x, y)`` points follow
    and those more than 8 px outside the patch are dropped. Returns a ``(1, 3, size, size)``
    tensor in [0, 1] and the ``(N, 2)`` points in patch pixels. Random draws, in order: the scale
    (when given), the crop's row and column, the flip, the number of turns.
    """
    s = float(np.exp(rng.uniform(np.log(scale[0]), np.log(scale[1])))) if scale else 1.0
    crop = min(int(round(size / s)), min(img.shape[:2]))
    y0 = int(rng.integers(0, img.shape[0] - crop + 1))
    x0 = int(rng.integers(0, img.shape[1] - crop + 1))
    t = to_tensor(img[y0:y0 + crop, x0:x0 + crop])
    t = F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False, antialias=crop > size)
    p = (xy - [x0, y0] + 0.5) * (size / crop) - 0.5
    p = p[(p[:, 0] > -8) & (p[:, 1] > -8) & (p[:, 0] < size + 8) & (p[:, 1] < size + 8)]
    if rng.random() < 0.5:
        t = t.flip(-1)
        p = np.stack([size - 1 - p[:, 0], p[:, 1]], 1)
    for _ in range(int(rng.integers(4))):  # rot90 counter-clockwise: (x, y) -> (y, W-1-x)
        t = torch.rot90(t, 1, (-2, -1))
        p = np.stack([p[:, 1], size - 1 - p[:, 0]], 1)
    return t, p
