"""De-identified copies of DICOM series, EDF/BDF recordings and WFDB records; inputs are never changed.

DICOM follows the PS3.15 Annex E Basic Application Level Confidentiality Profile with
`dicognito <https://github.com/blairconrad/dicognito>`_ doing the work: names, IDs, addresses
and equipment become consistent dummies and every UID is remapped with one mapping for the
whole run, so a series stays one series (and its SEG/PM still reference it). On top of it:

- private tags are removed (pydicom);
- ``basic``: dates and times are emptied (Annex E "Z"/"X"); ``retain-dates`` keeps them
  (Retain Longitudinal Temporal Information, Full Dates Option); ``retain-uids`` keeps the
  UIDs (Retain UIDs Option) and empties dates;
- InstitutionName / InstitutionAddress / InstitutionalDepartmentName are removed;
- PatientIdentityRemoved = YES and DeidentificationMethod(CodeSequence) say what was done;
- an image with BurnedInAnnotation = YES is refused (text in the pixels cannot be removed here)
  unless ``allow_burned_in``, which copies it with a warning.

EDF/BDF: edfio's ``anonymize`` (patient and recording fields "X", start date 01.01.85).
WFDB: the header comments (age, sex, diagnoses, medication) and, unless dates are retained,
the base date/time are dropped; samples and annotation files are copied unchanged.
"""
from __future__ import annotations

import logging
import os
import secrets
import shutil
from pathlib import Path

from engine._shared.files import atomic_path
from engine.errors import LatentError, ReadError, UnsupportedFormatError

__all__ = ["deidentify", "PROFILES"]

logger = logging.getLogger("engine")

#: Profile name -> the PS3.15 Table CID 7050 codes (DCM) that describe it.
PROFILES = {
    "basic": (("113100", "Basic Application Confidentiality Profile"),),
    "retain-dates": (("113100", "Basic Application Confidentiality Profile"),
                     ("113106", "Retain Longitudinal Temporal Information Full Dates Option")),
    "retain-uids": (("113100", "Basic Application Confidentiality Profile"),
                    ("113110", "Retain UIDs Option")),
}
_DATE_VRS = frozenset({"DA", "DT", "TM"})
_INSTITUTION = ("InstitutionName", "InstitutionAddress", "InstitutionalDepartmentName")
_EDF = (".edf", ".bdf")


def _check_profile(profile: str) -> None:
    if profile not in PROFILES:
        raise LatentError(f"unknown de-identification profile {profile!r}; valid: {', '.join(PROFILES)}")


def deidentify(path: str | os.PathLike, out_dir: str | os.PathLike, *, profile: str = "basic",
               allow_burned_in: bool = False, seed: str | None = None) -> list[Path]:
    """Write de-identified copies of the DICOM files, EDF/BDF files or WFDB records under *path*.

    Parameters
    ----------
    path : path
        A DICOM file or folder (searched recursively), an ``.edf``/``.bdf`` file, or a WFDB
        record (``.hea`` file or record path without extension).
    out_dir : path
        Where the copies go (created); it must not be inside *path*.
    profile : {"basic", "retain-dates", "retain-uids"}
    allow_burned_in : bool
        Copy DICOM images marked BurnedInAnnotation = YES (with a warning) instead of refusing.
    seed : str, optional
        Seeds the dummy values and UID mapping (default: random, so two runs cannot be linked).

    Returns
    -------
    list of Path
        The files written.

    Raises
    ------
    engine.errors.ReadError
        Nothing de-identifiable found, a damaged file, or burned-in annotation (the file is named).
    """
    _check_profile(profile)
    src = Path(path)
    out = Path(out_dir)
    if not src.exists() and not Path(str(src) + ".hea").exists():
        raise ReadError(src, "no such file or folder")
    if src.exists() and out.resolve().is_relative_to(src.resolve() if src.is_dir() else src.resolve().parent) \
            and src.is_dir():
        raise ReadError(out, f"the output folder must not be inside the input folder {src}")
    if src.suffix.lower() in _EDF:
        return [_deid_edf(src, out, profile)]
    if src.suffix.lower() == ".hea" or (not src.exists() and Path(str(src) + ".hea").exists()):
        return _deid_wfdb(src.with_suffix("") if src.suffix.lower() == ".hea" else src, out, profile)
    return _deid_dicom(src, out, profile, allow_burned_in=allow_burned_in, seed=seed)


# --------------------------------------------------------------------------------------- DICOM
def _dicom_files(src: Path):
    import pydicom

    files = [src] if src.is_file() else sorted(p for p in src.rglob("*") if p.is_file())
    found, skipped = [], 0
    for f in files:
        try:
            ds = pydicom.dcmread(f, stop_before_pixels=True)
        except Exception:  # noqa: BLE001 - not DICOM (CSV, XML, ...): not copied
            skipped += 1
            continue
        if "SOPInstanceUID" not in ds:
            skipped += 1
            continue
        found.append((f, ds))
    if skipped:
        logger.info("deidentify: %d non-DICOM file(s) under %s not copied", skipped, src)
    if not found:
        raise ReadError(src, "no DICOM files found to de-identify")
    return found


