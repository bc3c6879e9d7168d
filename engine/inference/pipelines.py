"""The one place that picks an image modality's reconstruction pipeline (CT planes or H&E tiles)."""
from __future__ import annotations

from typing import Generator

import numpy as np

from engine.errors import ModelError
from engine.jobs import Progress

__all__ = ["image_pipeline"]


def image_pipeline(loaded, image, *, device=None, batch_size: int | None = None, overlap: int | None = None,
                   calibrated: bool = True, planes=None, optimize: bool = True,
                   ) -> Generator[Progress, None, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Reconstruct a CT volume or an H&E image: yields Progress, returns ``(recon, anomaly, mask)``.

    ``recon`` is in model layout (CT: HU planes; H&E: ``(3, H, W)`` model units), ``anomaly`` on the
    calibrated scale (raw post-processed error with ``calibrated=False``), ``mask`` the foreground
    (body or tissue). ``planes`` selects CT planes (None: all). With *optimize* (the default) the
    network runs with its BatchNorm folded and in channels_last (same maps to float rounding).
    """
    mod = image.modality
    if optimize:
        from engine.inference.optimize import optimized

        loaded = optimized(loaded)
    if mod == "ct":
        from engine.inference.ct import reconstruct_ct

        return (yield from reconstruct_ct(loaded, image, device=device, batch_size=batch_size or 4,
                                          calibrated=calibrated, planes=planes, overlap=overlap))
    if mod == "histology":
        from engine.inference.histology import reconstruct_histology

        return (yield from reconstruct_histology(loaded, image, device=device, batch_size=batch_size or 8,
                                                 calibrated=calibrated, overlap=overlap))
    raise ModelError(f"no image pipeline for modality {mod!r}")
