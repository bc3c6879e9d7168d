"""DICOM reader: a file, a series folder, a DICOMDIR, multi-frame / Enhanced CT.

:func:`read_dicom` returns an :class:`~engine.data.Image` with ``(plane, row, col)``
float32 values. For CT they are **Hounsfield units**, ``stored * RescaleSlope +
RescaleIntercept`` slice by slice (frame by frame for Enhanced CT), never clipped or
otherwise altered: the padding outside the reconstruction circle (for example -2048 or
-3024 HU) is kept as it is and reported in ``metadata["outside_fov_hu"]`` (the header's
``PixelPaddingValue``, when present, is in ``metadata["pixel_padding_value"]``). Other
image modalities (MR, PT, CR, ...) are read the same way, with ``modality`` the lowercase
DICOM Modality and ``units`` from RescaleType (PT: Units) or ``""``.

The plane order is defined in :mod:`engine.io.dicom.series`: head first for axial CT.
``spacing`` is ``(slice gap, PixelSpacing row, PixelSpacing col)`` in mm, ``origin`` the
ImagePositionPatient of plane 0, ``direction`` the six ImageOrientationPatient cosines.
``metadata["sop_instance_uids"]`` and ``metadata["plane_positions"]`` give, per plane,
the SOP Instance UID and the patient position (x, y, z) in mm, to match annotations.
"""
from __future__ import annotations

import logging
import os
from collections import Counter

import numpy as np

from engine.data import Image, SeriesInfo
from engine.errors import CorruptFileError, LatentError, ReadError, UnsupportedFormatError
from engine.io.dicom.scan import Instance, Scan, _one_line, quiet_pydicom, scan_path, sop_name
from engine.io.dicom.series import Plane, decode_instance, fg_item, order_planes, planes_of

__all__ = ["read_dicom", "list_series", "read_series_thumbnail"]

logger = logging.getLogger("engine")

#: ImageType values of scout images that may share a series with the slices.
_LOCALIZER = "LOCALIZER"
#: Largest difference between direction cosines of planes stacked into one volume.
_SAME_ORIENTATION = 1e-3


def _group(scan: Scan) -> dict[str, list[Instance]]:
    groups: dict[str, list[Instance]] = {}
    for inst in scan.instances:
        groups.setdefault(inst.series_uid, []).append(inst)
    return groups


def _image_instances(insts: list[Instance]) -> list[Instance]:
    imgs = [i for i in insts if i.is_image]
    # Scout images sometimes share the series UID with the axial slices: drop them when
    # they differ in size or orientation from the rest.
    scouts = [i for i in imgs if _LOCALIZER in i.image_type]
    if scouts and len(scouts) < len(imgs):
        imgs = [i for i in imgs if i not in scouts]
    return imgs


def _planes(uid: str, insts: list[Instance], where: str) -> list[Plane]:
    imgs = _image_instances(insts)
    sizes = Counter((i.rows, i.cols) for i in imgs)
    if len(sizes) > 1:
        detail = ", ".join(f"{r}x{c} in {n} file(s)" for (r, c), n in sizes.most_common())
        raise ReadError(where, f"series {uid} has slices of different sizes ({detail}); "
                               "it cannot be stacked into one volume")
    planes = [p for i in imgs for p in planes_of(i)]
    oris = np.array([p.orientation for p in planes if p.orientation is not None]).reshape(-1, 6)
    if len(oris) and float(np.max(np.abs(oris - oris[0]))) > _SAME_ORIENTATION:
        raise ReadError(where, f"series {uid} mixes slice orientations (ImageOrientationPatient "
                               "differs between files); it cannot be stacked into one volume")
    return planes


def _series_info(uid: str, insts: list[Instance], where: str) -> SeriesInfo:
    first = next((i for i in insts if i.is_image), insts[0])
    files = sorted(i.path for i in insts)
    if first.is_image:
        try:
            ordered, _ = order_planes(_planes(uid, insts, where))
            files = list(dict.fromkeys(p.inst.path for p in ordered))
            files += [f for f in sorted(i.path for i in insts) if f not in set(files)]
        except ReadError:
            pass  # listed as found; the error comes when the series is opened
    desc = first.description or next((i.description for i in insts if i.description), "")
    return SeriesInfo(uid=uid, description=desc, modality=first.modality, n_instances=len(insts),
                      rows=first.rows, cols=first.cols, files=tuple(files))


