"""Results appear as layers: typed engine results (built from real data and real reference
annotations, so the expected drawing is known) are drawn, tabulated and linked to the view.

The real tasks producing such results are exercised in test_tasks.py.
"""
from __future__ import annotations

import csv

import numpy as np
import pytest
from desktop_helpers import open_and_wait

from desktop.session import ResultEntry


def _add(window, task, result, model="test-model"):
    window.session.add_result(ResultEntry(task=task, result=result, model=model, device="CPU", seconds=0.1))


def test_detections_markers_table_and_centring(qtbot, window, data_dir, errors):
    from engine.results import Detections

    data = open_and_wait(qtbot, window, data_dir / "histo" / "crchisto" / "img1" / "img1.png")
    with open(data_dir / "histo" / "crchisto" / "centroids.csv") as fh:
        xy = np.array([[float(r["x"]), float(r["y"])] for r in csv.DictReader(fh)
                       if r["image"] == "img1" and r["label"] == "detection"])
    assert len(xy) == 29
    det = Detections(xy=xy, score=np.linspace(0.5, 1, len(xy)).astype(np.float32), model="ref", sha256="0" * 64,
                     mpp=0.5)
    _add(window, "detect-nuclei", det)
    view = window.slide_view
    pts = np.array([[p.pos().x(), p.pos().y()] for p in view.markers.points()])
    np.testing.assert_allclose(pts, xy)
    assert "Nuclei: 29" in window.results.summary.text()
    assert "per mm²" in window.results.summary.text()
    model = window.results.table.model()
    assert model.rowCount() == 29
    # clicking a row centres the view on that nucleus
    window.results.table.clicked.emit(model.index(7, 0))
    (x0, x1), (y0, y1) = view.vb.viewRange()
    assert (x0 + x1) / 2 == pytest.approx(xy[7, 0], abs=1) and (y0 + y1) / 2 == pytest.approx(xy[7, 1], abs=1)
    # the markers layer can be hidden
    window.results.markers_box.setChecked(False)
    assert not view.markers.isVisible()
    assert errors == []


def test_ct_anomaly_overlay_and_linked_compare_views(qtbot, window, data_dir, errors):
    from engine.results import AnomalyMap, Reconstruction, ReconstructionResult

    data = open_and_wait(qtbot, window, data_dir / "ct" / "dcmqi_liver_ct3")
    vol = data.array
    recon = vol.copy()
    anomaly = np.zeros(vol.shape, np.float32)
    anomaly[:, 200:260, 300:380] = 1.8  # one hot block, the rest typical
    res = ReconstructionResult(Reconstruction(recon, "HU", "ct-test", "a" * 64),
                               AnomalyMap(anomaly, {"p": 99.0}, "ct-test", "a" * 64))
    _add(window, "reconstruct", res)
    view = window.ct_view
    r = view.heat.mapRectToParent(view.heat.boundingRect())  # the layer covers the slice, in mm
    assert (r.width(), r.height()) == pytest.approx((512 * data.spacing[2], 512 * data.spacing[1]))
    heat = view.heat.image
    assert heat.shape == (512, 512, 4)
    assert (heat[:200, :, 3] == 0).all(), "typical tissue is not coloured"
    assert (heat[210:250, 310:370, 3] > 0).all()
    # threshold above the block hides it; opacity changes alpha
    window.results.threshold.setValue(1.9)
    assert (view.heat.image[..., 3] == 0).all()
    window.results.threshold.setValue(0.5)
    window.results.opacity.setValue(100)
    assert view.heat.image[230, 340, 3] == 255
    # compare: three linked panes following the same slice
    assert view.compare_box.isEnabled()
    window.toggle_compare()
    assert view.compare_box.isChecked() and view.panes[1].isVisible() and view.panes[2].isVisible()
    view.set_slice(0)
    np.testing.assert_array_equal(view.images[1].image, recon[0])
    for item in view.images:
        assert item.mapRectToParent(item.boundingRect()) == view.images[0].mapRectToParent(
            view.images[0].boundingRect())
    view.panes[0].vb.setRange(xRange=(50, 150), yRange=(50, 150), padding=0)
    assert view.panes[2].vb.viewRange()[0] == pytest.approx([50, 150], abs=1)
    assert errors == []


