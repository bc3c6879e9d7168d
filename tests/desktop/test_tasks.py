"""Each engine task runs from the Analysis panel on its modality and its result appears.

These run the real engine task generators in the app's worker thread. ``reconstruct``
uses the bundled default model when it is installed, otherwise a small untrained model
written with ``engine.weights.save`` in the documented metadata schema (the pipeline,
threading and drawing are what is tested here, not the model's quality). The other
tasks need their bundled models.
"""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from desktop_helpers import open_and_wait, run_and_wait


def _module_present(task: str) -> bool:
    from engine.tasks import TASKS

    return importlib.util.find_spec(TASKS[task].package) is not None


def _bundled(task: str, modality: str) -> bool:
    from engine.tasks import default_model
    from engine.weights import list_bundled

    return default_model(task, modality) in {m["name"] for m in list_bundled()}


def _need(task: str, modality: str) -> None:
    if not _module_present(task):
        pytest.skip(f"engine module for {task!r} is not in this repository yet")
    if task != "reconstruct" and not _bundled(task, modality):
        pytest.skip(f"bundled model for {task!r} on {modality} is not installed yet (resources/models)")


def _small_model(modality: str, tmp_path) -> str:
    """A small untrained model in the weights schema of engine.inference.preprocess, for *modality*."""
    import torch

    from engine import weights
    from engine.models import build_model

    torch.manual_seed(0)
    if modality in ("ct", "histology"):
        ch = 1 if modality == "ct" else 3
        m = build_model("conv", spatial_dims=2, in_channels=ch, channels=[4, 8]).eval()
        prep = ({"kind": "ct_window", "hu_min": -1000, "hu_max": 500, "target_spacing_mm": None}
                if modality == "ct" else {"kind": "rgb", "scale": 255.0})
        inp = {"channels": ch, "tile": 128, "overlap": 32, "size_multiple": 4}
        anomaly = {"median_size": 3, "smooth_sigma": 1.0, "mask": "none"}
    else:
        m = build_model("conv", spatial_dims=1, in_channels=1, channels=[4, 8]).eval()
        prep = {"kind": "signal", "units": "mV" if modality == "ecg" else "uV", "scale": 1.0 if modality == "ecg"
                else 50.0, "baseline": "mean"}
        inp = {"channels": 1, "channel_mode": "per_channel", "window": 512, "overlap": 64,
               "sfreq": 360.0 if modality == "ecg" else 160.0, "size_multiple": 4}
        anomaly = {"error": "abs", "smooth_s": 0.05}
    meta = {"architecture": "conv", "hparams": m.hparams, "modality": modality, "preprocessing": prep,
            "input": inp, "anomaly": anomaly, "calibration": {"p50": 0.01, "p99": 0.2, "low": "p50", "high": "p99"}}
    path = tmp_path / f"small-{modality}.safetensors"
    weights.save(m, path, meta)
    return str(path)


def _reconstruct_model(modality, tmp_path):
    return None if _bundled("reconstruct", modality) else _small_model(modality, tmp_path)


