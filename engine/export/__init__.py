"""Results in the formats clinical and research tools open: one module per role.

===================  ==========================================================  ===========
format name          what                                                        module
===================  ==========================================================  ===========
``tiff``             float32 TIFF of the reconstruction and anomaly map (today)  engine.tasks.reconstruct
``nifti``            CT reconstruction + anomaly map, RAS affine from DICOM      nifti
``dicom-pm``         CT anomaly map as a DICOM Parametric Map                    dicom_pm
``dicom-seg``        CT anomaly > 1 as a DICOM Segmentation                      dicom_seg
``dicom-sc``         overlay of the hottest CT plane as a Secondary Capture      dicom_sc
``ome-tiff``         H&E anomaly map as pyramidal OME-TIFF with the pixel size   tiff_pyramid
``npy``              signal reconstruction + anomaly as .npy (today)             engine.tasks.reconstruct
``native``           signal reconstruction as WFDB (WFDB input) or EDF+, with    signal_annotations
                     the anomaly runs as annotations
===================  ==========================================================  ===========

Signals themselves are written as WFDB / EDF / BDF by :mod:`engine.export.signals`.
De-identification of inputs lives in :mod:`engine.export.deidentify`. Every export here records
its provenance (:mod:`engine.export.provenance`) and writes no patient name, ID or birth date
unless ``keep_identifiers`` is asked for.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from engine.data import Image
from engine.errors import LatentError
from engine.results import ReconstructionResult

__all__ = ["parse_formats", "IMAGE_FORMATS", "SIGNAL_FORMATS", "DEFAULT_IMAGE_FORMATS", "DEFAULT_SIGNAL_FORMATS",
           "check_formats", "export_extra", "estimate_export_bytes", "export_names"]

IMAGE_FORMATS = ("tiff", "nifti", "dicom-pm", "dicom-seg", "dicom-sc", "ome-tiff")
SIGNAL_FORMATS = ("native", "npy")
DEFAULT_IMAGE_FORMATS = ("tiff",)
DEFAULT_SIGNAL_FORMATS = ("npy",)
_CT_ONLY = ("nifti", "dicom-pm", "dicom-seg", "dicom-sc")


def parse_formats(formats: str | Sequence[str], valid: Sequence[str], kind: str) -> list[str]:
    """The names of a ``--formats`` comma list (or sequence), lower-case; an unknown or empty one raises
    :class:`~engine.errors.LatentError` listing the *valid* names for *kind* ("images", "scores", ...)."""
    names = [f.strip().lower() for f in (formats.split(",") if isinstance(formats, str) else formats) if f.strip()]
    bad = [f for f in names if f not in valid]
    if bad or not names:
        what = f"unknown output format {bad[0]!r} for {kind}" if bad else "no output format given"
        raise LatentError(f"{what}; valid for {kind}: {', '.join(valid)}")
    return names


def check_formats(formats: str | Sequence[str] | None, data) -> tuple[str, ...]:
    """The validated tuple of format names for *data* (an Image or a Signal); None -> today's default.

    Raises
    ------
    engine.errors.LatentError
        An unknown name (the valid ones for the data are listed) or one that does not fit the data.
    """
    is_image = isinstance(data, Image)
    if formats is None:
        return DEFAULT_IMAGE_FORMATS if is_image else DEFAULT_SIGNAL_FORMATS
    names = parse_formats(formats, IMAGE_FORMATS if is_image else SIGNAL_FORMATS, "images" if is_image else "signals")
    if is_image:
        dicom = bool(data.series_uid and data.metadata.get("sop_instance_uids"))
        for f in names:
            if f in _CT_ONLY and not dicom:
                raise LatentError(f"format {f!r} needs a CT read from DICOM; {data.path} is {data.modality}")
            if f == "ome-tiff" and data.modality != "histology":
                raise LatentError(f"format 'ome-tiff' is for H&E images; {data.path} is {data.modality}")
    return tuple(dict.fromkeys(names))


def export_extra(result: ReconstructionResult, data, out_dir: str | os.PathLike, formats: Sequence[str], *,
                 stem: str, keep_identifiers: bool = False) -> list[Path]:
    """Write the formats beyond today's ``tiff``/``npy`` and a ``<stem>.export.json`` provenance record."""
    from engine.export.provenance import provenance, write_provenance

    out = Path(out_dir)
    extra = [f for f in formats if f not in ("tiff", "npy")]
    if not extra:
        return []
    an, rec = result.anomaly, result.reconstruction
    prov = provenance(model=an.model, sha256=an.sha256, data=data, what="reconstruction and anomaly map")
    paths: list[Path] = []
    for f in extra:
        if f == "nifti":
            from engine.export.nifti import write_nifti

            for kind, arr in (("recon", rec.array), ("anomaly", an.array)):
                paths.append(write_nifti(data, arr, out / f"{stem}.{kind}.nii.gz", provenance=prov,
                                         description=kind))
        elif f == "dicom-pm":
            from engine.export.dicom_pm import write_parametric_map

            paths.append(write_parametric_map(data, an, out / f"{stem}.anomaly.pm.dcm",
                                              keep_identifiers=keep_identifiers))
        elif f == "dicom-seg":
            from engine.export.dicom_seg import write_segmentation

            paths.append(write_segmentation(data, an, out / f"{stem}.anomaly.seg.dcm",
                                            keep_identifiers=keep_identifiers))
        elif f == "dicom-sc":
            from engine.export.dicom_sc import write_secondary_capture

            paths.append(write_secondary_capture(data, an, out / f"{stem}.overlay.sc.dcm",
                                                 keep_identifiers=keep_identifiers))
        elif f == "ome-tiff":
            from engine.export.tiff_pyramid import write_pyramid_tiff

            paths.append(write_pyramid_tiff(data, an.array, out / f"{stem}.anomaly.ome.tif", provenance=prov))
        elif f == "native":
            paths += _native_signal(result, data, out, stem)
    paths.append(write_provenance(out / f"{stem}.export.json", prov, paths))
    return paths


