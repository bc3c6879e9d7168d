"""Shared by the DICOM reader tests: the shared CT sets, the check against pydicom, copies."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest


REPO = Path(__file__).resolve().parents[2]
LIDC = "ct/lidc_idri/LIDC-IDRI-0001"
LUNG_DX = "ct/lung_pet_ct_dx/Lung_Dx-A0002"
LIVER = "ct/dcmqi_liver_ct3"


def hu_of(ds: pydicom.Dataset) -> np.ndarray:
    return (ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)).astype(np.float32)


def check_against_pydicom(img, files) -> None:
    """The shared check: the reader's volume equals pydicom's, slice by slice, head first."""
    dss = sorted((pydicom.dcmread(f) for f in files), key=lambda d: float(d.ImagePositionPatient[2]),
                 reverse=True)
    ref = np.stack([hu_of(d) for d in dss])
    assert img.modality == "ct" and img.units == "HU" and img.dtype == "float32"
    assert img.array.dtype == np.float32 and img.shape == ref.shape == img.array.shape
    np.testing.assert_array_equal(img.array, ref)
    assert img.spacing[1:] == pytest.approx([float(v) for v in dss[0].PixelSpacing])
    assert img.origin == pytest.approx([float(v) for v in dss[0].ImagePositionPatient])
    assert img.direction == pytest.approx([float(v) for v in dss[0].ImageOrientationPatient])
    assert img.levels == (ref.shape[1:],)
    assert img.metadata["sop_instance_uids"] == tuple(d.SOPInstanceUID for d in dss)
    z = [float(d.ImagePositionPatient[2]) for d in dss]
    if len(z) > 1:  # the median gap (the gap itself when the slices are evenly spaced)
        assert img.spacing[0] == pytest.approx(float(np.median(-np.diff(z))), abs=1e-4)
    for forbidden in ("PatientName", "PatientID", "PatientBirthDate"):
        assert forbidden not in img.metadata


def copy_slices(data_dir, names, dest: Path, src=LIDC) -> list[Path]:
    dest.mkdir(parents=True, exist_ok=True)
    return [Path(shutil.copy(data_dir / src / n, dest / n)) for n in names]


def corrupt_copy(kind: str, src: Path, out: Path) -> Path:
    raw = src.read_bytes()
    if kind == "truncated":
        out.write_bytes(raw[: len(raw) // 2])
    elif kind == "truncated-header":
        out.write_bytes(raw[:600])
    elif kind == "flipped-header":
        b = bytearray(raw)
        for i in range(140, 400):
            b[i] ^= 0xFF
        out.write_bytes(bytes(b))
    elif kind == "empty":
        out.write_bytes(b"")
    elif kind == "png":
        out.write_bytes(b"\x89PNG\r\n\x1a\n" + raw[:2000])
    return out