@pytest.mark.parametrize("modality,rel,options", [
    ("ct", "ct/dcmqi_liver_ct3", {}),
    ("histology", "histo/crchisto/img1/img1.png", {}),
    # one Bonn segment (1 channel, 23.6 s): the 64-channel EDF takes minutes on a 2-core CPU
    ("eeg", "eeg/bonn/A_Z/Z001.txt", {"sfreq": 173.61}),
    # ECG reconstruct runs the same windowed signal pipeline and model as ECG denoise (tested below)
])
def test_reconstruct_result_appears(qtbot, window, data_dir, tmp_path, errors, modality, rel, options):
    _need("reconstruct", modality)
    data = open_and_wait(qtbot, window, data_dir / rel, **options)
    progress = []
    window.analysis.progress.valueChanged.connect(progress.append)
    entry = run_and_wait(qtbot, window, "reconstruct", _reconstruct_model(modality, tmp_path))
    res = entry.result
    assert progress and max(progress) == 1000
    assert np.isfinite(res.anomaly.array).all()
    assert res.summary["model"]["sha256"] == res.anomaly.sha256
    assert "Anomaly: max" in window.results.summary.text()
    if modality == "ct":
        view = window.ct_view
        assert view.anomaly.shape == data.array.shape
        assert view.heat.image is not None and view.compare_box.isEnabled()
        view.compare_box.setChecked(True)
        assert view.images[1].image.shape == data.array.shape[1:]
    elif modality == "histology":
        view = window.slide_view
        assert view.recon_item.image.shape == (500, 500, 3) and view.heat.image is not None
        for item in (view.recon_item, view.heat, view.error_item):  # every layer covers the image
            r = item.mapRectToParent(item.boundingRect())
            assert (r.x(), r.y(), r.width(), r.height()) == pytest.approx((0, 0, 500, 500))
    else:
        view = window.signal_view
        assert view.scores.kind == "anomaly" and view.overlay_name == "reconstruction"
        assert len(view.overlay_curves) == len(view.visible_channels())
    assert errors == []


def test_cancel_stops_a_running_task(qtbot, window, data_dir, tmp_path, errors):
    """Cancel during a real reconstruction: the job ends as cancelled and leaves no result."""
    _need("reconstruct", "ct")
    open_and_wait(qtbot, window, data_dir / "ct" / "lidc_idri" / "LIDC-IDRI-0001")
    progress = []
    cancelled = []
    window.analysis.progress.valueChanged.connect(progress.append)
    window.analysis.taskCancelled.connect(cancelled.append)
    assert window.analysis.run_task("reconstruct", _reconstruct_model("ct", tmp_path))
    assert window.analysis.cancel_btn.isEnabled() and not window.analysis.run_btn.isEnabled()
    qtbot.waitUntil(lambda: any(0 < p < 1000 for p in progress), timeout=120_000)
    window.analysis.cancel_btn.click()
    qtbot.waitUntil(lambda: not window.analysis.busy, timeout=60_000)
    assert cancelled == ["reconstruct"]
    assert "reconstruct" not in window.session.results
    assert window.analysis.message.text() == "Cancelled."
    assert window.analysis.run_btn.isEnabled()
    assert errors == []


def test_detect_nuclei_result_appears(qtbot, window, data_dir, errors):
    _need("detect-nuclei", "histology")
    open_and_wait(qtbot, window, data_dir / "histo" / "crchisto" / "img1" / "img1.png")
    entry = run_and_wait(qtbot, window, "detect-nuclei")
    det = entry.result
    assert det.count > 0
    assert len(window.slide_view.markers.points()) == det.count
    assert window.results.table.model().rowCount() == det.count
    assert f"Nuclei: {det.count}" in window.results.summary.text()
    assert errors == []


@pytest.mark.parametrize("task", ["denoise", "score-beats"])
def test_ecg_tasks_result_appears(qtbot, window, data_dir, errors, task):
    _need(task, "ecg")
    open_and_wait(qtbot, window, data_dir / "ecg" / "mitdb" / "100")
    entry = run_and_wait(qtbot, window, task)
    view = window.signal_view
    if task == "denoise":
        assert entry.result.signal.n_samples == window.session.data.n_samples
        assert view.overlay_name == "denoised" and view.overlay_curves
    else:
        assert len(entry.result.score) > 2000  # record 100 has 2,273 beats
        assert view.scores.kind == "beats" and view.scores.isVisible()
        assert window.results.table.model().rowCount() == len(entry.result.score)
    assert errors == []


def test_score_segments_result_appears(qtbot, window, data_dir, errors):
    _need("score-segments", "eeg")
    path = next((data_dir / "eeg" / "bonn" / "E_S").glob("*.txt"))
    open_and_wait(qtbot, window, path, sfreq=173.61)
    entry = run_and_wait(qtbot, window, "score-segments")
    assert len(entry.result.score) >= 1
    assert window.signal_view.scores.kind == "segments"
    assert errors == []


