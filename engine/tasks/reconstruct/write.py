"""Write a reconstruction (images or signals, extra export formats, summary) as one output set."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from engine._shared.files import atomic_path, stem_of, write_json_atomic
from engine.data import Image
from engine.results import ReconstructionResult

__all__ = ["write_reconstruction", "estimate_reconstruction_bytes", "BIG_TIFF_BYTES"]

#: Above this size a TIFF is written tile by tile (BigTIFF, 512 px tiles) from a possibly disk-backed array.
BIG_TIFF_BYTES = 1 << 30
_TILE = 512
#: Upper bounds: a TIFF's tags and offsets table, a summary JSON (bytes).
_TIFF_OVERHEAD, _SUMMARY_BYTES = 16 << 10, 32 << 10


def _tiff_bytes(arr: np.ndarray) -> int:
    if arr.size * 4 <= BIG_TIFF_BYTES:
        return 4 * int(arr.size) + _TIFF_OVERHEAD
    h, w = arr.shape[0], arr.shape[1]
    per_px = int(np.prod(arr.shape[2:], dtype=np.int64)) if arr.ndim > 2 else 1
    padded = -(-h // _TILE) * _TILE * -(-w // _TILE) * _TILE  # whole tiles, zero-padded at the edges
    return 4 * padded * per_px + _TIFF_OVERHEAD + 16 * padded // (_TILE * _TILE)


def estimate_reconstruction_bytes(result: ReconstructionResult, data, formats=None) -> int:
    """Bytes :func:`write_reconstruction` writes for *result* in *formats*, from the arrays' shapes.

    TIFF and ``.npy`` are exact up to their headers (float32); the extra export formats are
    bounded by :func:`engine.export.estimate_export_bytes` (compressed ones by their raw size).
    """
    from engine.export import check_formats, estimate_export_bytes

    formats = check_formats(formats, data)
    rec, an = result.reconstruction.array, result.anomaly.array
    total = _SUMMARY_BYTES
    if isinstance(data, Image) and "tiff" in formats:
        total += _tiff_bytes(rec) + _tiff_bytes(an)
    if not isinstance(data, Image) and "npy" in formats:
        total += 4 * (int(np.size(rec)) + int(np.size(an))) + 2 * 128
    return int(total + estimate_export_bytes(result, data, formats))


def _write_tiff(path: Path, arr: np.ndarray) -> None:
    import tifffile

    big = arr.size * 4 > BIG_TIFF_BYTES
    with atomic_path(path) as tmp:
        if not big:
            tifffile.imwrite(tmp, np.ascontiguousarray(arr, dtype=np.float32), photometric="minisblack"
                             if arr.ndim != 3 or arr.shape[-1] != 3 else "rgb")
            return
        tile = _TILE
        h, w = arr.shape[0], arr.shape[1]

        def tiles():
            for y in range(0, h, tile):
                for x in range(0, w, tile):
                    t = np.zeros((tile, tile) + arr.shape[2:], np.float32)
                    blk = arr[y:y + tile, x:x + tile]
                    t[: blk.shape[0], : blk.shape[1]] = blk
                    yield t

        tifffile.imwrite(tmp, tiles(), shape=arr.shape, dtype=np.float32, tile=(tile, tile), bigtiff=True,
                         photometric="rgb" if arr.ndim == 3 and arr.shape[-1] == 3 else "minisblack")


def write_reconstruction(result: ReconstructionResult, data, out_dir, formats=None, *,
                         free_bytes: Callable[[Path], int] | None = None) -> list[Path]:
    """Write ``<stem>.recon.*``, ``<stem>.anomaly.*`` and ``<stem>.summary.json`` into *out_dir* as one set.

    Images: float32 TIFF with the input's (slices x) height x width (x 3). Signals: ``.npy``
    ``(channels, samples)`` float32 like the input. *formats*: see :mod:`engine.export` (None: these).
    The files are one output set (:func:`engine._shared.output_set.output_set`): a kill leaves the
    previous run's complete files or this run's, and files of a previous run's other *formats*
    are removed with it (no stale ``.nii.gz`` beside a new ``.tif``). Free space is checked first
    (:func:`estimate_reconstruction_bytes`; *free_bytes*: the source of the free bytes).
    """
    from engine._shared.output_set import output_set
    from engine.export import check_formats, export_names

    formats = check_formats(formats, data)
    stem = stem_of(data.path)
    extra = export_names(stem)
    index = [f"{stem}.summary.json", f"{stem}.export.json", next(n for n in extra if n.endswith(".hea"))]
    # every name any --formats writes: a previous run's files of formats not asked for now go with the old set
    family = [f"{stem}.{kind}.{ext}" for kind in ("recon", "anomaly") for ext in ("tif", "npy")] + extra
    with output_set(out_dir, f"{stem}.reconstruct", index=index, family=family,
                    estimate=estimate_reconstruction_bytes(result, data, formats), free_bytes=free_bytes) as staged:
        paths = _write_files(result, data, staged.dir, formats, stem)
    return staged.finals(paths)


def _write_files(result: ReconstructionResult, data, out: Path, formats, stem: str) -> list[Path]:
    from engine.export import export_extra

    paths: list[Path] = []
    if isinstance(data, Image):
        for kind, arr in (("recon", result.reconstruction.array), ("anomaly", result.anomaly.array))[
                :2 * ("tiff" in formats)]:
            p = out / f"{stem}.{kind}.tif"
            _write_tiff(p, arr)
            paths.append(p)
    else:
        for kind, arr in (("recon", result.reconstruction.array), ("anomaly", result.anomaly.array))[
                :2 * ("npy" in formats)]:
            p = out / f"{stem}.{kind}.npy"
            with atomic_path(p) as tmp:
                with open(tmp, "wb") as fh:
                    np.save(fh, np.asarray(arr, np.float32))
            paths.append(p)
    paths += export_extra(result, data, out, formats, stem=stem)
    summary = dict(result.summary)
    summary["outputs"] = [p.name for p in paths] + [f"{stem}.summary.json"]
    p = out / f"{stem}.summary.json"
    write_json_atomic(p, summary)
    paths.append(p)
    return paths
