"""CT volumes (reconstructions, anomaly maps) as NIfTI-1 with nibabel, placed in RAS space."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from engine._shared.files import atomic_path
from engine.data import Image
from engine.export.geometry import nifti_affine

__all__ = ["write_nifti"]


def write_nifti(image: Image, array: np.ndarray, dest: str | os.PathLike, *, provenance: dict | None = None,
                description: str = "") -> Path:
    """Write a ``(planes, rows, cols)`` float32 *array* on *image*'s grid as NIfTI (``.nii``/``.nii.gz``).

    The affine comes from the DICOM geometry (:func:`engine.export.geometry.nifti_affine`), set as
    both sform and qform (scanner). *provenance* goes into a JSON comment extension and a short
    form into ``descrip``.

    Returns
    -------
    Path
        *dest*.
    """
    import nibabel as nib

    from engine.errors import ReadError

    a = np.asarray(array, np.float32)
    if a.shape != tuple(image.shape[:3]):
        raise ReadError(image.path, f"array of shape {a.shape} does not match the volume {tuple(image.shape)}")
    img = nib.Nifti1Image(np.ascontiguousarray(a.transpose(2, 1, 0)), nifti_affine(image))
    img.header.set_xyzt_units("mm")
    img.header.set_sform(img.affine, code="scanner")
    img.header.set_qform(img.affine, code="scanner")
    if provenance:
        m = provenance.get("model", {})
        short = f"{description} latent {provenance.get('software_version', '')} {m.get('name', '')} " \
                f"{str(m.get('sha256', ''))[:16]}"
        img.header["descrip"] = " ".join(short.split())[:79].encode("ascii", "replace")
        img.header.extensions.append(nib.nifti1.Nifti1Extension("comment", json.dumps(provenance).encode()))
    dest = Path(dest)
    suffix = ".nii.gz" if dest.name.endswith(".nii.gz") else dest.suffix
    with atomic_path(dest, suffix=suffix) as tmp:
        nib.save(img, tmp)
    return dest
