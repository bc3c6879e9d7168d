"""The calibrated anomaly map of a CT series as a DICOM Parametric Map (highdicom)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from engine.data import Image
from engine.export.dicom_common import check_ct_map, derived_kwargs, save, source_headers, stamp
from engine.results import AnomalyMap

__all__ = ["write_parametric_map", "LUT_LABEL"]

#: Label of the Real World Value Mapping (SH, 16 characters at most).
LUT_LABEL = "LATENT_ANOMALY"


def write_parametric_map(image: Image, anomaly: AnomalyMap, dest: str | os.PathLike, *,
                         keep_identifiers: bool = False) -> Path:
    """Write *anomaly* (float32 on the model's calibrated scale) as a Parametric Map of *image*'s series.

    One frame per plane, each referencing its source instance (same Study, Frame of Reference and
    plane positions). The Real World Value Mapping is the identity (slope 1, intercept 0, no unit):
    0 is typical of normal data, 1 the model's calibrated high percentile of normal data.

    Returns
    -------
    Path
        *dest*.
    """
    import highdicom as hd
    from pydicom.sr.codedict import codes

    arr = check_ct_map(image, anomaly.array, "anomaly map").astype(np.float32)
    sources = source_headers(image, keep_identifiers=keep_identifiers)
    lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
    p = anomaly.scale.get("p99", anomaly.scale.get("high"))
    rwvm = hd.pm.RealWorldValueMapping(
        lut_label=LUT_LABEL,
        lut_explanation=(f"calibrated anomaly: 0 typical, 1 = normal high percentile"
                         + (f" ({p:g} raw)" if isinstance(p, (int, float)) else ""))[:64],
        unit=codes.UCUM.NoUnits, value_range=(lo, hi if hi > lo else lo + 1.0), slope=1.0, intercept=0.0)
    pm = hd.pm.ParametricMap(
        source_images=sources, pixel_array=arr, real_world_value_mappings=[rwvm],
        voi_lut_transformations=[hd.VOILUTTransformation(window_center=1.0, window_width=2.0)],
        contains_recognizable_visual_features=False,
        content_label="ANOMALY", content_description=f"Latent anomaly map, model sha256 {anomaly.sha256[:16]}",
        **derived_kwargs(model=anomaly.model, sha256=anomaly.sha256, series_number=901))
    stamp(pm, description=f"Latent anomaly map ({anomaly.model})", source=sources[0], laterality=True)
    save(pm, dest)
    return Path(dest)
