"""A CT series with a damaged slice opens with the readable slices and a non-blocking banner
that lists the file left out and why (issue 19 item 3, GUI side), like Weasis."""
from __future__ import annotations

import sys
from pathlib import Path

from desktop_helpers import open_and_wait

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))
from dicom_helpers import copy_slices, corrupt_copy  # noqa: E402 - the engine tests' helpers

SLICES = ["000026.dcm", "000011.dcm", "000062.dcm", "000040.dcm"]


def test_truncated_slice_is_listed_in_a_banner_and_the_rest_opens(qtbot, window, data_dir, tmp_path, errors):
    files = copy_slices(data_dir, SLICES, tmp_path / "series")
    corrupt_copy("truncated", files[1], files[1])
    data = open_and_wait(qtbot, window, tmp_path / "series")
    view = window.ct_view
    assert window.stack.currentWidget() is view and data.shape[0] == 3
    assert errors == [], "the damaged slice must not block the series with an error dialog"
    banner = view.banner
    assert banner.isVisible()
    text = banner.text.text()
    assert "1 file" in text and "000011.dcm" in text and "3 readable slices" in text
    (entry,) = data.metadata["skipped"]
    assert banner.details.toPlainText() == f"000011.dcm: {entry['reason']}" and "truncated" in entry["reason"]
    # the details open on request; the banner closes; the next clean series shows none
    assert not banner.details.isVisible()
    banner.details_btn.click()
    assert banner.details.isVisible()
    banner.close_btn.click()
    assert not banner.isVisible()
    files[1].write_bytes((data_dir / "ct" / "lidc_idri" / "LIDC-IDRI-0001" / "000011.dcm").read_bytes())
    corrupt_copy("truncated", files[2], files[2])
    data = open_and_wait(qtbot, window, tmp_path / "series")
    assert banner.isVisible() and "000062.dcm" in banner.text.text()
    data = open_and_wait(qtbot, window, data_dir / "ct" / "dcmqi_liver_ct3")
    assert "skipped" not in data.metadata and not banner.isVisible()
    assert errors == []
