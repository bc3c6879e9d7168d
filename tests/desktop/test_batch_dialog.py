"""File › Batch…: the dialog runs engine.batch.batch_task in a worker thread (real local Dask cluster),
lists each finished input's status, and Cancel stops the batch with a true manifest."""
from __future__ import annotations

import shutil

import pytest

from desktop.dialogs.batch import BatchDialog


@pytest.fixture
def images(tmp_path, data_dir):
    folder = tmp_path / "in"
    folder.mkdir()
    for i in (1, 10, 12):
        shutil.copy(data_dir / "histo" / "crchisto" / f"img{i}" / f"img{i}.png", folder)
    (folder / "broken.png").write_bytes((folder / "img1.png").read_bytes()[:3000])
    return folder


def test_batch_dialog_runs_lists_status_and_cancels(qtbot, images, tmp_path):
    from engine.batch import read_manifest

    dlg = BatchDialog()
    qtbot.addWidget(dlg)
    dlg.task.setCurrentIndex(dlg.task.findData("detect-nuclei"))
    dlg.set_inputs([images / "img1.png", images / "broken.png"])
    dlg.out_dir.setText(str(tmp_path / "out"))
    with qtbot.waitSignal(dlg.batchDone, timeout=120_000) as done:
        dlg.run_btn.click()
    assert done.args == ["ok"]
    table = {dlg.table.item(r, 0).text(): (dlg.table.item(r, 1).text(), dlg.table.item(r, 2).text())
             for r in range(dlg.table.rowCount())}
    assert table["img1.png"] == ("ok", "")
    assert table["broken.png"][0] == "error" and "truncated" in table["broken.png"][1]
    assert dlg.result.count("ok") == 1 and dlg.run_btn.isEnabled()

    # Cancel after the first input: the batch stops, the manifest lists only finished inputs
    dlg.set_inputs([images])
    dlg.out_dir.setText(str(tmp_path / "cancel"))
    dlg.rowFinished.connect(lambda row: dlg.cancel_btn.click())
    with qtbot.waitSignal(dlg.batchDone, timeout=120_000) as done:
        dlg.run_btn.click()
    assert done.args == ["cancelled"]
    rows = read_manifest(tmp_path / "cancel" / "manifest.csv")
    assert 1 <= len(rows) < 4 and dlg.table.rowCount() == len(rows)
