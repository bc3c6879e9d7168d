"""Geometry and pixels of one DICOM series: planes, their order, spacing, and decoding.

Plane order (the first axis of every CT volume Latent returns)
----------------------------------------------------------------
Planes are sorted by their position along the slice normal ``n = row cosine x column
cosine`` (``ImageOrientationPatient``), with ``n`` first turned to point along the
*positive* patient axis (DICOM LPS) that it is closest to, and then in **decreasing**
order of that position. For axial slices this is **head first** (superior to inferior,
decreasing patient z), the order of the ``slices.csv`` tables beside the shared CT data;
for coronal slices it is posterior first, for sagittal slices patient-left first. When a
plane has no ``ImagePositionPatient`` (or no orientation), the order falls back to
``InstanceNumber`` (then frame number). ``metadata["slice_direction"]`` is the unit
vector from plane 0 to plane 1 in patient coordinates, so a voxel ``(k, i, j)`` lies at::

    origin + k * spacing[0] * slice_direction + i * spacing[1] * col_cosine + j * spacing[2] * row_cosine

where ``row_cosine = direction[:3]`` (the way column index ``j`` grows) and
``col_cosine = direction[3:]`` (the way row index ``i`` grows).
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import numpy as np

from engine.errors import CorruptFileError, ReadError, UnsupportedFormatError
from engine.io.dicom.limits import check_positive, check_rescale
from engine.io.dicom.scan import Instance, _one_line, quiet_pydicom

__all__ = ["Plane", "planes_of", "order_planes", "decode_instance", "fg_item", "check_decodable"]

logger = logging.getLogger("engine")

#: Positions closer than this (mm) along the normal count as the same place.
_SAME_POSITION_MM = 1e-3
#: Relative deviation from the median slice gap above which spacing is called irregular.
_IRREGULAR_SPACING = 0.01


@dataclass
class Plane:
    """One 2-D plane: a single-frame instance or one frame of a multi-frame instance."""

    inst: Instance
    frame: int
    position: tuple[float, float, float] | None
    orientation: tuple[float, ...] | None
    pixel_spacing: tuple[float, float] | None
    slope: float
    intercept: float
    instance_number: int | None
    thickness: float | None
    spacing_between: float | None


def _floats(value, n: int) -> tuple[float, ...] | None:
    try:
        vals = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        return None
    return vals if len(vals) == n and all(np.isfinite(vals)) else None


def _float(value) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if np.isfinite(v) else None


def fg_item(ds, frame: int, sequence: str):
    """The item of functional-group *sequence* for *frame* (per-frame first, then shared)."""
    for groups, idx in (("PerFrameFunctionalGroupsSequence", frame), ("SharedFunctionalGroupsSequence", 0)):
        seq = ds.get(groups)
        if seq is not None and len(seq) > idx:
            inner = seq[idx].get(sequence)
            if inner is not None and len(inner) > 0:
                return inner[0]
    return None


def _raw_float(value, default: float) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def _rescale(ds, modality: str, path: str) -> tuple[float, float]:
    slope = _raw_float(ds.get("RescaleSlope", 1.0), 1.0)
    intercept = _raw_float(ds.get("RescaleIntercept", 0.0), 0.0)
    field = "RescaleSlope"
    if modality == "RTDOSE" and "DoseGridScaling" in ds:
        slope, field = _raw_float(ds.DoseGridScaling, 1.0), "DoseGridScaling"
    check_rescale(path, slope, intercept, field)
    return slope, intercept


def _raw_floats(ds, keyword: str):
    value = ds.get(keyword) if ds is not None else None
    if value is None or value == "":
        return None
    try:
        return tuple(float(v) for v in (value if not isinstance(value, (str, bytes)) and
                                        hasattr(value, "__iter__") else (value,)))
    except (TypeError, ValueError):
        return None


def _check_spacings(path: str, ds) -> None:
    for keyword in ("PixelSpacing", "SliceThickness", "SpacingBetweenSlices"):
        check_positive(path, keyword, _raw_floats(ds, keyword))


def planes_of(inst: Instance) -> list[Plane]:
    """The planes of one instance, with each one's geometry and rescale (no pixels read)."""
    ds = inst.ds
    try:
        return _planes_of(inst, ds)
    except ReadError:
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged value in the header
        raise CorruptFileError(inst.path, f"the image geometry of {os.path.basename(inst.path)} "
                                          f"cannot be read ({_one_line(exc)})") from None


