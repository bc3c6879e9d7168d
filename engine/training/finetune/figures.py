"""The before/after figures written beside an adapted model (``<name>.before_after.png``)."""
from __future__ import annotations

import math

import numpy as np

from engine.training.finetune.common import _signal_at
from engine.training.finetune.ecg import _baseline, _noise_parts, _noise_seg


def _heat(a: np.ndarray, vmax: float = 2.0) -> np.ndarray:
    """A black-red-yellow-white colour map of a calibrated map (0..vmax), uint8 RGB."""
    t = np.clip(np.nan_to_num(a) / vmax, 0, 1)
    r = np.clip(3 * t, 0, 1)
    g = np.clip(3 * t - 1, 0, 1)
    b = np.clip(3 * t - 2, 0, 1)
    return (np.stack([r, g, b], -1) * 255).astype(np.uint8)


def _label(img, text: str):
    from PIL import ImageDraw

    d = ImageDraw.Draw(img)
    d.rectangle([0, 0, 8 + 7 * len(text), 16], fill=(0, 0, 0))
    d.text((4, 2), text, fill=(255, 255, 255))
    return img


def _side_by_side(panels):
    from PIL import Image as PILImage

    h = max(p.height for p in panels)
    out = PILImage.new("RGB", (sum(p.width for p in panels) + 4 * (len(panels) - 1), h), (255, 255, 255))
    x = 0
    for p in panels:
        out.paste(p, (x, 0))
        x += p.width + 4
    return out


def _recon_figure(parent, after_loaded, held, cal_after, *, device):
    """Calibrated anomaly of one held-out unit: parent (its calibration) | adapted (the new one)."""
    from PIL import Image as PILImage

    from engine.inference.anomaly import apply_calibration
    from engine.inference.pipelines import image_pipeline
    from engine.jobs import run_job

    h = held[0]
    data, planes = h if isinstance(h, tuple) else (h, None)
    if data.modality not in ("ct", "histology"):
        return None
    planes = planes[len(planes) // 2:len(planes) // 2 + 1] if planes else None
    maps = []
    for lm, cal in ((parent, parent.meta.get("calibration")), (after_loaded, cal_after)):
        _, err, mask = run_job(image_pipeline(lm, data, device=device, calibrated=False, planes=planes))
        a = apply_calibration(np.asarray(err), cal)
        a = a[0] if a.ndim == 3 else a
        m = np.asarray(mask)
        m = m[0] if m.ndim == 3 else m
        maps.append((np.where(m, a, 0), m))
    panels = []
    for (a, m), tag in zip(maps, ("before (parent)", "after (adapted)")):
        im = PILImage.fromarray(_heat(a))
        if max(im.size) > 512:
            im.thumbnail((512, 512))
        frac = float((a[m] > 1).mean()) if m.any() else 0.0
        panels.append(_label(im, f"{tag}: {100 * frac:.1f} % of the mask above 1"))
    return _side_by_side(panels)


def _signal_figure(parent, after_loaded, held):
    """Five seconds of held-out ECG with ma noise at 0 dB: noisy, parent output, adapted output, clean."""
    from PIL import Image as PILImage
    from PIL import ImageDraw

    from engine.data import Signal
    from engine.inference.windows import infer_signal
    from engine.jobs import run_job

    fs = float(parent.meta["input"]["sfreq"])
    s = _signal_at(held[0], fs)
    n = int(5 * fs)
    m = int(2 * fs)
    if s.n_samples < n + 2 * m:
        return None
    a = s.n_samples // 2
    x = np.nan_to_num(s.read(a - m, a + n + m)[0].astype(np.float64))
    c = (x - _baseline(x, fs))[m:m + n]
    c -= c.mean()
    nz = _noise_seg(_noise_parts("val")["ma"], n, np.random.default_rng(0))
    noisy = c + math.sqrt(np.sum(c ** 2) / np.sum(nz ** 2)) * nz
    rows = [("noisy input (ma, 0 dB)", noisy)]
    for lm, tag in ((parent, "before (parent)"), (after_loaded, "after (adapted)")):
        sig = Signal.from_array(noisy[None].astype(np.float32), sfreq=fs, modality="ecg", path="figure")
        rows.append((tag, run_job(infer_signal(lm, sig))[0]))
    rows.append(("clean reference", c))
    W, H = 900, 110
    img = PILImage.new("RGB", (W, H * len(rows)), (255, 255, 255))
    d = ImageDraw.Draw(img)
    lim = float(np.percentile(np.abs(noisy), 99.5)) or 1.0
    for r, (tag, y) in enumerate(rows):
        ys = H * r + H / 2 - np.clip(y / lim, -1, 1) * (H / 2 - 8)
        xs = np.linspace(0, W - 1, len(y))
        d.line(list(zip(xs.tolist(), ys.tolist())), fill=(20, 60, 160), width=1)
        d.text((4, H * r + 2), tag, fill=(0, 0, 0))
    return img


def _nuclei_figure(parent, module, held, op_after):
    from PIL import Image as PILImage
    from PIL import ImageDraw

    from engine.tasks.nuclei.core import find_peaks, probability_map, to_tensor

    name, img, pts, _, _ = held[0]
    crop = img[:min(400, img.shape[0]), :min(400, img.shape[1])]
    det = parent.meta.get("detector", {})
    panels = []
    for net, th, md, tag in ((parent.module, det.get("threshold", 0.5), det.get("min_distance", 4), "before"),
                             (module, op_after["threshold"], op_after["min_distance"], "after")):
        xy, _ = find_peaks(probability_map(net, to_tensor(crop)).numpy(), threshold=th, min_distance=md)
        im = PILImage.fromarray(np.ascontiguousarray(crop))
        d = ImageDraw.Draw(im)
        for x, y in pts:
            if x < crop.shape[1] and y < crop.shape[0]:
                d.ellipse([x - 4, y - 4, x + 4, y + 4], outline=(0, 200, 0))
        for x, y in xy:
            d.line([x - 3, y, x + 3, y], fill=(230, 0, 0))
            d.line([x, y - 3, x, y + 3], fill=(230, 0, 0))
        panels.append(_label(im, f"{tag}: green truth, red detections"))
    return _side_by_side(panels)
