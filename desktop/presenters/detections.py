"""Nucleus detections: markers on the slide, a table of nuclei, the density."""
from __future__ import annotations

import numpy as np

from desktop.presenters.base import MAX_TABLE_ROWS, Presenter, ResultTable
from desktop.selftest.checks import check_provenance, data_shape, finite, require
from engine.results import Detections


class DetectionsPresenter(Presenter):
    result_type = Detections

    def summary(self, result, data) -> list[str]:
        lines = [f"Nuclei: {result.count}"]
        mpp = result.mpp or getattr(data, "mpp", None)
        params = getattr(result, "params", None) or {}
        whole = data.shape[0] * data.shape[1] if data is not None else None
        area_px = result.area_px or whole  # the drawn region's area when detection was limited to it
        if mpp and area_px:
            area_mm2 = area_px * (mpp / 1000.0) ** 2
            where = " in the drawn region" if params.get("roi") and whole and area_px < whole else ""
            lines.append(f"Density: {result.count / area_mm2:,.0f} per mm² (over {area_mm2:.3f} mm²{where})")
            if params.get("mpp_source") == "estimated":
                est = params.get("mpp_estimate") or {}
                lines.append(f"Scale ESTIMATED from the nuclei: {mpp:.3g} µm/px (≈{est.get('magnification', '?')}, "
                             f"confidence {float(est.get('confidence', 0)):.0%}); confirm or set it")
            areas = getattr(result, "nucleus_area_um2", None)
            if areas is not None and len(areas):
                lines.append(f"Nucleus area: median {float(np.median(areas)):.1f} µm²")
        elif whole:
            lines.append(f"Density: {result.count / whole * 1e6:,.0f} per Mpx (scale unknown)")
        return lines

    def table(self, result, data) -> ResultTable | None:
        if not result.count:
            return None
        xy = np.asarray(result.xy, float)[:MAX_TABLE_ROWS]
        return ResultTable(["#", "x", "y", "score"],
                           [np.arange(1, len(xy) + 1), xy[:, 0], xy[:, 1], np.asarray(result.score)[:len(xy)]],
                           [str, "{:.1f}".format, "{:.1f}".format, "{:.2f}".format], focus=xy)

    def draw_slide(self, view, entry) -> None:
        view.show_markers(np.asarray(entry.result.xy, float).reshape(-1, 2), getattr(entry.result, "params", None))

    def check(self, result, data, model, manifest) -> str:
        xy = finite("nucleus positions", result.xy)
        require(result.count > 0, "no nuclei detected on the H&E sample")
        require(xy.ndim == 2 and xy.shape[1] == 2, f"positions have shape {xy.shape}, not (N, 2)")
        rows, cols = data_shape(data)[:2]
        require(bool((xy[:, 0] >= 0).all() and (xy[:, 0] < cols).all()
                     and (xy[:, 1] >= 0).all() and (xy[:, 1] < rows).all()),
                "a detection lies outside the image")
        score = finite("scores", result.score)
        require(score.shape[0] == result.count, "one score per detection expected")
        check_provenance(result, model, manifest)
        return f"{result.count} nuclei, score {float(score.min()):.2f}-{float(score.max()):.2f}"
