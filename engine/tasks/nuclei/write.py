"""Writers for nucleus detections: CSV, QuPath GeoJSON and a provenance summary (all atomic).

* ``<stem>.nuclei.csv``: header ``x,y,score``; x = column, y = row in full-resolution
  input pixels (0-based, origin top-left); score in [0, 1].
* ``<stem>.nuclei.geojson``: a FeatureCollection of ``Point`` features with
  ``properties.objectType = "detection"``, a ``classification`` (``{"name": "Nucleus",
  "color": [r, g, b]}``), ``name`` and ``measurements`` (``{"score": s}``) as QuPath
  (>= 0.3) imports them; coordinates are the same pixel coordinates as the CSV.
* ``<stem>.summary.json``: count, density per mm² (when the pixel size is known),
  model name + weights sha256, parameters and timings.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from engine._shared.files import atomic_path, stem_of, write_json_atomic
from engine.data import Image
from engine.results import Detections

__all__ = ["write_detections", "detections_geojson", "summarize", "CSV_HEADER", "CLASS_NAME"]

CSV_HEADER = "x,y,score"
CLASS_NAME = "Nucleus"
CLASS_COLOR = [0, 200, 255]


def detections_geojson(result: Detections) -> dict[str, Any]:
    """A QuPath-compatible GeoJSON FeatureCollection of point detections."""
    feats = []
    for i, ((x, y), s) in enumerate(zip(result.xy.tolist(), result.score.tolist())):
        feats.append({
            "type": "Feature",
            "id": f"nucleus-{i + 1}",
            "geometry": {"type": "Point", "coordinates": [round(x, 2), round(y, 2)]},
            "properties": {
                "objectType": "detection",
                "name": CLASS_NAME,
                "classification": {"name": CLASS_NAME, "color": CLASS_COLOR},
                "isLocked": False,
                "score": round(float(s), 4),
                "measurements": {"score": round(float(s), 4)},
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
        "area_mm2": area_mm2,
        "density_per_mm2": (result.count / area_mm2) if area_mm2 else None,
        "mean_score": float(result.score.mean()) if result.count else None,
        "model": result.model,
        "sha256": result.sha256,
        "parameters": {k: v for k, v in p.items() if k != "timings_s"},
        "timings_s": p.get("timings_s", {}),
        "coordinates": "x = column, y = row, full-resolution input pixels, 0-based, origin top-left",
    }
    if result.mpp is None:
        out["note"] = "pixel size unknown: density not computed; " + str(p.get("mpp_source", ""))
    return out


def write_detections(result: Detections, data: Image | None, out_dir: str | os.PathLike) -> list[Path]:
    """Write ``<stem>.nuclei.csv``, ``<stem>.nuclei.geojson`` and ``<stem>.summary.json`` into *out_dir*."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = stem_of(getattr(data, "path", None) or "detections")
    csv_path = out_dir / f"{stem}.nuclei.csv"
    with atomic_path(csv_path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(CSV_HEADER + "\n")
            for (x, y), s in zip(result.xy.tolist(), result.score.tolist()):
                fh.write(f"{x:.2f},{y:.2f},{s:.4f}\n")
    geo_path = out_dir / f"{stem}.nuclei.geojson"
    with atomic_path(geo_path) as tmp:
        tmp.write_text(json.dumps(detections_geojson(result)), encoding="utf-8")
    summary_path = write_json_atomic(out_dir / f"{stem}.summary.json", summarize(result, data))
    return [csv_path, geo_path, summary_path]
