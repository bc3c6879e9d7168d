"""Slide view and nuclei: level-of-detail switch (density map / markers), the drawn detection
region (ROI) and the banner for an estimated scale. Real image (CRCHisto img1) throughout."""
from __future__ import annotations

import numpy as np
import pytest
from desktop_helpers import open_and_wait, run_and_wait
from PySide6.QtCore import QPointF, QRectF

from desktop.session import ResultEntry
from desktop.views.slide_view import LOD_MAX_MARKERS, density_rgba

IMG1 = ("histo", "crchisto", "img1", "img1.png")


def _add(window, result):
    window.session.add_result(ResultEntry(task="detect-nuclei", result=result, model="t", device="CPU", seconds=0.1))


def _detections(xy, mpp=0.5, **extra):
    from engine.results import Detections

    return Detections(xy=np.asarray(xy, float), score=np.full(len(xy), 0.9, np.float32), model="t",
                      sha256="0" * 64, mpp=mpp, **extra)


def test_density_rgba_counts_points_per_bin():
    xy = np.array([[1.0, 1.0], [2.0, 2.0], [3.0, 1.0], [90.0, 50.0]])
    rgba, size = density_rgba(xy, 100, 200, bins=20)
    assert size == 10 and rgba.shape == (10, 20, 4)
    assert rgba[0, 0, 3] > rgba[5, 9, 3] > 0  # 3 points beat 1 point; both visible
    assert rgba[9, 19, 3] == 0  # empty bins are transparent


def test_level_of_detail_switches_between_density_and_markers(qtbot, window, data_dir, errors):
    open_and_wait(qtbot, window, data_dir.joinpath(*IMG1))
    view = window.slide_view
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 500, size=(LOD_MAX_MARKERS + 3000, 2))  # far too many to draw at Fit
    _add(window, _detections(xy))
    view.fit()
    qtbot.waitUntil(lambda: view.lod_mode == "density", timeout=5_000)
    assert view.density.isVisible() and not view.markers.isVisible()
    assert view.density.image is not None
    # zoom into a 40 x 40 px window: markers, and only those in view
    view.vb.setRange(QRectF(100, 100, 40, 40), padding=0)
    qtbot.waitUntil(lambda: view.lod_mode == "markers", timeout=5_000)
    assert view.markers.isVisible() and not view.density.isVisible()
    (x0, x1), (y0, y1) = view.vb.viewRange()
    inside = ((xy[:, 0] >= x0) & (xy[:, 0] <= x1) & (xy[:, 1] >= y0) & (xy[:, 1] <= y1)).sum()
    assert 0 < len(view.markers.points()) == inside < 1000
    # back out to the whole image: the density map again
    view.fit()
    qtbot.waitUntil(lambda: view.lod_mode == "density", timeout=5_000)
    # hiding the nucleus layer hides the density map too
    window.results.markers_box.setChecked(False)
    assert not view.density.isVisible() and not view.markers.isVisible()
    # a few nuclei are markers even at Fit
    window.results.markers_box.setChecked(True)
    _add(window, _detections(xy[:30]))
    view.fit()
    qtbot.waitUntil(lambda: view.lod_mode == "markers", timeout=5_000)
    assert len(view.markers.points()) == 30
    assert errors == []


class _Drag:
    """The parts of a pyqtgraph MouseDragEvent the view uses (positions in ViewBox item pixels)."""

    def __init__(self, start, end, finish):
        self._start, self._end, self._finish = start, end, finish
        self.accepted = False

    def buttonDownPos(self):  # noqa: N802 - Qt naming
        return self._start

    def pos(self):
        return self._end

    def isFinish(self):  # noqa: N802
        return self._finish

    def isStart(self):  # noqa: N802
        return False

    def accept(self):
        self.accepted = True


def test_drawn_region_limits_detection(qtbot, window, data_dir, errors):
    from engine.tasks import TASKS

    if "detect-nuclei" not in TASKS:
        pytest.skip("no detect-nuclei task")
    open_and_wait(qtbot, window, data_dir.joinpath(*IMG1))
    view = window.slide_view
    view.fit()
    view.region_btn.setChecked(True)
    a = view.vb.mapFromView(QPointF(100, 120))
    b = view.vb.mapFromView(QPointF(300, 260))
    mid = view.vb.mapFromView(QPointF(200, 200))
    ev = _Drag(a, mid, False)
    view._mouse_drag(ev)  # while dragging: the rectangle follows, nothing chosen yet
    assert ev.accepted and view.roi_item.isVisible() and window.session.roi is None
    view._mouse_drag(_Drag(a, b, True))
    x, y, w, h = window.session.roi
    assert (x, y) == pytest.approx((100, 120), abs=2) and (w, h) == pytest.approx((200, 140), abs=3)
    assert not view.region_btn.isChecked()  # one rectangle per press of the button
    r = view.roi_item.rect()
    assert (r.x(), r.y(), r.width(), r.height()) == (x, y, w, h)
    entry = run_and_wait(qtbot, window, "detect-nuclei")
    det = entry.result
    assert det.params["roi"] == [x, y, w, h]
    assert det.count > 0
    assert ((det.xy[:, 0] >= x - 0.5) & (det.xy[:, 0] < x + w) & (det.xy[:, 1] >= y - 0.5)
            & (det.xy[:, 1] < y + h)).all()
    assert det.area_px == w * h
    # opening another image clears the region
    open_and_wait(qtbot, window, data_dir.joinpath(*IMG1))
    assert window.session.roi is None and not view.roi_item.isVisible()
    assert errors == []


def test_estimated_scale_banner_confirm_and_set(qtbot, window, data_dir, errors, monkeypatch):
    open_and_wait(qtbot, window, data_dir.joinpath(*IMG1))
    view = window.slide_view
    est = {"mpp": 0.26, "magnification": "40x", "confidence": 0.9, "method": "test"}
    _add(window, _detections([[10.0, 10.0]], mpp=0.26, params={"mpp_source": "estimated", "mpp_estimate": est}))
    assert view.banner.isVisible() and "ESTIMATED" in view.banner.label.text() and "0.26" in view.banner.label.text()
    assert "Scale ESTIMATED" in window.results.summary.text()
    asked = []
    monkeypatch.setattr(window, "ask_mpp", lambda suggested=None: asked.append(suggested))
    view.banner.set_btn.click()
    assert asked == [pytest.approx(0.26)]
    assert not view.scale_bar.isVisible()
    view.banner.confirm_btn.click()
    assert not view.banner.isVisible() and view.confirmed_mpp == pytest.approx(0.26)
    view.fit()
    qtbot.waitUntil(view.scale_bar.isVisible, timeout=5_000)
    # a result with a known scale shows no banner
    _add(window, _detections([[10.0, 10.0]], params={"mpp_source": "given (--mpp)"}))
    assert not view.banner.isVisible()
    assert errors == []
