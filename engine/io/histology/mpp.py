"""Microns per pixel (and objective power) from what histology files say about themselves.

Each parser returns ``(mpp_row, mpp_col, source)`` or None, so the reader can say in
its metadata where the value came from. Sources are tried from the most to the least
specific: OME-XML, the Aperio description, ImageJ, Philips, then the plain TIFF
``XResolution``/``YResolution`` tags (or a PNG ``pHYs`` chunk).

Resolution tags are often left at a graphics program's default of 72 or 96 dots per
inch, which would mean 353 or 265 µm per pixel. Such values, and any resolution-derived
value outside :data:`PLAUSIBLE_MPP`, are ignored, and the reason is reported.
"""
from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET

__all__ = [
    "PLAUSIBLE_MPP",
    "mpp_from_ome",
    "mpp_from_aperio",
    "mpp_from_imagej",
    "mpp_from_philips",
    "mpp_from_resolution",
    "objective_from_ome",
    "aperio_fields",
]

#: Range (µm per pixel) accepted from resolution tags: from 100 000 px/mm to 10 px/mm.
PLAUSIBLE_MPP = (0.01, 100.0)

_DEFAULT_DPI = (72.0, 96.0)

#: Length units (as OME and ImageJ spell them) in micrometres.
_UNIT_UM = {
    "m": 1e6, "dm": 1e5, "cm": 1e4, "mm": 1e3, "µm": 1.0, "μm": 1.0, "um": 1.0, "micron": 1.0,
    "microns": 1.0, "micrometer": 1.0, "micrometre": 1.0, "nm": 1e-3, "nanometer": 1e-3,
    "pm": 1e-6, "Å": 1e-4, "å": 1e-4, "angstrom": 1e-4,
    "\\u00B5m": 1.0, "\\u00b5m": 1.0,  # ImageJ writes µ as a literal escape sequence
}


def _positive(*vals: float) -> bool:
    return all(v is not None and math.isfinite(v) and v > 0 for v in vals)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _ome_root(xml: str):
    try:
        return ET.fromstring(xml.strip().encode("utf-8") if isinstance(xml, str) else xml)
    except ET.ParseError:
        return None


def mpp_from_ome(xml: str | None, image_index: int = 0):
    """``PhysicalSizeY``/``PhysicalSizeX`` of the OME ``Image`` (default unit µm)."""
    root = _ome_root(xml) if xml else None
    if root is None:
        return None
    images = [el for el in root.iter() if _local(el.tag) == "Image"]
    if not images:
        return None
    image = images[min(image_index, len(images) - 1)]
    pixels = next((el for el in image if _local(el.tag) == "Pixels"), None)
    if pixels is None:
        return None
    out = []
    for axis in ("Y", "X"):
        val = pixels.get(f"PhysicalSize{axis}")
        unit = pixels.get(f"PhysicalSize{axis}Unit", "µm")
        try:
            out.append(float(val) * _UNIT_UM[unit.strip()])
        except (TypeError, ValueError, KeyError):
            out.append(None)
    if out[0] is None and out[1] is not None:
        out[0] = out[1]  # some writers give X only (square pixels)
    if out[1] is None and out[0] is not None:
        out[1] = out[0]
    if not _positive(*out):
        return None
    return out[0], out[1], "OME-XML PhysicalSizeY/X"


def objective_from_ome(xml: str | None) -> float | None:
    """``Objective NominalMagnification`` from OME-XML, if any."""
    root = _ome_root(xml) if xml else None
    if root is None:
        return None
    for el in root.iter():
        if _local(el.tag) == "Objective" and el.get("NominalMagnification"):
            try:
                return float(el.get("NominalMagnification"))
            except ValueError:
                return None
    return None


