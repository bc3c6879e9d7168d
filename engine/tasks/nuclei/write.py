"""Writers for nucleus detections: CSV, QuPath GeoJSON and a provenance summary (all atomic).

* ``<stem>.nuclei.csv``: header ``x,y,score`` (+ ``area_px,area_um2`` when the nuclei were
  outlined); x = column, y = row in full-resolution input pixels (0-based, origin
  top-left); score in [0, 1]; area of the nucleus's outline in input pixels and µm²
  (``area_um2`` empty when the pixel size is unknown).
* ``<stem>.nuclei.geojson``: a FeatureCollection of detections with
  ``properties.objectType = "detection"``, a ``classification`` (``{"name": "Nucleus",
  "color": [r, g, b]}``), ``name`` and ``measurements`` (``score``, and ``Area px^2`` /
  ``Area µm^2``) as QuPath (>= 0.3) imports them; the geometry is the nucleus's outline
  (a closed ``Polygon``) when outlined, else its centre (``Point``); coordinates are the
  same pixel coordinates as the CSV.
* ``<stem>.summary.json``: count, density per mm² (when the pixel size is known), the
  pixel size and where it came from (``mpp_source``: ``given (--mpp)``, ``image metadata``
  or ``estimated``, then with ``mpp_estimate``), model name + weights sha256, parameters,
  nucleus area statistics and timings.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np

from engine._shared.files import atomic_path, stem_of, write_json_atomic
from engine._shared.output_set import output_set
from engine.data import Image
from engine.results import Detections

__all__ = ["write_detections", "estimate_detections_bytes", "detections_geojson", "summarize", "CSV_HEADER",
           "CSV_HEADER_AREAS", "CLASS_NAME"]

CSV_HEADER = "x,y,score"
CSV_HEADER_AREAS = "x,y,score,area_px,area_um2"
CLASS_NAME = "Nucleus"
CLASS_COLOR = [0, 200, 255]


def detections_geojson(result: Detections) -> dict[str, Any]:
    """A QuPath-compatible GeoJSON FeatureCollection of point detections."""
    feats = []
    outlines = result.outlines
    a_px, a_um = result.nucleus_area_px, result.nucleus_area_um2
    for i, ((x, y), s) in enumerate(zip(result.xy.tolist(), result.score.tolist())):
        meas = {"score": round(float(s), 4)}
        geom = {"type": "Point", "coordinates": [round(x, 2), round(y, 2)]}
        if outlines is not None and len(outlines[i]) >= 3:
            ring = [[round(px, 2), round(py, 2)] for px, py in outlines[i].tolist()]
            geom = {"type": "Polygon", "coordinates": [ring + [ring[0]]]}
        if a_px is not None:
            meas["Area px^2"] = round(float(a_px[i]), 2)
        if a_um is not None:
            meas["Area µm^2"] = round(float(a_um[i]), 3)
        feats.append({
            "type": "Feature",
            "id": f"nucleus-{i + 1}",
            "geometry": geom,
            "properties": {
                "objectType": "detection",
                "name": CLASS_NAME,
                "classification": {"name": CLASS_NAME, "color": CLASS_COLOR},
                "isLocked": False,
                "score": round(float(s), 4),
                "measurements": meas,
            },
        })
    return {"type": "FeatureCollection", "features": feats}


def summarize(result: Detections, data: Image | None, *, outputs=()) -> dict[str, Any]:
    """Count, density, provenance and timings of one detection run."""
    p = dict(result.params)
    area_mm2 = None
    if result.mpp and result.area_px:
        area_mm2 = result.area_px * (result.mpp * 1e-3) ** 2
    out: dict[str, Any] = {
        "task": "detect-nuclei",
        "input": os.fspath(getattr(data, "path", "")) if data is not None else None,
        "image_shape": list(data.shape[:2]) if data is not None else None,
        "count": result.count,
        "area_px": result.area_px,
        "mpp": result.mpp,
        "mpp_source": p.get("mpp_source"),
        "mpp_estimate": p.get("mpp_estimate"),
        "area_mm2": area_mm2,
        "density_per_mm2": (result.count / area_mm2) if area_mm2 else None,
        "mean_score": float(result.score.mean()) if result.count else None,
        "model": result.model,
        "sha256": result.sha256,
        "parameters": {k: v for k, v in p.items() if k != "timings_s"},
        "timings_s": p.get("timings_s", {}),
        "coordinates": "x = column, y = row, full-resolution input pixels, 0-based, origin top-left",
    }
    if result.nucleus_area_px is not None and result.count:
        a = np.asarray(result.nucleus_area_px, float)
        out["nucleus_area_px"] = {"median": float(np.median(a)), "p10": float(np.percentile(a, 10)),
                                  "p90": float(np.percentile(a, 90))}
        if result.nucleus_area_um2 is not None:
            b = np.asarray(result.nucleus_area_um2, float)
            out["nucleus_area_um2"] = {"median": float(np.median(b)), "p10": float(np.percentile(b, 10)),
                                       "p90": float(np.percentile(b, 90))}
    if result.mpp is None:
        out["note"] = "pixel size unknown: density not computed; " + str(p.get("mpp_source", ""))
    elif p.get("mpp_source") == "estimated":
        est = p.get("mpp_estimate") or {}
        out["note"] = (f"pixel size ESTIMATED from the image ({result.mpp:.3g} um/px, "
                       f"{est.get('magnification', '?')}, confidence {est.get('confidence', float('nan')):.2f}): "
                       "the file does not say it; densities and areas depend on it. Pass --mpp to set it.")
    return out


#: Upper bounds of the bytes per CSV row / GeoJSON feature (without outline) / outline vertex / summary.
_CSV_ROW_BYTES, _FEATURE_BYTES, _VERTEX_BYTES, _SUMMARY_BYTES = 48, 320, 24, 16 << 10


def estimate_detections_bytes(result: Detections) -> int:
    """Bytes :func:`write_detections` writes: per nucleus a CSV row and a GeoJSON feature (with its outline)."""
    n = int(result.count)
    vertices = sum(len(o) + 1 for o in result.outlines) if result.outlines is not None else 0
    return 64 + n * (_CSV_ROW_BYTES + _FEATURE_BYTES) + vertices * _VERTEX_BYTES + _SUMMARY_BYTES


def write_detections(result: Detections, data: Image | None, out_dir: str | os.PathLike, *,
                     free_bytes: Callable[[Path], int] | None = None) -> list[Path]:
    """Write ``<stem>.nuclei.csv``, ``<stem>.nuclei.geojson`` and ``<stem>.summary.json`` into *out_dir*.

    The three are one output set (:func:`engine._shared.output_set.output_set`): a kill leaves the
    previous complete set or the new one. Free space is checked first (*free_bytes*: the source
    of the free bytes, default :func:`shutil.disk_usage`).
    """
    stem = stem_of(getattr(data, "path", None) or "detections")
    names = [f"{stem}.summary.json", f"{stem}.nuclei.csv", f"{stem}.nuclei.geojson"]
    with output_set(out_dir, f"{stem}.nuclei", index=names[:1], family=names,
                    estimate=estimate_detections_bytes(result), free_bytes=free_bytes) as staged:
        paths = _write_detection_files(result, data, staged.dir, stem)
    return staged.finals(paths)


def _write_detection_files(result: Detections, data: Image | None, out_dir: Path, stem: str) -> list[Path]:
    csv_path = out_dir / f"{stem}.nuclei.csv"
    with atomic_path(csv_path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
            a_px, a_um = result.nucleus_area_px, result.nucleus_area_um2
            if a_px is None:
                fh.write(CSV_HEADER + "\n")
                for (x, y), s in zip(result.xy.tolist(), result.score.tolist()):
                    fh.write(f"{x:.2f},{y:.2f},{s:.4f}\n")
            else:
                fh.write(CSV_HEADER_AREAS + "\n")
                for i, ((x, y), s) in enumerate(zip(result.xy.tolist(), result.score.tolist())):
                    um = f"{a_um[i]:.3f}" if a_um is not None else ""
                    fh.write(f"{x:.2f},{y:.2f},{s:.4f},{a_px[i]:.2f},{um}\n")
    geo_path = out_dir / f"{stem}.nuclei.geojson"
    with atomic_path(geo_path) as tmp:
        tmp.write_text(json.dumps(detections_geojson(result)), encoding="utf-8")
    summary_path = write_json_atomic(out_dir / f"{stem}.summary.json", summarize(result, data))
    return [csv_path, geo_path, summary_path]
