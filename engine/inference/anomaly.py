"""Anomaly maps: reconstruction error, post-processing, foreground masks, calibration.

The map is the per-pixel (per-sample) reconstruction error in model units, with the
post-processing the literature found to matter (Baur et al. 2021; Kascenas et al. 2022):
a median filter and a Gaussian blur to suppress single-pixel edge errors, and a
foreground mask (CT body or lungs by HU thresholds + morphology; histology tissue by
saturation; signals: a moving average of the error). It is expressed on a FIXED scale
calibrated on normal validation data: ``(error - p_low) / (p_high - p_low)`` clipped at 0,
so 0 = typical of normal data and 1 = the high percentile (p99) of normal data. The
calibration percentiles travel with the weights (``meta["calibration"]``).

ONE definition of that scale (:func:`calibrate`, constants below) serves every producer: the
bundled models (scripts/train_bundled.py, scripts/train_ecg_dae.py via
:func:`engine.inference.calibration.calibrate_on`), ``train``, ``finetune`` and ``calibrate``.
Low point = the pooled median (``p50``). High point (``p99_ucb90``) = the pooled p99, raised
to a one-sided 90 % upper confidence bound of it when the normal data come in several
independent units (CT planes, images, recordings): the bound is the 90th percentile of the
pooled p99 over a fixed-seed bootstrap that resamples whole UNITS, not pixels. Why units:
after the median filter and the Gaussian blur, neighbouring pixels of a plane are strongly
correlated and planes differ systematically (apex vs mid-chest), so the effective sample size
of a p99 is the number of planes, not of pixels. With the 3-4 held-out planes of a typical
fine-tune, the pooled p99 depends on which planes happened to be held out and under-estimates
the p99 of the patient's other normal planes about as often as not; the bound never makes the
scale stricter than the held-out units justify, and it converges to the pooled p99 as the
number of units grows (one unit: exactly the pooled p99). ``p99`` itself stays the pooled value.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from scipy import ndimage as ndi

from engine.inference import morphology as morph

__all__ = ["error_map", "postprocess_image_error", "smooth_signal_error", "ct_body_mask", "ct_lung_mask",
           "disk_closing", "fill_holes", "tissue_mask", "calibrate", "apply_calibration", "anomaly_stats",
           "CALIBRATION_PERCENTILES", "CALIBRATION_LOW", "CALIBRATION_HIGH", "CALIBRATION_QUANTILE",
           "CALIBRATION_CONFIDENCE", "unit_bootstrap_bound"]

CALIBRATION_PERCENTILES = (50.0, 90.0, 95.0, 99.0, 99.9)
#: The definition of the fixed scale (see the module docstring), in this one place.
CALIBRATION_LOW = "p50"
CALIBRATION_QUANTILE = 99.0
CALIBRATION_CONFIDENCE = 0.90
CALIBRATION_HIGH = "p99_ucb90"
CALIBRATION_BOOTSTRAP = 200
CALIBRATION_BOOTSTRAP_VALUES = 20_000  # values per unit used by the bootstrap (a fixed-seed subsample)
CALIBRATION_SEED = 0
CALIBRATION_DEFINITION = (f"0 = pooled {CALIBRATION_LOW}; 1 = {CALIBRATION_HIGH}: "
                          f"the pooled p{CALIBRATION_QUANTILE:g}, "
                          f"raised to its one-sided {100 * CALIBRATION_CONFIDENCE:g} % upper bound over a "
                          f"{CALIBRATION_BOOTSTRAP}-fold bootstrap of whole units (planes, images, recordings)")


def error_map(x: np.ndarray, recon: np.ndarray, *, kind: str = "abs", channel_axis: int | None = 0) -> np.ndarray:
    """Per-pixel error, averaged over *channel_axis* (None keeps every channel)."""
    d = np.asarray(x, np.float32) - np.asarray(recon, np.float32)
    e = np.abs(d) if kind == "abs" else d * d
    if channel_axis is not None:
        e = e.mean(axis=channel_axis)
    return e.astype(np.float32)


def postprocess_image_error(err: np.ndarray, *, median_size: int = 0, smooth_sigma: float = 0.0,
                            mask: np.ndarray | None = None) -> np.ndarray:
    """Median filter then Gaussian blur of a 2-D error map (sizes in pixels; 0 = skip).

    With a boolean *mask* the error outside it is zeroed BEFORE filtering and the blur is
    normalised by the blurred mask, so strong errors just outside the mask (mediastinal
    edges next to a lung mask) do not bleed into it; the result is zero outside *mask*.
    """
    out = np.asarray(err, np.float32)
    m = None if mask is None else np.asarray(mask, bool)
    if m is not None:
        if m.shape != out.shape:
            raise ValueError(f"mask shape {m.shape} != error shape {out.shape}")
        out = out * m
    if median_size and median_size > 1:
        if m is None:
            out = ndi.median_filter(out, size=int(median_size), mode="reflect")
        else:
            out = _median_near_mask(out, m, int(median_size), float(smooth_sigma or 0.0))
    if smooth_sigma and smooth_sigma > 0:
        out = ndi.gaussian_filter(out, float(smooth_sigma), mode="reflect")
        if m is not None:
            w = ndi.gaussian_filter(m.astype(np.float32), float(smooth_sigma), mode="reflect")
            out = out / np.maximum(w, 1e-3)
    if m is not None:
        out = out * m
    return out.astype(np.float32)


def _median_near_mask(err: np.ndarray, mask: np.ndarray, size: int, sigma: float) -> np.ndarray:
    """``ndi.median_filter(err, size, mode="reflect")`` wherever a pixel of *mask* can see it.

    The result is kept only inside *mask*, after a Gaussian of radius ``int(4 sigma + 0.5)``
    (scipy's truncation), so only the mask's bounding box grown by that radius needs the
    median; it is computed on that box grown by the median's half-width (or up to the
    array edge, where ``reflect`` then behaves as on the whole array), so every kept value
    equals the whole-array filter's. Elsewhere *err* is returned unfiltered. Slices with no
    mask skip the filter (~40 ms a 257 x 257 CT slice at model resolution).
    """
    radius = int(4.0 * sigma + 0.5) if sigma > 0 else 0
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    out = err.copy()
    if rows.size == 0:
        return out
    h, w = err.shape
    y0, y1 = max(int(rows[0]) - radius, 0), min(int(rows[-1]) + 1 + radius, h)
    x0, x1 = max(int(cols[0]) - radius, 0), min(int(cols[-1]) + 1 + radius, w)
    cy0, cy1 = max(y0 - size // 2, 0), min(y1 + size // 2, h)
    cx0, cx1 = max(x0 - size // 2, 0), min(x1 + size // 2, w)
    med = ndi.median_filter(err[cy0:cy1, cx0:cx1], size=size, mode="reflect")
    out[y0:y1, x0:x1] = med[y0 - cy0:y1 - cy0, x0 - cx0:x1 - cx0]
    return out


def smooth_signal_error(err: np.ndarray, *, sfreq: float, smooth_s: float = 0.05) -> np.ndarray:
    """Moving average of a ``(channels, n)`` error over *smooth_s* seconds."""
    n = max(1, int(round(smooth_s * sfreq)))
    if n <= 1:
        return np.asarray(err, np.float32)
    return ndi.uniform_filter1d(np.asarray(err, np.float32), n, axis=-1, mode="nearest")


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """``ndi.binary_fill_holes(mask)`` (default structure), exactly, by one labelling.

    A hole is a background component (4-connected in 2-D, faces in n-D: scipy's default)
    that does not touch the array's border. scipy finds them by dilating from the border
    until nothing changes, which costs a full pass per pixel of the widest hole (~20 ms a
    CT slice); labelling the background once costs one pass.
    """
    mask = np.asarray(mask, bool)
    lab, n = morph.label(~mask)
    if n == 0:
        return mask.copy()
    outside = np.zeros(n + 1, bool)
    for ax in range(mask.ndim):  # components with a pixel on any face of the array
        outside[np.take(lab, 0, axis=ax)] = True
        outside[np.take(lab, -1, axis=ax)] = True
    outside[0] = False  # label 0 is the mask itself
    return ~outside[lab]


def _largest_component(fg: np.ndarray) -> np.ndarray:
    lab, n = morph.label(fg)
    if n == 0:
        return np.zeros(fg.shape, bool)
    sizes = np.bincount(lab.ravel(), minlength=n + 1)[1:]
    return lab == (1 + int(np.argmax(sizes)))


def ct_body_mask(hu: np.ndarray, *, threshold: float = -500.0) -> np.ndarray:
    """The patient's body on an axial slice: the largest component above *threshold* HU, holes filled.

    Filling holes puts the lungs (air inside the chest wall) inside the body.
    """
    fg = morph.binary_opening(hu > threshold, iterations=2)
    return fill_holes(_largest_component(fg))


def _crop_box(mask: np.ndarray, margin: int) -> tuple[slice, ...] | None:
    """The bounding box of *mask* grown by *margin* on every side (may extend past the array)."""
    idx = [np.flatnonzero(mask.any(axis=tuple(a for a in range(mask.ndim) if a != ax)))
           for ax in range(mask.ndim)]
    if any(i.size == 0 for i in idx):
        return None
    return tuple(slice(int(i[0]) - margin, int(i[-1]) + 1 + margin) for i in idx)


def _padded_crop(mask: np.ndarray, box: tuple[slice, ...]) -> np.ndarray:
    """``mask[box]`` where parts of *box* outside the array read as background."""
    out = np.zeros(tuple(b.stop - b.start for b in box), bool)
    src = tuple(slice(max(b.start, 0), min(b.stop, n)) for b, n in zip(box, mask.shape))
    dst = tuple(slice(s.start - b.start, s.stop - b.start) for s, b in zip(src, box))
    out[dst] = mask[src]
    return out


def disk_closing(mask: np.ndarray, r: int) -> np.ndarray:
    """``ndi.binary_closing(mask, structure=disk)`` for the disk ``y*y + x*x <= r*r``, exactly.

    Dilation and erosion by a disk are thresholds of Euclidean distance transforms, which
    cost the same for any radius (a 29x29 structuring element made the closing 0.13 s per
    CT slice). As in scipy, pixels outside the array count as background in both steps.
    Both transforms run on the mask's bounding box grown by what can matter (``2 r + 1``):
    every pixel the closing can set, and every pixel that decides it, lies inside it.
    """
    mask = np.asarray(mask, bool)
    box = _crop_box(mask, 2 * r + 1)
    if box is None:
        return np.zeros_like(mask)
    m = _padded_crop(mask, box)  # a background ring of >= r + 1 pixels around the dilation
    src = tuple(slice(max(b.start, 0), min(b.stop, n)) for b, n in zip(box, mask.shape))
    dst = tuple(slice(s.start - b.start, s.stop - b.start) for s, b in zip(src, box))
    rr = float(r * r)
    dilated = np.zeros_like(m)  # nearest foreground within r, inside the array only (as scipy)
    dilated[dst] = (morph.squared_distance(~m) <= rr)[dst]
    closed = morph.squared_distance(dilated) > rr  # no background within r
    out = np.zeros_like(mask)
    out[src] = closed[dst]
    return out


def ct_lung_mask(hu: np.ndarray, *, threshold: float = -400.0, closing_mm: float = 10.0,
                 spacing_mm: float = 0.7) -> np.ndarray:
    """Lungs on an axial slice: air (< *threshold* HU) inside the body, closed and filled so
    vessels and nodules inside the lung count as lung (a nodule is what we look for)."""
    body = ct_body_mask(hu)
    air = (hu < threshold) & morph.binary_erosion(body, iterations=3)
    lab, n = morph.label(air)
    if n == 0:
        return np.zeros(hu.shape, bool)
    sizes = np.bincount(lab.ravel(), minlength=n + 1)
    big = sizes >= max(500.0, 0.02 * float(sizes[1:].sum()))
    big[0] = False
    keep = big[lab]
    r = max(1, int(round(closing_mm / spacing_mm / 2)))
    closed = disk_closing(np.pad(keep, r), r)[r:-r, r:-r]
    filled = np.zeros_like(closed)
    lab2, n2 = morph.label(closed)
    for i, sl in enumerate(ndi.find_objects(lab2), start=1):  # each lung separately (both would add the mediastinum)
        grown = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in sl)  # its box + a background ring
        filled[grown] |= fill_holes(lab2[grown] == i)
    return filled & body


def tissue_mask(rgb: np.ndarray, *, min_saturation: float = 0.07, max_value: float = 0.92) -> np.ndarray:
    """Tissue on an H&E image: saturated or dark pixels (glass background is bright and grey)."""
    x = np.asarray(rgb, np.float32)
    if x.max() > 1.5:
        x = x / 255.0
    mx, mn = x[..., :3].max(-1), x[..., :3].min(-1)
    sat = (mx - mn) / np.maximum(mx, 1e-6)
    m = (sat > min_saturation) | (mx < max_value)
    return ndi.binary_opening(m, iterations=1)


def _unit_arrays(values) -> list[np.ndarray]:
    """*values* as a list of finite float64 1-D arrays, one per unit (an ndarray = one unit)."""
    if isinstance(values, np.ndarray):
        values = [values]
    units = []
    for u in values:
        v = np.asarray(u, np.float64).ravel()
        v = v[np.isfinite(v)]
        if v.size:
            units.append(v)
    return units


def unit_bootstrap_bound(units: Sequence[np.ndarray], *, q: float = CALIBRATION_QUANTILE,
                         confidence: float = CALIBRATION_CONFIDENCE, n_boot: int = CALIBRATION_BOOTSTRAP,
                         per_unit: int = CALIBRATION_BOOTSTRAP_VALUES, seed: int = CALIBRATION_SEED) -> float:
    """One-sided *confidence* upper bound of the pooled *q*-th percentile, resampling whole units.

    Each unit is first reduced to at most *per_unit* values (a fixed-seed subsample; an exact
    copy when smaller), so that every unit weighs by its size as in the pooled percentile."""
    rng = np.random.default_rng(seed)
    units = [u if u.size <= per_unit else rng.choice(u, per_unit, replace=False) for u in units]
    n = len(units)
    if n < 2:
        return float(np.percentile(units[0], q))
    stats = np.empty(n_boot)
    for b in range(n_boot):
        pick = rng.integers(0, n, n)
        stats[b] = np.percentile(np.concatenate([units[i] for i in pick]), q)
    return float(np.quantile(stats, confidence))


def calibrate(values, *, data: str = "") -> dict[str, Any]:
    """The fixed scale from post-processed errors of NORMAL validation data (the definition above).

    *values*: one array (one unit) or a sequence of arrays, one per independent unit (a CT
    plane, an image, a recording). Returns the pooled percentiles ``p50 .. p99.9``, ``mean``,
    ``n``, ``n_units``, the high point ``p99_ucb90`` and ``low``/``high`` naming the keys used."""
    units = _unit_arrays(values)
    if not units:
        raise ValueError("no values to calibrate on")
    v = np.concatenate(units)
    pct = np.percentile(v, CALIBRATION_PERCENTILES)
    cal = {f"p{p:g}": float(q) for p, q in zip(CALIBRATION_PERCENTILES, pct)}
    pooled = float(np.percentile(v, CALIBRATION_QUANTILE))
    cal[CALIBRATION_HIGH] = max(pooled, unit_bootstrap_bound(units)) if len(units) > 1 else pooled
    cal.update(low=CALIBRATION_LOW, high=CALIBRATION_HIGH, n=int(v.size), n_units=len(units),
               mean=float(v.mean()), data=data, definition=CALIBRATION_DEFINITION)
    return cal


def apply_calibration(err: np.ndarray, calibration: dict[str, Any] | None) -> np.ndarray:
    """Map errors to the fixed scale ``max(0, (e - low) / (high - low))``; identity if uncalibrated."""
    e = np.asarray(err, np.float32)
    if not calibration:
        return e
    lo = float(calibration[calibration.get("low", "p50")])
    hi = float(calibration[calibration.get("high", "p99")])
    return np.maximum((e - lo) / max(hi - lo, 1e-12), 0.0).astype(np.float32)


def anomaly_stats(a: np.ndarray, mask: np.ndarray | None = None) -> dict[str, float]:
    """Summary of a calibrated map (inside *mask* when given): mean, p95, p99, max, fraction > 1."""
    v = np.asarray(a, np.float32)
    if mask is not None:
        v = v[np.asarray(mask, bool)]
    v = v[np.isfinite(v)]
    if v.size == 0:
        return {"mean": 0.0, "p95": 0.0, "p99": 0.0, "max": 0.0, "fraction_above_1": 0.0, "n": 0}
    p95, p99 = np.percentile(v, [95, 99])
    return {"mean": float(v.mean()), "p95": float(p95), "p99": float(p99), "max": float(v.max()),
            "fraction_above_1": float((v > 1).mean()), "n": int(v.size)}
