"""Regressions found by trying the app at 1366×768 under a real X server."""
from __future__ import annotations

import numpy as np


def test_beat_scores_below_zero_stay_visible(qtbot):
    """Beat scores are centred on normal beats, so many are negative; the track must show them."""
    from desktop.views.signal_tracks import ScoreTrack

    track = ScoreTrack()
    qtbot.addWidget(track)
    score = np.array([0.29, 3.5, -0.02, -0.32, -0.78, 3.5, -0.49])
    track.show_beats(np.arange(score.size, dtype=float), score, threshold=2.66)
    lo, hi = track.getPlotItem().vb.viewRange()[1]
    assert lo <= score.min() and hi >= score.max()
    track.show_segments(np.arange(3.0), np.arange(3.0) + 1, np.array([-1.5, 0.2, 4.0]), np.array([0, 0, 1]), 2.0)
    lo, hi = track.getPlotItem().vb.viewRange()[1]
    assert lo <= -1.5 and hi >= 4.0
    track.show_beats(np.arange(3.0), np.array([0.1, 0.5, 1.0]), threshold=2.0)
    lo, hi = track.getPlotItem().vb.viewRange()[1]
    assert lo == 0.0 and hi >= 2.0


def test_results_table_gets_the_room_at_1366x768(qtbot, window):
    """The Analysis dock used to keep ~240 px of blank space, leaving the nucleus table three rows."""
    window._size_docks()
    qtbot.wait(50)
    analysis, results = window.analysis_dock.height(), window.results_dock.height()
    assert analysis <= window.analysis_dock.minimumSizeHint().height() + 40
    assert results > 2 * analysis
    table = window.results.table
    row = table.verticalHeader().defaultSectionSize()
    assert row <= table.fontMetrics().height() + 8
    assert table.minimumHeight() >= 5 * row