def _planes_of(inst: Instance, ds) -> list[Plane]:
    number = ds.get("InstanceNumber")
    try:
        number = None if number in (None, "") else int(number)
    except (TypeError, ValueError):
        number = None
    ipp = _floats(ds.get("ImagePositionPatient"), 3) if "ImagePositionPatient" in ds else None
    iop = _floats(ds.get("ImageOrientationPatient"), 6) if "ImageOrientationPatient" in ds else None
    ps = _floats(ds.get("PixelSpacing"), 2) if "PixelSpacing" in ds else None
    thick = _float(ds.get("SliceThickness"))
    between = _float(ds.get("SpacingBetweenSlices"))
    _check_spacings(inst.path, ds)
    slope, intercept = _rescale(ds, inst.modality, inst.path)
    enhanced = "PerFrameFunctionalGroupsSequence" in ds or "SharedFunctionalGroupsSequence" in ds
    planes = []
    offsets = None
    if not enhanced and inst.n_frames > 1 and "GridFrameOffsetVector" in ds:
        offsets = _floats(ds.GridFrameOffsetVector, inst.n_frames)
    for f in range(inst.n_frames):
        pos, ori, spc, sl, ic, th, sb = ipp, iop, ps, slope, intercept, thick, between
        if enhanced:
            item = fg_item(ds, f, "PlanePositionSequence")
            if item is not None and "ImagePositionPatient" in item:
                pos = _floats(item.ImagePositionPatient, 3)
            item = fg_item(ds, f, "PlaneOrientationSequence")
            if item is not None and "ImageOrientationPatient" in item:
                ori = _floats(item.ImageOrientationPatient, 6)
            item = fg_item(ds, f, "PixelMeasuresSequence")
            if item is not None:
                _check_spacings(inst.path, item)
                spc = _floats(item.get("PixelSpacing"), 2) or spc
                th = _float(item.get("SliceThickness")) or th
                sb = _float(item.get("SpacingBetweenSlices")) or sb
            item = fg_item(ds, f, "PixelValueTransformationSequence")
            if item is not None:
                sl = _raw_float(item.get("RescaleSlope", sl), sl)
                ic = _raw_float(item.get("RescaleIntercept", ic), ic)
                check_rescale(inst.path, sl, ic)
        elif inst.n_frames > 1:
            if offsets is not None and pos is not None and ori is not None:
                n = np.cross(ori[:3], ori[3:])
                pos = tuple(float(x) for x in np.asarray(pos) + offsets[f] * n)
            elif f > 0:
                pos = None  # frames share one position: order by frame number
        planes.append(Plane(inst, f, pos, ori, spc, sl, ic, number, th, sb))
    return planes


def order_planes(planes: list[Plane]) -> tuple[list[Plane], dict]:
    """Sort planes (see the module docstring) and measure the slice spacing in mm.

    Returns
    -------
    planes : list of Plane
        In volume order.
    geometry : dict
        ``slice_spacing`` (mm), ``slice_direction`` (unit 3-vector or None), ``plane_order``
        (how they were sorted) and, when found, ``irregular_slice_spacing``/``duplicate_positions``.
    """
    geo: dict = {}
    ori = planes[0].orientation
    have_pos = ori is not None and all(p.position is not None for p in planes)
    if have_pos:
        normal = np.cross(np.asarray(ori[:3]), np.asarray(ori[3:]))
        norm = float(np.linalg.norm(normal))
        have_pos = norm > 1e-6
    if have_pos:
        normal = normal / norm
        axis = int(np.argmax(np.abs(normal)))
        if normal[axis] < 0:
            normal = -normal
        d = np.array([float(np.dot(p.position, normal)) for p in planes])
        order = sorted(range(len(planes)),
                       key=lambda i: (-d[i], planes[i].instance_number or 0, planes[i].frame))
        planes = [planes[i] for i in order]
        d = d[order]
        gaps = -np.diff(d)
        geo["plane_order"] = ("decreasing position along the slice normal "
                              f"(+{'LPS'[axis]} first; head first for axial slices)")
        geo["slice_direction"] = tuple(float(x) + 0.0 for x in -normal)  # + 0.0: no "-0.0"
        dup = int(np.sum(gaps < _SAME_POSITION_MM))
        if dup:
            geo["duplicate_positions"] = dup
        real = gaps[gaps >= _SAME_POSITION_MM]
        if real.size:
            med = float(np.median(real))
            geo["slice_spacing"] = round(med, 6)  # positions are stored to ~1e-6 mm
            if float(np.max(np.abs(real - med))) > _IRREGULAR_SPACING * med + 1e-3:
                geo["irregular_slice_spacing"] = (float(real.min()), float(real.max()))
    else:
        planes = sorted(planes, key=lambda p: (p.instance_number or 0, p.frame, p.inst.path))
        geo["plane_order"] = "InstanceNumber (no usable ImagePositionPatient/ImageOrientationPatient)"
        geo["slice_direction"] = None
    if "slice_spacing" not in geo:
        first = planes[0]
        for value, source in ((first.spacing_between, "SpacingBetweenSlices"),
                              (first.thickness, "SliceThickness")):
            if value and value > 0:
                geo["slice_spacing"], geo["slice_spacing_from"] = float(value), source
                break
        else:
            geo["slice_spacing"], geo["slice_spacing_from"] = 1.0, "unknown (1 mm assumed)"
    return planes, geo