def _native_record(stem: str) -> str:
    import re

    return re.sub(r"[^-\w]", "_", f"{stem}_recon")


def export_names(stem: str) -> list[str]:
    """Every file name :func:`export_extra` can write for *stem*, in any format (for stale-file removal)."""
    from engine.export.signal_annotations import WFDB_EXTENSION

    record = _native_record(stem)
    return [f"{stem}.recon.nii.gz", f"{stem}.anomaly.nii.gz", f"{stem}.anomaly.pm.dcm", f"{stem}.anomaly.seg.dcm",
            f"{stem}.overlay.sc.dcm", f"{stem}.anomaly.ome.tif", f"{record}.hea", f"{record}.dat",
            f"{record}.{WFDB_EXTENSION}", f"{stem}.recon.edf", f"{stem}.export.json"]


#: Upper bounds (bytes): a provenance record; per DICOM frame (its functional-group items); per file header.
_PROVENANCE_BYTES, _DICOM_FRAME_BYTES, _HEADER_BYTES = 16 << 10, 2 << 10, 64 << 10


def estimate_export_bytes(result: ReconstructionResult, data, formats: Sequence[str]) -> int:
    """Upper bound of the bytes :func:`export_extra` writes for *formats*, from the arrays' shapes.

    Uncompressed formats are counted exactly up to their headers; ``nifti`` (``.nii.gz``) and the
    compressed pyramid are counted at their raw size, which bounds the compressed one.
    """
    import numpy as np

    extra = [f for f in formats if f not in ("tiff", "npy")]
    if not extra:
        return 0
    rec, an = np.shape(result.reconstruction.array), np.shape(result.anomaly.array)
    n_rec, n_an = int(np.prod(rec, dtype=np.int64)), int(np.prod(an, dtype=np.int64))
    planes = int(an[0]) if len(an) == 3 else 1
    total = _PROVENANCE_BYTES
    for f in extra:
        if f == "nifti":
            total += 4 * (n_rec + n_an) + 2 * _HEADER_BYTES
        elif f == "dicom-pm":
            total += 4 * n_an + planes * _DICOM_FRAME_BYTES + _HEADER_BYTES
        elif f == "dicom-seg":
            total += -(-n_an // 8) + planes * _DICOM_FRAME_BYTES + _HEADER_BYTES  # 1 bit per voxel
        elif f == "dicom-sc":
            total += 3 * int(an[-2]) * int(an[-1]) + _HEADER_BYTES  # one RGB plane
        elif f == "ome-tiff":
            total += 4 * n_an * 4 // 3 + _HEADER_BYTES  # levels halve each side: <= 4/3 of level 0
        elif f == "native":  # WFDB format 16 or EDF: 2 bytes per sample, + the anomaly runs as annotations
            from engine.export.signal_annotations import score_annotations

            n_runs = len(score_annotations(result.anomaly.array, data.sfreq))
            total += 2 * n_rec + 3 * _HEADER_BYTES + 96 * n_runs
    return int(total)


def _native_signal(result: ReconstructionResult, data, out: Path, stem: str) -> list[Path]:
    from engine.data import Signal
    from engine.export.signal_annotations import score_annotations, write_edf_annotations, write_wfdb_annotations
    from engine.export.signals import write_wfdb

    recon = Signal.from_array(result.reconstruction.array, sfreq=data.sfreq, modality=data.modality,
                              channels=data.channels, units=data.units, path=data.path)
    anns = score_annotations(result.anomaly.array, data.sfreq)
    p = Path(data.path)
    if p.suffix.lower() in (".hea", ".dat", "") and Path(str(p.with_suffix("")) + ".hea").exists():
        name = _native_record(stem)
        hea = write_wfdb(recon, out, name, annotations=False,
                         comments=[f"Latent reconstruction, model {result.reconstruction.model} "
                                   f"sha256 {result.reconstruction.sha256}"])
        return [hea, out / f"{name}.dat", write_wfdb_annotations(anns, data.sfreq, out, name)]
    return [write_edf_annotations(recon, anns, out / f"{stem}.recon.edf")]