def list_series(path: str | os.PathLike) -> list[SeriesInfo]:
    """Every DICOM series in a file, folder (recursively) or DICOMDIR, pixels not read.

    Image series list their files in plane order (head first for axial CT); objects without
    image pixels (SEG, RTSTRUCT, SR, ...) are listed too, with their DICOM Modality.
    """
    with quiet_pydicom():
        scan = scan_path(path)
        return [_series_info(uid, insts, scan.path) for uid, insts in _group(scan).items()]


def _n_planes(insts: list[Instance]) -> int:
    return sum(i.n_frames for i in _image_instances(insts))


def _choose(scan: Scan, groups: dict[str, list[Instance]], series_uid: str | None) -> str:
    where = scan.path
    if series_uid is not None:
        if series_uid not in groups:
            valid = ", ".join(f"{u} ({g[0].modality}, {len(g)} files)" for u, g in groups.items())
            raise ReadError(where, f"no series with SeriesInstanceUID {series_uid}; valid: {valid}")
        insts = groups[series_uid]
        if not any(i.is_image for i in insts):
            raise UnsupportedFormatError(insts[0].path, insts[0].reason_not_image)
        return series_uid
    images = {u: g for u, g in groups.items() if any(i.is_image for i in g)}
    if images:
        # The CT image series with the most planes; any image series when there is no CT.
        def rank(u: str) -> tuple[bool, int]:
            return any(i.modality == "CT" for i in _image_instances(images[u])), _n_planes(images[u])

        return max(images, key=rank)
    if len(scan.instances) == 1 and scan.instances[0].path == where:  # one file opened directly
        inst = scan.instances[0]
        raise UnsupportedFormatError(inst.path, inst.reason_not_image)
    found = Counter(f"{g[0].modality} ({sop_name(g[0].sop_class)})" for g in groups.values())
    raise ReadError(where, "no DICOM image series here; found only "
                           + ", ".join(f"{n} {k} series" for k, n in found.items()))


def _find(ds, keyword: str):
    """A header value at the top level or one level inside a shared functional group.

    None when absent or unreadable: a damaged descriptive field never stops a read.
    """
    try:
        return _find_value(ds, keyword)
    except Exception:  # noqa: BLE001
        logger.debug("unreadable %s", keyword, exc_info=True)
        return None


def _find_value(ds, keyword: str):
    if keyword in ds and ds.get(keyword) not in (None, ""):
        return ds.get(keyword)
    shared = ds.get("SharedFunctionalGroupsSequence")
    for item in (shared[0],) if shared else ():
        for elem in item:
            if elem.VR == "SQ" and len(elem.value):
                sub = elem.value[0]
                if keyword in sub and sub.get(keyword) not in (None, ""):
                    return sub.get(keyword)
    return None


def _plain(value):
    if value is None:
        return None
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        value = list(value)[0] if len(value) else None
    if value is None:
        return None
    try:
        f = float(value)
        return int(f) if f.is_integer() and not isinstance(value, str) else f
    except (TypeError, ValueError):
        return str(value).strip()


