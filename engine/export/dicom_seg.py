"""The thresholded CT anomaly map (> 1 on the calibrated scale) as a DICOM Segmentation (highdicom)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from engine.data import Image
from engine.export.dicom_common import check_ct_map, derived_kwargs, save, source_headers, stamp
from engine.results import AnomalyMap

__all__ = ["write_segmentation", "THRESHOLD", "SEGMENT_LABEL"]

#: Voxels above this calibrated anomaly (the normal data's high percentile) form the segment.
THRESHOLD = 1.0
SEGMENT_LABEL = "Anomaly above normal range"


def write_segmentation(image: Image, anomaly: AnomalyMap, dest: str | os.PathLike, *,
                       threshold: float = THRESHOLD, keep_identifiers: bool = False) -> Path:
    """Write ``anomaly.array > threshold`` as a one-segment BINARY Segmentation of *image*'s series.

    The segment's algorithm is AUTOMATIC, named after the model, with the first 16 hex digits of
    its sha256 as the version. Every plane is a frame (empty ones too), each referencing its
    source instance, so the SEG lines up with the series in any viewer.

    Returns
    -------
    Path
        *dest*.
    """
    import highdicom as hd
    from pydicom.sr.codedict import codes

    from engine import __version__

    arr = check_ct_map(image, anomaly.array, "anomaly map")
    mask = np.nan_to_num(np.asarray(arr, np.float32), nan=0.0) > float(threshold)
    if anomaly.mask is not None and np.shape(anomaly.mask) == mask.shape:
        mask &= np.asarray(anomaly.mask, bool)  # only where the map was computed (inside the body)
    sources = source_headers(image, keep_identifiers=keep_identifiers)
    algo = hd.AlgorithmIdentificationSequence(
        name=str(anomaly.model)[:64], version=str(anomaly.sha256)[:16], family=codes.DCM.ArtificialIntelligence,
        source=f"latent {__version__}"[:64])
    seg_desc = hd.seg.SegmentDescription(
        segment_number=1, segment_label=SEGMENT_LABEL[:64],
        segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
        segmented_property_type=codes.SCT.Abnormal, algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=algo)
    seg = hd.seg.Segmentation(
        source_images=sources, pixel_array=mask.astype(np.uint8), segmentation_type="BINARY",
        segment_descriptions=[seg_desc], omit_empty_frames=False, content_label="ANOMALY",
        content_description=f"calibrated anomaly > {threshold:g}"[:64],
        **derived_kwargs(model=anomaly.model, sha256=anomaly.sha256, series_number=902))
    stamp(seg, description=f"Latent anomaly > {threshold:g} ({anomaly.model})", source=sources[0])
    save(seg, dest)
    return Path(dest)
