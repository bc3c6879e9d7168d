"""What a session remembers of the window: the view (slice, window/level, zoom, page, Compare), the
overlay layers, the selected task, model and result. Read and set through the widgets' public
attributes and methods only, so the views need not know about sessions.
"""
from __future__ import annotations

from typing import Any

__all__ = ["capture", "apply", "capture_selection"]


def _range(vb) -> list[list[float]]:
    return [[float(a), float(b)] for a, b in vb.viewRange()]


def _set_range(vb, rng) -> None:
    if rng and len(rng) == 2:
        vb.setRange(xRange=rng[0], yRange=rng[1], padding=0)


def capture(window) -> dict[str, Any]:
    """The state of the view showing the open data, and the overlay settings."""
    s = window.session
    state: dict[str, Any] = {"modality": s.modality,
                             "overlay": {k: getattr(s.overlay, k) for k in vars(s.overlay)}}
    view = window.current_view()
    if view is window.ct_view:
        state.update(slice=int(view.index), level=float(view.level), width=float(view.width),
                     range=_range(view.panes[0].vb))
    elif view is window.slide_view:
        state.update(range=_range(view.vb))
    elif view is window.signal_view:
        state.update(start=float(view.start), window=float(view.window))
        gain = getattr(view, "gain", None)
        if gain is not None:
            state["gain"] = [float(g) for g in gain]
    box = getattr(view, "compare_box", None)
    if box is not None:
        state["compare"] = bool(box.isChecked())
    return state


def capture_selection(window) -> dict[str, Any]:
    """The task and model chosen in the Analysis panel and the result shown in the Results panel."""
    return {"task": window.analysis.task, "model": window.analysis.model,
            "result": window.results.result_box.currentData()}


def apply(window, state: dict[str, Any], selected: dict[str, Any]) -> None:
    """Put the view back as :func:`capture` saw it (call once the data and results are shown)."""
    _apply_overlay(window, state.get("overlay") or {})
    if selected.get("task"):
        window.analysis.select_task(selected["task"])
    model = selected.get("model")
    if model:
        box = window.analysis.model_box
        i = box.findData(model)
        if i < 0:  # a weights file chosen by the user
            box.insertItem(0, str(model).replace("\\", "/").rsplit("/", 1)[-1], model)
            i = 0
        box.setCurrentIndex(i)
    if selected.get("result") is not None:
        i = window.results.result_box.findData(selected["result"])
        if i >= 0:
            window.results.result_box.setCurrentIndex(i)
    view = window.current_view()
    box = getattr(view, "compare_box", None)
    if box is not None and "compare" in state and box.isEnabled():
        box.setChecked(bool(state["compare"]))
    if view is window.ct_view:
        if "level" in state:
            view.set_window(state["level"], state["width"])
        if "slice" in state:
            view.set_slice(int(state["slice"]))
        _set_range(view.panes[0].vb, state.get("range"))
    elif view is window.slide_view:
        _set_range(view.vb, state.get("range"))
    elif view is window.signal_view:
        if "window" in state:
            view.set_window(float(state["window"]))
        gain = getattr(view, "gain", None)
        if gain is not None and len(state.get("gain", ())) == len(gain):
            gain[:] = state["gain"]
        if "start" in state:
            view.set_start(float(state["start"]))


def _apply_overlay(window, ov: dict[str, Any]) -> None:
    """Through the Results panel's controls, so they show what the views draw."""
    p = window.results
    if "visible" in ov:
        p.visible_box.setChecked(bool(ov["visible"]))
    if "show_markers" in ov:
        p.markers_box.setChecked(bool(ov["show_markers"]))
    if "show_reconstruction" in ov:
        p.trace_box.setChecked(bool(ov["show_reconstruction"]))
    if ov.get("colormap"):
        p.cmap_box.setCurrentText(str(ov["colormap"]))
    if "opacity" in ov:
        p.opacity.setValue(int(round(float(ov["opacity"]) * 100)))
    if "threshold" in ov:
        p.threshold.setValue(float(ov["threshold"]))