def test_beat_scores_track_table_and_jump(qtbot, window, data_dir, errors):
    from engine.results import BeatScores

    data = open_and_wait(qtbot, window, data_dir / "ecg" / "mitdb" / "100")
    beats = [a for a in data.annotations if a.description in ("N", "A", "V")]
    sample = np.array([a.sample for a in beats])
    symbol = tuple(a.description for a in beats)
    score = np.array([0.1 if s == "N" else 0.9 for s in symbol], np.float32)
    _add(window, "score-beats", BeatScores(sample, symbol, score, "ecg-test", "b" * 64, threshold=0.5))
    view = window.signal_view
    assert view.scores.isVisible() and view.scores.kind == "beats"
    n_abnormal = int((score > 0.5).sum())
    assert len(view.hot_times) == n_abnormal > 0
    assert f"above threshold: {n_abnormal}" in window.results.summary.text()
    model = window.results.table.model()
    assert model.rowCount() == len(beats)
    top_time = float(model.data(model.index(0, 0)))
    assert model.data(model.index(0, 1)) != "N"  # most abnormal first
    window.results.table.clicked.emit(model.index(0, 0))
    assert view.start == pytest.approx(max(0.0, top_time - view.window / 2), abs=0.01)
    assert errors == []


def test_segment_scores_and_denoised_trace(qtbot, window, data_dir, errors):
    from engine.data import Signal
    from engine.results import DenoisedSignal, SegmentScores

    data = open_and_wait(qtbot, window, data_dir / "eeg" / "eegmmidb" / "S001R03.edf")
    win = int(4 * data.sfreq)
    starts = np.arange(0, data.n_samples - win, win)
    score = np.linspace(0, 1, len(starts)).astype(np.float32)
    seg = SegmentScores(starts, starts + win, score, (score > 0.8).astype(int), "eeg-test", "c" * 64, threshold=0.8)
    _add(window, "score-segments", seg)
    view = window.signal_view
    assert view.scores.kind == "segments"
    assert len(view.hot_times) == int((score > 0.8).sum())
    smooth = Signal.from_array(data.data * 0.5, sfreq=data.sfreq, modality="eeg", channels=data.channels)
    _add(window, "denoise", DenoisedSignal(smooth, "eeg-test", "d" * 64))
    vis = view.visible_channels()
    assert len(view.overlay_curves) == len(vis)
    _, y_orig = view.curves[vis[0]].getData()
    _, y_den = view.overlay_curves[0].getData()
    # the denoised trace (half the amplitude) is drawn on the same lane and scale
    np.testing.assert_allclose(y_den - y_den.mean(), 0.5 * (y_orig - y_orig.mean()), atol=1e-3)
    window.results.trace_box.setChecked(False)
    assert view.overlay_curves == []
    assert errors == []


def test_signal_anomaly_bands_follow_their_channels(qtbot, window, data_dir, errors):
    from engine.results import AnomalyMap, Reconstruction, ReconstructionResult

    data = open_and_wait(qtbot, window, data_dir / "eeg" / "eegmmidb" / "S001R03.edf")
    view = window.signal_view
    anomaly = np.zeros(data.shape, np.float32)
    hot_ch = 3
    anomaly[hot_ch, int(2 * data.sfreq):int(4 * data.sfreq)] = 1.5  # one channel, 2 s..4 s
    res = ReconstructionResult(Reconstruction(data.data, "uV", "eeg-test", "e" * 64),
                               AnomalyMap(anomaly, {}, "eeg-test", "e" * 64))
    _add(window, "reconstruct", res)
    img = view.heat.image
    vis = view.visible_channels()
    assert img.shape[0] == len(vis)
    row = len(vis) - 1 - vis.index(hot_ch)  # rows are stored bottom lane first
    assert img[row, :, 3].any() and not np.delete(img, row, axis=0)[..., 3].any()
    # the band sits on the channel's lane (y = -k) and spans the hot seconds
    r = view.heat.mapRectToParent(view.heat.boundingRect())
    assert r.top() == pytest.approx(-len(vis) + 0.5) and r.height() == pytest.approx(len(vis))
    cols = np.flatnonzero(img[row, :, 3])
    t_hot = r.left() + (cols[[0, -1]] + 0.5) * r.width() / img.shape[1]
    assert t_hot[0] == pytest.approx(2.0, abs=0.05) and t_hot[1] == pytest.approx(4.0, abs=0.05)
    # the score track shows the channel mean on the fixed scale
    assert view.scores.kind == "anomaly"
    y0, y1 = view.scores.getPlotItem().getViewBox().viewRange()[1]
    assert y0 == 0.0 and 2.0 <= y1 <= 2.1  # fixed scale with a little headroom for the top label
    assert errors == []
