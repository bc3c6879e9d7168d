"""Voxel-to-patient affines of a CT :class:`~engine.data.Image` (DICOM LPS and NIfTI RAS).

A voxel ``(plane k, row i, col j)`` lies at (see :mod:`engine.io.dicom.series`)::

    origin + k * spacing[0] * slice_direction + i * spacing[1] * col_cosine + j * spacing[2] * row_cosine

in DICOM patient coordinates (LPS: +x left, +y posterior, +z head). NIfTI world coordinates are
RAS (+x right, +y anterior), so x and y change sign.
"""
from __future__ import annotations

import numpy as np

from engine.data import Image
from engine.errors import ReadError

__all__ = ["lps_affine", "nifti_affine", "LPS_TO_RAS"]

#: Multiply a homogeneous LPS point by this to get RAS (and back: it is its own inverse).
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def lps_affine(image: Image) -> np.ndarray:
    """4x4 affine from ``(plane, row, col, 1)`` indices to DICOM LPS patient coordinates in mm.

    Raises
    ------
    engine.errors.ReadError
        The image carries no patient geometry (ImagePositionPatient / ImageOrientationPatient).
    """
    if image.origin is None or image.direction is None or image.spacing is None or len(image.spacing) != 3:
        raise ReadError(image.path, "the image has no patient geometry (ImagePositionPatient, "
                                    "ImageOrientationPatient, PixelSpacing); it cannot be placed in space")
    row_cos = np.asarray(image.direction[:3], float)
    col_cos = np.asarray(image.direction[3:], float)
    sdir = image.metadata.get("slice_direction")
    if sdir is None:  # no positions: the slice normal, oriented as the reader orders planes
        n = np.cross(row_cos, col_cos)
        sdir = -n if n[int(np.argmax(np.abs(n)))] > 0 else n
    a = np.eye(4)
    a[:3, 0] = np.asarray(sdir, float) * float(image.spacing[0])
    a[:3, 1] = col_cos * float(image.spacing[1])
    a[:3, 2] = row_cos * float(image.spacing[2])
    a[:3, 3] = np.asarray(image.origin, float)
    return a


def nifti_affine(image: Image) -> np.ndarray:
    """4x4 RAS affine for the array stored as ``array.transpose(2, 1, 0)``: voxel ``(col, row, plane)``."""
    lps = lps_affine(image)
    swap = np.zeros((4, 4))
    swap[0, 2] = swap[1, 1] = swap[2, 0] = swap[3, 3] = 1.0  # (col, row, plane) -> (plane, row, col)
    return LPS_TO_RAS @ lps @ swap