def _anonymizer(profile: str, seed: str):
    from dicognito.anonymizer import Anonymizer
    from dicognito.element_anonymizer import ElementAnonymizer
    from dicognito.unwantedelements import UnwantedElementsStripper

    class _ByVR(ElementAnonymizer):
        """Keep (``blank=False``) or empty (``blank=True``) every element of the given VRs."""

        def __init__(self, vrs, *, blank: bool):
            self.vrs, self.blank = frozenset(vrs), blank

        def __call__(self, dataset, data_element) -> bool:
            if data_element.VR not in self.vrs:
                return False
            if self.blank:
                data_element.value = ""
            return True

        def describe_actions(self):
            yield f"{'Empty' if self.blank else 'Keep'} every {'/'.join(sorted(self.vrs))} value"

    anon = Anonymizer(seed=seed)
    anon.add_element_handler(_ByVR(_DATE_VRS, blank=profile != "retain-dates"))
    if profile == "retain-uids":
        anon.add_element_handler(_ByVR({"UI"}, blank=False))
    anon.add_element_handler(UnwantedElementsStripper(*_INSTITUTION))
    return anon


def _deid_dicom(src: Path, out: Path, profile: str, *, allow_burned_in: bool, seed: str | None) -> list[Path]:
    import pydicom
    from pydicom.dataset import Dataset

    found = _dicom_files(src)
    burned = [f for f, ds in found if str(ds.get("BurnedInAnnotation", "")).upper() == "YES"]
    if burned and not allow_burned_in:
        raise ReadError(burned[0], f"BurnedInAnnotation is YES ({len(burned)} file(s)): identifying text may be "
                                   "in the pixels, which de-identification cannot remove; not copied")
    for f in burned:
        logger.warning("%s: BurnedInAnnotation is YES; the pixels may still show identifying text", f)
    anon = _anonymizer(profile, seed or secrets.token_hex(16))
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for n, (f, _) in enumerate(found, 1):
        try:
            ds = pydicom.dcmread(f)
        except Exception as exc:  # noqa: BLE001
            raise ReadError(f, f"cannot be read as DICOM ({exc})") from None
        anon.anonymize(ds)
        ds.remove_private_tags()
        ds.PatientIdentityRemoved = "YES"
        ds.LongitudinalTemporalInformationModified = "UNMODIFIED" if profile == "retain-dates" else "REMOVED"
        codes = []
        for value, meaning in PROFILES[profile]:
            c = Dataset()
            c.CodeValue, c.CodingSchemeDesignator, c.CodeMeaning = value, "DCM", meaning
            codes.append(c)
        ds.DeidentificationMethodCodeSequence = codes
        ds.DeidentificationMethod = f"Latent deidentify --profile {profile} (dicognito, PS3.15 Annex E)"[:64]
        dest = out / f"IM{n:05d}.dcm"
        with atomic_path(dest) as tmp:
            ds.save_as(tmp, enforce_file_format=True)
        written.append(dest)
    return written


# ----------------------------------------------------------------------------------- EDF / BDF
def _deid_edf(src: Path, out: Path, profile: str) -> Path:
    import edfio

    try:
        doc = edfio.read_edf(src) if src.suffix.lower() == ".edf" else edfio.read_bdf(src)
    except Exception as exc:  # noqa: BLE001
        raise ReadError(src, f"cannot be read as EDF/BDF ({exc})") from None
    start = doc.startdate
    doc.anonymize(keep_starttime=profile == "retain-dates")
    if profile == "retain-dates":
        doc.startdate = start
    out.mkdir(parents=True, exist_ok=True)
    dest = out / src.name
    with atomic_path(dest) as tmp:
        doc.write(tmp)
    return dest


# ---------------------------------------------------------------------------------------- WFDB
def _deid_wfdb(record: Path, out: Path, profile: str) -> list[Path]:
    import wfdb

    try:
        hdr = wfdb.rdheader(str(record))
    except Exception as exc:  # noqa: BLE001
        raise ReadError(str(record) + ".hea", f"cannot be read as a WFDB header ({exc})") from None
    if getattr(hdr, "file_name", None) is None:
        raise UnsupportedFormatError(str(record) + ".hea", "multi-segment WFDB records are not supported")
    hdr.comments = []
    if profile != "retain-dates":
        hdr.base_date = hdr.base_time = None
        hdr.base_datetime = None
    out.mkdir(parents=True, exist_ok=True)
    written = []
    others = [p for p in record.parent.glob(record.name + ".*") if p.suffix.lower() != ".hea" and p.is_file()]
    for p in others:  # samples and annotations: unchanged bytes
        dest = out / p.name
        with atomic_path(dest) as tmp:
            shutil.copyfile(p, tmp)
        written.append(dest)
    dest = out / f"{record.name}.hea"
    tmpdir = out / f".{record.name}.hea.part"
    tmpdir.mkdir(exist_ok=True)
    try:
        hdr.wrheader(write_dir=str(tmpdir))
        os.replace(tmpdir / dest.name, dest)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    written.append(dest)
    return written
