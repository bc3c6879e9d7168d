"""Analysis › Adapt model to my data…: the dialog runs engine.training.finetune in a worker thread, shows
the before/after table and figure, saves into the user model folder, and the model becomes selectable."""
from __future__ import annotations

from pathlib import Path

import pytest

from desktop.dialogs.adapt import AdaptDialog, adaptable_models

CT = Path(__file__).resolve().parents[2] / "resources" / "samples" / "ct" / "LIDC-IDRI-0001-nodule"


# every test here installs user models into its own (not yet created) folder
pytestmark = pytest.mark.usefixtures("user_models")


def test_adaptable_models_cover_every_kind():
    kinds = dict(adaptable_models())
    assert kinds["ct-dae"] == "reconstruct" and kinds["ecg-dae"] == "denoise"
    assert kinds["histo-nuclei"] == "nuclei" and kinds["eeg-seizure"] == "seizure" and kinds["ecg-beats"] == "beats"


def test_adapt_dialog_runs_shows_figures_and_installs(qtbot, user_models):
    from desktop.panels.analysis import bundled_models

    dlg = AdaptDialog()
    qtbot.addWidget(dlg)
    dlg.select_model("histo-nuclei")
    assert not dlg.ann_row.isHidden() and dlg.labels_row.isHidden()
    dlg.select_model("ct-dae")
    assert dlg.ann_row.isHidden()
    dlg.set_inputs([CT])
    dlg.steps.setValue(1)
    dlg.name.setText("ct-mysite")
    adapted = []
    dlg.modelAdapted.connect(adapted.append)
    with qtbot.waitSignal(dlg.adaptDone, timeout=180_000) as done:
        dlg.run_btn.click()
    assert done.args == ["ok"], dlg.status.text()
    assert adapted == ["ct-mysite"] and (user_models / "ct-mysite.safetensors").exists()
    assert "before" in dlg.table.text() and dlg.figure.pixmap() is not None and not dlg.figure.pixmap().isNull()
    assert "ct-mysite" in bundled_models("reconstruct", "ct")  # selectable in the Analysis panel


def test_adapt_dialog_cancel_saves_nothing(qtbot, user_models):
    dlg = AdaptDialog()
    qtbot.addWidget(dlg)
    dlg.select_model("ct-dae")
    dlg.set_inputs([CT])
    dlg.steps.setValue(500)
    with qtbot.waitSignal(dlg.adaptDone, timeout=180_000) as done:
        dlg.run_btn.click()
        qtbot.waitUntil(lambda: "step" in dlg.status.text(), timeout=120_000)
        dlg.cancel_btn.click()
    assert done.args == ["cancelled"]
    assert not list(user_models.glob("*.safetensors")) if user_models.exists() else True


def test_menu_entry_opens_the_dialog(qtbot, window):
    acts = {a.text(): a for m in window.menuBar().actions() if m.menu() for a in m.menu().actions()}
    acts["&Adapt model to my data…"].trigger()
    assert window.adapt_dialog.isVisible()
    window.adapt_dialog.close()