# What to install for each family of compressed transfer syntaxes.
_INSTALL_HINT = {
    "1.2.840.10008.1.2.4.5": "pylibjpeg with pylibjpeg-libjpeg (JPEG), or python-gdcm",
    "1.2.840.10008.1.2.4.7": "pylibjpeg with pylibjpeg-libjpeg (JPEG lossless), or python-gdcm",
    "1.2.840.10008.1.2.4.8": "pylibjpeg with pylibjpeg-libjpeg, or pyjpegls (JPEG-LS), or python-gdcm",
    "1.2.840.10008.1.2.4.9": "pylibjpeg with pylibjpeg-openjpeg (JPEG 2000), or python-gdcm",
    "1.2.840.10008.1.2.4.20": "pylibjpeg with pylibjpeg-openjpeg (HTJ2K)",
    "1.2.840.10008.1.2.5": "pylibjpeg with pylibjpeg-rle (RLE)",
}
_NO_PLUGIN = ("no Python decoder for it exists; convert the series to an uncompressed transfer "
              "syntax first (for example `gdcmconv --raw` or `dcmdjpeg`)")


def check_decodable(path: str, ts_uid: str) -> None:
    """Raise UnsupportedFormatError when no installed pixel decoder reads *ts_uid*."""
    from pydicom.pixels.decoders.base import get_decoder
    from pydicom.uid import UID

    ts = UID(ts_uid)
    name = os.path.basename(path)
    if not ts.is_transfer_syntax:
        raise UnsupportedFormatError(path, f"{name} uses the unknown transfer syntax {ts_uid}; {_NO_PLUGIN}")
    if not ts.is_compressed or ts.is_deflated:
        return
    try:
        decoder = get_decoder(ts)
    except NotImplementedError:
        raise UnsupportedFormatError(
            path, f"{name} is compressed as {ts.name} ({ts_uid}); {_NO_PLUGIN}") from None
    if not decoder.is_available:
        hint = next((h for p, h in _INSTALL_HINT.items() if ts_uid.startswith(p)), "python-gdcm")
        raise UnsupportedFormatError(
            path, f"{name} is compressed as {ts.name} ({ts_uid}) and no installed decoder reads it; "
                  f"install {hint}")


def decode_instance(inst: Instance) -> np.ndarray:
    """Stored pixel values of every frame of *inst*, ``(frames, rows, cols)``.

    Colour images are turned into luminance (0.299 R + 0.587 G + 0.114 B) so they can be viewed.
    """
    import pydicom
    from pydicom.uid import UID

    path, name = inst.path, os.path.basename(inst.path)
    meta = getattr(inst.ds, "file_meta", None)
    ts = str(meta.get("TransferSyntaxUID", "") if meta is not None else "") or "1.2.840.10008.1.2"
    check_decodable(path, ts)
    try:
        with quiet_pydicom():
            ds = pydicom.dcmread(path, force=inst.forced)
    except Exception as exc:  # noqa: BLE001
        raise CorruptFileError(path, f"{name} cannot be read ({_one_line(exc)})") from None
    if not any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        raise CorruptFileError(path, f"{name} has no pixel data (the file is truncated or incomplete)")
    try:
        with quiet_pydicom():
            arr = ds.pixel_array
    except MemoryError:
        raise ReadError(path, f"not enough memory to decode {name}") from None
    except Exception as exc:  # noqa: BLE001 - truncated or damaged pixel data
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        if len(lines) > 1 and "plugins" in lines[0]:  # pydicom lists each plugin's failure
            raise CorruptFileError(path, f"the {UID(ts).name} pixel data of {name} cannot be decoded "
                                         f"by the installed plugins ({lines[1][:200]}); it is damaged "
                                         "or needs another decoder such as python-gdcm") from None
        raise CorruptFileError(path, f"the pixel data of {name} is truncated or damaged "
                                     f"({_one_line(exc)})") from None
    spp = int(ds.get("SamplesPerPixel", 1) or 1)
    if spp > 1:
        arr = arr.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)[: arr.shape[-1]]
    if inst.n_frames == 1 or arr.ndim == 2:
        arr = arr.reshape((1,) + arr.shape[-2:])
    if arr.shape != (inst.n_frames, inst.rows, inst.cols):
        raise CorruptFileError(path, f"{name}: decoded pixels have shape {arr.shape}, the header says "
                                     f"{inst.n_frames} x {inst.rows} x {inst.cols}")
    return arr