def _metadata(planes: list[Plane], geo: dict, vol: np.ndarray) -> dict:
    ds = planes[0].inst.ds
    meta: dict = {}
    for key, kw in (("Manufacturer", "Manufacturer"), ("ManufacturerModelName", "ManufacturerModelName"),
                    ("KVP", "KVP"), ("ConvolutionKernel", "ConvolutionKernel"),
                    ("SliceThickness", "SliceThickness"), ("SeriesDescription", "SeriesDescription"),
                    ("StudyDate", "StudyDate"), ("BodyPartExamined", "BodyPartExamined"),
                    ("PhotometricInterpretation", "PhotometricInterpretation")):
        v = _find(ds, kw)
        v = str(v).strip() if key == "StudyDate" and v is not None else _plain(v)
        if v not in (None, ""):
            meta[key] = v
    if "SliceThickness" not in meta and planes[0].thickness:
        meta["SliceThickness"] = planes[0].thickness
    file_meta = getattr(ds, "file_meta", None)
    ts = file_meta.get("TransferSyntaxUID") if file_meta is not None else None
    meta["TransferSyntax"] = ts.name if ts is not None else "Implicit VR Little Endian (no file meta)"
    meta["SOPClass"] = sop_name(planes[0].inst.sop_class)
    try:
        voi = fg_item(ds, planes[0].frame, "FrameVOILUTSequence") or ds
        if "WindowCenter" in voi and "WindowWidth" in voi:
            meta["window_center"], meta["window_width"] = _plain(voi.WindowCenter), _plain(voi.WindowWidth)
        pad = ds.get("PixelPaddingValue")
        if pad is not None:
            meta["pixel_padding_value"] = int(pad)
    except Exception:  # noqa: BLE001 - damaged optional values
        logger.debug("unreadable window/padding values", exc_info=True)
    # Outside the reconstruction circle: the value all corners share, when far below air.
    corners = vol[:, [0, 0, -1, -1], [0, -1, 0, -1]]
    if corners.size and float(corners.min()) == float(corners.max()) and float(corners.min()) < -1000:
        meta["outside_fov_hu" if planes[0].inst.modality == "CT" else "outside_fov_value"] = float(corners.min())
    for key in ("plane_order", "slice_direction", "slice_spacing_from", "irregular_slice_spacing",
                "duplicate_positions"):
        if key in geo and geo[key] is not None:
            meta[key] = geo[key]
    meta["n_planes"] = len(planes)
    meta["sop_instance_uids"] = tuple(p.inst.sop_uid for p in planes)
    if all(p.position is not None for p in planes):
        meta["plane_positions"] = tuple(tuple(round(x, 4) for x in p.position) for p in planes)
    return meta


def _units(inst: Instance) -> str:
    if inst.modality == "CT":
        return "HU"
    try:
        return _units_of(inst, inst.ds)
    except Exception:  # noqa: BLE001 - a damaged optional value
        return ""


def _units_of(inst: Instance, ds) -> str:
    if inst.modality == "PT" and ds.get("Units"):
        return str(ds.Units).strip()
    if inst.modality == "RTDOSE" and ds.get("DoseUnits"):
        return str(ds.DoseUnits).strip()
    item = fg_item(ds, 0, "PixelValueTransformationSequence")
    rt = (item.get("RescaleType") if item is not None else None) or ds.get("RescaleType")
    return str(rt).strip() if rt else ""


def _volume(where: str, uid: str, insts: list[Instance],
            ) -> tuple[np.ndarray, list[Plane], dict, list[tuple[str, str]]]:
    """The HU volume of the series' readable instances, in plane order, and the instances left out.

    An instance whose pixel data is truncated or damaged is left out (its file and the reason
    are returned, as Weasis and Slicer warn and load the rest); when none is readable the first
    error is raised. A missing decoder is not "damage": it raises for the whole series.
    """
    planes, geo = order_planes(_planes(uid, insts, where))
    frames_of: dict[str, np.ndarray] = {}
    bad: list[tuple[str, str]] = []
    first_error: CorruptFileError | None = None
    for p in planes:
        path = p.inst.path
        if path in frames_of or any(path == b for b, _ in bad):
            continue
        try:
            frames_of[path] = decode_instance(p.inst)
        except CorruptFileError as exc:
            bad.append((path, exc.reason))
            first_error = first_error or exc
    if not frames_of:
        raise first_error
    for path, why in bad:
        logger.warning("skipping %s: %s", path, why)
    if bad:
        planes, geo = order_planes([p for p in planes if p.inst.path in frames_of])
    first = planes[0].inst
    vol = np.empty((len(planes), first.rows, first.cols), np.float32)
    for k, p in enumerate(planes):
        vol[k] = frames_of[p.inst.path][p.frame] * np.float64(p.slope) + np.float64(p.intercept)
        if not np.isfinite(vol[k]).all():
            raise CorruptFileError(p.inst.path, f"{os.path.basename(p.inst.path)}: the rescaled "
                                                "values (RescaleSlope/Intercept) are not finite")
    return vol, planes, geo, bad