def aperio_fields(description: str | None) -> dict[str, str]:
    """``key = value`` fields of an Aperio ImageDescription (``"Aperio Image Library ...|MPP = 0.499|..."``)."""
    if not description or not description.startswith("Aperio"):
        return {}
    fields = {}
    for part in description.split("|")[1:]:
        if "=" in part:
            key, _, val = part.partition("=")
            fields[key.strip()] = val.strip()
    return fields


def mpp_from_aperio(description: str | None):
    """``MPP = 0.4990`` of an Aperio description (square pixels)."""
    try:
        mpp = float(aperio_fields(description).get("MPP", "nan"))
    except ValueError:
        return None
    return (mpp, mpp, "Aperio ImageDescription MPP") if _positive(mpp) else None


def mpp_from_imagej(imagej: dict | None, xres: float | None, yres: float | None):
    """ImageJ stores pixels per ``unit`` in X/YResolution with ResolutionUnit NONE."""
    if not imagej or not xres:
        return None
    unit = str(imagej.get("unit", "")).strip()
    scale = _UNIT_UM.get(unit) or _UNIT_UM.get(unit.lower())
    if scale is None:
        return None
    yres = yres or xres
    mpp_x, mpp_y = scale / xres, scale / yres
    return (mpp_y, mpp_x, f"ImageJ resolution (unit {unit})") if _positive(mpp_x, mpp_y) else None


def mpp_from_philips(description: str | None):
    """Philips TIFF: ``DICOM_PIXEL_SPACING`` (mm, row then column) in the XML description."""
    if not description or "DICOM_PIXEL_SPACING" not in description:
        return None
    m = re.search(r'Name="DICOM_PIXEL_SPACING"[^>]*>\s*"?([0-9.eE+-]+)"?\s+"?([0-9.eE+-]+)"?', description)
    if not m:
        return None
    row, col = float(m.group(1)) * 1e3, float(m.group(2)) * 1e3
    return (row, col, "Philips DICOM_PIXEL_SPACING") if _positive(row, col) else None


def mpp_from_resolution(xres: float | None, yres: float | None, unit: str | int | None,
                        *, what: str = "TIFF X/YResolution"):
    """Microns per pixel from a pixels-per-unit resolution.

    Returns ``(mpp_row, mpp_col, source)``, or ``(None, None, why_ignored)`` when the
    resolution is absent, unit-less, a 72/96 dpi default or implausible for a microscope.
    """
    if not xres or not math.isfinite(xres) or xres <= 0:
        return None, None, None
    yres = yres if yres and math.isfinite(yres) and yres > 0 else xres
    u = str(unit).lower() if unit is not None else "none"
    if u in ("3", "centimeter", "cm", "resunit.centimeter"):
        scale, uname = 1e4, "cm"
    elif u in ("2", "inch", "resunit.inch"):
        scale, uname = 25400.0, "inch"
    elif u in ("metre", "meter", "m"):
        scale, uname = 1e6, "metre"
    elif u in ("4", "millimeter", "mm", "resunit.millimeter"):
        scale, uname = 1e3, "mm"
    elif u in ("5", "micrometer", "um", "resunit.micrometer"):
        scale, uname = 1.0, "µm"
    else:
        return None, None, f"{what} ignored: no physical unit"
    dpi_x, dpi_y = xres * 25400.0 / scale, yres * 25400.0 / scale
    if any(abs(dpi_x - d) < 0.1 and abs(dpi_y - d) < 0.1 for d in _DEFAULT_DPI):
        return None, None, (f"{what} ignored: {dpi_x:.0f} dpi is a graphics-program default, "
                            "not a microscope pixel size")
    mpp_x, mpp_y = scale / xres, scale / yres
    lo, hi = PLAUSIBLE_MPP
    if not (lo <= mpp_x <= hi and lo <= mpp_y <= hi):
        return None, None, (f"{what} ignored: {mpp_x:.4g} µm per pixel is outside "
                            f"the plausible range {lo}-{hi} µm")
    return mpp_y, mpp_x, f"{what} (pixels per {uname})"