def test_export_writes_files_through_the_task_writer(qtbot, window, data_dir, tmp_path, errors):
    _need("reconstruct", "eeg")
    path = next((data_dir / "eeg" / "bonn" / "A_Z").glob("*.txt"))  # small: a fast export
    open_and_wait(qtbot, window, path, sfreq=173.61)
    run_and_wait(qtbot, window, "reconstruct", _reconstruct_model("eeg", tmp_path))
    written = []
    window.export.exported.connect(written.extend)
    out = tmp_path / "out"
    window.export.export_to(out)
    qtbot.waitUntil(lambda: bool(written), timeout=60_000)
    names = {p.rsplit("/", 1)[-1] for p in written}
    assert any(n.endswith(".json") for n in names), names
    assert all((out / n).stat().st_size > 0 for n in names)
    import json

    summary = json.loads(next(out.glob("*.json")).read_text())
    assert summary["model"]["sha256"]
    # PNG snapshot of the view
    from desktop.panels.export import save_png

    png = save_png(window.current_view(), tmp_path / "view.png")
    assert png.stat().st_size > 5000
    assert errors == []


def test_eeg_denoise_result_appears(qtbot, window, data_dir, errors):
    _need("denoise", "eeg")
    path = next((data_dir / "eeg" / "bonn" / "A_Z").glob("*.txt"))
    data = open_and_wait(qtbot, window, path, sfreq=173.61)
    entry = run_and_wait(qtbot, window, "denoise")
    den = entry.result.signal
    assert den.shape == data.shape and np.isfinite(den.data).all()
    view = window.signal_view
    assert view.overlay_name == "denoised" and len(view.overlay_curves) == 1
    _, y = view.overlay_curves[0].getData()
    assert np.isfinite(y).all() and np.ptp(y) > 0
    assert errors == []


def test_opening_another_file_cancels_the_running_task(qtbot, window, data_dir, tmp_path, errors):
    """The job on the previous file is cancelled; that file is closed only once the job let go."""
    _need("reconstruct", "histology")
    first = open_and_wait(qtbot, window, data_dir / "histo" / "crchisto" / "img1" / "img1.png")
    closed = []
    object.__setattr__(first, "closer", lambda: closed.append(True))
    cancelled = []
    window.analysis.taskCancelled.connect(cancelled.append)
    assert window.analysis.run_task("reconstruct", _reconstruct_model("histology", tmp_path))
    open_and_wait(qtbot, window, data_dir / "ecg" / "mitdb" / "100")
    assert closed == [] or not window.analysis.busy  # not closed under a running job
    qtbot.waitUntil(lambda: not window.analysis.busy, timeout=120_000)
    assert cancelled == ["reconstruct"] or "reconstruct" not in window.session.results
    assert closed == [True]
    assert window.session.modality == "ecg" and "reconstruct" not in window.session.results
    assert errors == []


def test_export_of_two_results_keeps_both_summaries(qtbot, window, data_dir, tmp_path, errors):
    _need("detect-nuclei", "histology")
    open_and_wait(qtbot, window, data_dir / "histo" / "crchisto" / "img1" / "img1.png")
    run_and_wait(qtbot, window, "detect-nuclei")
    run_and_wait(qtbot, window, "reconstruct", _reconstruct_model("histology", tmp_path))
    written = []
    window.export.exported.connect(written.extend)
    window.export.export_to(tmp_path / "out")
    qtbot.waitUntil(lambda: bool(written), timeout=60_000)
    summaries = sorted(p for p in written if p.endswith("summary.json"))
    assert len(summaries) == 2 and summaries[0] != summaries[1]
    assert any(p.endswith(".geojson") for p in written) and any(p.endswith(".tif") for p in written)
    assert errors == []