def read_dicom(path: str | os.PathLike, *, series_uid: str | None = None, **_) -> Image:
    """Read a DICOM file, series folder (recursively) or DICOMDIR as an :class:`Image`.

    Parameters
    ----------
    path : str or os.PathLike
        One DICOM file, a folder holding one or more series (other files are skipped),
        or a DICOMDIR.
    series_uid : str, optional
        Which series to open when there are several. By default the CT image series with
        the most planes (any image series when there is no CT).
    **_
        Options meant for other readers are ignored.

    Returns
    -------
    Image
        ``array`` float32 ``(plane, row, col)``; HU for CT (see the module docstring).

    Raises
    ------
    engine.errors.ReadError
        With the file name and a one-line reason: nothing DICOM found, an unknown
        ``series_uid`` (the valid ones are listed), damaged or truncated files,
        inconsistent slices; ``UnsupportedFormatError`` for objects without image
        pixels (SEG, RTSTRUCT, SR) and compressed pixels no installed plugin decodes.
    """
    try:
        with quiet_pydicom():
            return _read_dicom(path, series_uid)
    except LatentError:
        raise
    except MemoryError:
        raise ReadError(path, "not enough memory to read this series") from None
    except Exception as exc:  # noqa: BLE001 - a damaged value no check above foresaw
        logger.debug("DICOM read failed on %s", path, exc_info=True)
        raise CorruptFileError(path, f"cannot be read as DICOM ({_one_line(exc)})") from None


def _read_dicom(path: str | os.PathLike, series_uid: str | None) -> Image:
    scan = scan_path(path)
    where = scan.path
    if not scan.instances:
        reason = f"no DICOM files found (looked at {scan.n_files} file(s))"
        if scan.skipped:
            _, why = scan.skipped[0]
            raise CorruptFileError(where, f"no readable DICOM files; {len(scan.skipped)} damaged, "
                                          f"e.g. {why}")
        raise ReadError(where, reason)
    groups = _group(scan)
    uid = _choose(scan, groups, series_uid)
    infos = tuple(_series_info(u, g, where) for u, g in groups.items())
    vol, planes, geo, bad = _volume(where, uid, groups[uid])
    first = planes[0]
    ps = first.pixel_spacing or (1.0, 1.0)
    meta = _metadata(planes, geo, vol)
    if first.pixel_spacing is None:
        meta["pixel_spacing_from"] = "unknown (1 mm assumed)"
    skipped = list(scan.skipped) + bad
    if skipped:  # the files left out and why, for the user (the GUI lists them, `info` prints them)
        meta["skipped_files"] = len(skipped)
        meta["skipped"] = tuple({"file": os.path.basename(f), "reason": why} for f, why in skipped)
    logger.info("read DICOM series %s: %s planes from %s", uid, vol.shape[0], where)
    return Image(
        modality=first.inst.modality.lower(),
        shape=tuple(int(s) for s in vol.shape),
        spacing=(float(geo["slice_spacing"]), float(ps[0]), float(ps[1])),
        units=_units(first.inst),
        path=os.fspath(path),
        dtype="float32",
        array=vol,
        origin=None if first.position is None else tuple(float(x) for x in first.position),
        direction=None if first.orientation is None else tuple(float(x) for x in first.orientation),
        levels=((int(vol.shape[1]), int(vol.shape[2])),),
        downsamples=(1.0,),
        series=infos,
        series_uid=uid,
        metadata=meta,
    )


def read_series_thumbnail(series: SeriesInfo, size: int = 128) -> np.ndarray:
    """The middle plane of *series*, block-averaged so its longer side is at most *size*.

    Returns float32 in the series' units (HU for CT), not windowed.
    """
    if not series.files:
        raise ReadError(None, f"series {series.uid} lists no files")
    with quiet_pydicom():
        return _thumbnail(series, size)


def _thumbnail(series: SeriesInfo, size: int) -> np.ndarray:
    from engine.io.dicom.scan import read_header

    path = series.files[len(series.files) // 2]
    inst = read_header(path, strict=True)
    if not inst.is_image:
        raise UnsupportedFormatError(path, inst.reason_not_image)
    planes = planes_of(inst)
    p = planes[len(planes) // 2]
    plane = decode_instance(inst)[p.frame] * np.float64(p.slope) + np.float64(p.intercept)
    f = max(1, int(np.ceil(max(plane.shape) / max(1, int(size)))))
    r, c = (plane.shape[0] // f) * f, (plane.shape[1] // f) * f
    if f > 1:
        plane = plane[:r, :c].reshape(r // f, f, c // f, f).mean(axis=(1, 3))
    return plane.astype(np.float32)
