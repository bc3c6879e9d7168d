"""The CT window presets have one source of truth: engine.ct_windows.WINDOW_PRESETS."""
from __future__ import annotations

import numpy as np
import pytest

from engine.ct_windows import WINDOW_PRESETS


@pytest.fixture
def ct_view(qtbot):
    from desktop.session import Session
    from desktop.views.ct_view import CtView

    view = CtView(Session())
    qtbot.addWidget(view)
    return view


def test_preset_box_shows_exactly_the_engine_presets(ct_view):
    box = ct_view.preset_box
    shown = [box.itemText(i) for i in range(1, box.count())]  # item 0 is the "Window preset…" prompt
    assert shown == [name.capitalize() for name in WINDOW_PRESETS]
    for i, name in enumerate(WINDOW_PRESETS, start=1):
        box.setCurrentIndex(i)
        box.activated.emit(i)
        assert (ct_view.level, ct_view.width) == WINDOW_PRESETS[name], name


def test_a_series_without_its_own_window_opens_in_the_default_preset(ct_view):
    from desktop.views.ct_view import DEFAULT_WINDOW
    from engine.data import Image

    vol = np.zeros((2, 8, 8), np.float32)
    plain = Image(modality="ct", shape=vol.shape, spacing=(1.0, 1.0, 1.0), units="HU", path="<array>", array=vol)
    assert ct_view._initial_window(plain) == WINDOW_PRESETS[DEFAULT_WINDOW]
    windowed = Image(modality="ct", shape=vol.shape, spacing=(1.0, 1.0, 1.0), units="HU", path="<array>", array=vol,
                     metadata={"window_center": [-500], "window_width": [1200]})
    assert ct_view._initial_window(windowed) == (-500.0, 1200.0)
