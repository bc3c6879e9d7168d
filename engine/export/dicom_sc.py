"""An overlay picture (grey CT window + coloured anomaly map) as a DICOM Secondary Capture (highdicom)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from engine.data import Image
from engine.export.dicom_common import check_ct_map, save, source_headers, stamp
from engine.export.geometry import lps_affine
from engine.results import AnomalyMap

__all__ = ["write_secondary_capture", "overlay_rgb", "hottest_plane", "DEFAULT_WINDOW", "COLORMAP"]

#: CT window (level, width) in HU when the series does not state one (soft tissue).
DEFAULT_WINDOW = (40.0, 400.0)
#: matplotlib colormap of the anomaly overlay; it spans 0..2 on the calibrated scale.
COLORMAP = "inferno"
#: Calibrated anomaly at which the overlay becomes fully opaque (1 = normal high percentile).
OPAQUE_AT = 2.0
MAX_ALPHA = 0.7


def hottest_plane(anomaly: AnomalyMap) -> int:
    """Index of the plane with the largest anomaly (inside the mask when there is one)."""
    a = np.nan_to_num(np.asarray(anomaly.array, np.float32), nan=0.0)
    if anomaly.mask is not None and np.shape(anomaly.mask) == a.shape:
        a = np.where(anomaly.mask, a, 0.0)
    return int(np.argmax(a.reshape(a.shape[0], -1).max(axis=1)))


def overlay_rgb(hu: np.ndarray, amap: np.ndarray, *, window: tuple[float, float] = DEFAULT_WINDOW) -> np.ndarray:
    """``(rows, cols, 3)`` uint8: *hu* windowed to grey, *amap* blended on top in :data:`COLORMAP`.

    Opacity grows with the anomaly: 0 at 0, :data:`MAX_ALPHA` at :data:`OPAQUE_AT` and above.
    """
    import matplotlib

    level, width = window
    grey = np.clip((np.asarray(hu, np.float32) - (level - width / 2)) / width, 0.0, 1.0)
    a = np.nan_to_num(np.asarray(amap, np.float32), nan=0.0)
    colour = matplotlib.colormaps[COLORMAP](np.clip(a / OPAQUE_AT, 0.0, 1.0))[..., :3]
    alpha = (MAX_ALPHA * np.clip(a / OPAQUE_AT, 0.0, 1.0))[..., None]
    rgb = grey[..., None] * (1.0 - alpha) + colour * alpha
    return np.round(255.0 * rgb).astype(np.uint8)


def _window(image: Image) -> tuple[float, float]:
    c, w = image.metadata.get("window_center"), image.metadata.get("window_width")
    try:
        return (float(c), float(w)) if c is not None and w is not None and float(w) > 0 else DEFAULT_WINDOW
    except (TypeError, ValueError):
        return DEFAULT_WINDOW


def write_secondary_capture(image: Image, anomaly: AnomalyMap, dest: str | os.PathLike, *,
                            plane: int | None = None, keep_identifiers: bool = False) -> Path:
    """Write the overlay of *plane* (default: the hottest) as an RGB Secondary Capture in the series' study.

    Returns
    -------
    Path
        *dest*.
    """
    import highdicom as hd

    from engine import __version__

    arr = check_ct_map(image, anomaly.array, "anomaly map")
    k = hottest_plane(anomaly) if plane is None else int(plane)
    if not 0 <= k < arr.shape[0]:
        from engine.errors import ReadError

        raise ReadError(image.path, f"plane {k} out of range (the series has {arr.shape[0]})")
    sources = source_headers(image, keep_identifiers=keep_identifiers)
    uids = list(dict.fromkeys(image.metadata["sop_instance_uids"]))
    ref = sources[uids.index(image.metadata["sop_instance_uids"][k])]
    rgb = overlay_rgb(image.array[k], arr[k], window=_window(image))
    orient = hd.spatial.get_closest_patient_orientation(lps_affine(image))
    sc = hd.sc.SCImage.from_ref_dataset(
        ref_dataset=ref, pixel_array=rgb, photometric_interpretation="RGB", bits_allocated=8,
        coordinate_system="PATIENT", series_instance_uid=hd.UID(), series_number=903,
        sop_instance_uid=hd.UID(), instance_number=1, manufacturer="Latent",
        pixel_spacing=(float(image.spacing[1]), float(image.spacing[2])),
        patient_orientation=(orient[2], orient[1]), transfer_syntax_uid="1.2.840.10008.1.2.1",
        manufacturer_model_name=str(anomaly.model)[:64], software_versions=f"latent {__version__}"[:64])
    sc.BurnedInAnnotation = "NO"
    sc.ImageComments = (f"Latent anomaly overlay of plane {k} (0 = head end); model {anomaly.model} sha256 "
                        f"{anomaly.sha256}; {COLORMAP} 0..{OPAQUE_AT:g} on the calibrated scale")
    stamp(sc, description=f"Latent anomaly overlay ({anomaly.model})", source=ref, laterality=True)
    save(sc, dest)
    return Path(dest)
