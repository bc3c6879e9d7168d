"""What the DICOM exports share: the source headers in plane order, de-identified copies, provenance.

The reader keeps only geometry and per-plane SOP Instance UIDs, so the source headers are
read again here with pydicom (``stop_before_pixels``) from the series' files; the input
files are opened read-only and never changed.
"""
from __future__ import annotations

import copy
import datetime as _dt
import os

import numpy as np

from engine.data import Image
from engine.errors import ReadError

__all__ = ["source_headers", "derived_kwargs", "check_ct_map", "PATIENT_IDENTIFIERS"]

#: Patient attributes blanked in every derived object unless identifiers were asked for.
PATIENT_IDENTIFIERS = ("PatientName", "PatientID", "PatientBirthDate", "OtherPatientIDs",
                       "OtherPatientNames", "PatientAddress", "PatientBirthTime")


def _series_files(image: Image) -> list[str]:
    for s in image.series:
        if s.uid == image.series_uid and s.files:
            return list(s.files)
    if os.path.isfile(image.path):
        return [image.path]
    raise ReadError(image.path, "the image does not list the DICOM files it was read from; "
                                "DICOM exports need a CT read from DICOM")


def source_headers(image: Image, *, keep_identifiers: bool = False) -> list:
    """The headers of the instances *image* was read from, in its plane order (one per instance).

    Parameters
    ----------
    image : Image
        A volume read from DICOM (it carries ``series_uid`` and ``metadata["sop_instance_uids"]``).
    keep_identifiers : bool
        False (default): the patient's name, ID and birth date are blanked in the copies, so the
        derived objects keep the study and frame of reference but not who the patient is.

    Raises
    ------
    engine.errors.ReadError
        The image was not read from DICOM, or its files changed since (UIDs no longer found).
    """
    import pydicom

    uids = image.metadata.get("sop_instance_uids")
    if not image.series_uid or not uids:
        raise ReadError(image.path, "not a DICOM series (no SOP Instance UIDs); DICOM exports need a CT "
                                    "read from DICOM")
    by_uid = {}
    for f in _series_files(image):
        try:
            ds = pydicom.dcmread(f, stop_before_pixels=True)
        except Exception as exc:  # noqa: BLE001 - a file that changed since it was read
            raise ReadError(f, f"cannot re-read the DICOM header ({exc})") from None
        by_uid[str(ds.SOPInstanceUID)] = ds
    missing = [u for u in dict.fromkeys(uids) if u not in by_uid]
    if missing:
        raise ReadError(image.path, f"{len(missing)} source instance(s) are gone since the series was read "
                                    f"(e.g. {missing[0]}); read it again")
    out = []
    for u in dict.fromkeys(uids):
        ds = copy.deepcopy(by_uid[u])
        if "SpecificCharacterSet" in ds and not ds.SpecificCharacterSet:
            del ds.SpecificCharacterSet  # empty means the default repertoire; highdicom rejects ''
        if not keep_identifiers:
            for kw in PATIENT_IDENTIFIERS:
                if kw in ds:
                    setattr(ds, kw, "" if kw in ("PatientName", "PatientID", "PatientBirthDate") else None)
                    if getattr(ds, kw) is None:
                        delattr(ds, kw)
        out.append(ds)
    return out


def check_ct_map(image: Image, array: np.ndarray, what: str) -> np.ndarray:
    """*array* as float32 ``(planes, rows, cols)`` matching *image*, or a ReadError naming the input."""
    if not image.series_uid or not image.metadata.get("sop_instance_uids"):
        raise ReadError(image.path, f"is {image.modality}, not a series read from DICOM; DICOM exports "
                                    "need a CT read from DICOM")
    a = np.asarray(array)
    if a.shape != tuple(image.shape[:3]):
        raise ReadError(image.path, f"the {what} has shape {a.shape} but the series is {tuple(image.shape)}")
    return a


def derived_kwargs(*, model: str, sha256: str, series_number: int) -> dict:
    """Series/instance identity and equipment (Latent, the model and its sha256) for highdicom."""
    import highdicom as hd

    from engine import __version__

    return dict(series_instance_uid=hd.UID(), series_number=series_number, sop_instance_uid=hd.UID(),
                instance_number=1, manufacturer="Latent", manufacturer_model_name=str(model)[:64],
                software_versions=f"latent {__version__}"[:64], device_serial_number=str(sha256)[:16])


def stamp(ds, *, description: str, source=None, laterality: bool = False) -> None:
    """Content date/time now and a series description on a derived object.

    With *laterality*, Laterality (General Series, Type 2C) is copied from *source* or sent empty
    (unknown): for a Parametric Map or Secondary Capture dciodvfy asks for it whatever the body part (for a SEG it
    rejects it when empty).
    """
    if laterality and "Laterality" not in ds:
        ds.Laterality = source.get("Laterality", "") if source is not None else ""
    now = _dt.datetime.now()
    ds.ContentDate = now.strftime("%Y%m%d")
    ds.ContentTime = now.strftime("%H%M%S")
    ds.SeriesDescription = description[:64]


def save(ds, dest) -> None:
    """Write a highdicom object to *dest* atomically."""
    from engine._shared.files import atomic_path

    with atomic_path(dest) as tmp:
        ds.save_as(tmp, enforce_file_format=True)
