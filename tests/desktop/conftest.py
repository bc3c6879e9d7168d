"""Desktop test set-up: offscreen Qt, preferences in a temporary folder, a main window
fixture, a recorder that replaces the error dialog (never the engine), and the CT view fixtures."""
from __future__ import annotations

import gc
import os
import tempfile

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["LATENT_SETTINGS_DIR"] = tempfile.mkdtemp(prefix="latent-settings-")

@pytest.fixture
def errors(monkeypatch, questions):
    """Every error dialog the app would show, as a list of messages (no modal loop)."""
    from desktop.dialogs import messages

    seen: list[str] = []
    monkeypatch.setattr(messages, "show_error", lambda parent, title, text: seen.append(text))
    monkeypatch.setattr(messages, "show_info", lambda parent, title, text: seen.append("info: " + text))
    # the questions before results are lost (or a running task stops) answer "go ahead"; see `questions`
    monkeypatch.setattr(messages, "ask_unsaved", lambda parent, text: questions.append("unsaved: " + text) or "discard")
    monkeypatch.setattr(messages, "ask_quit_running", lambda parent, text: questions.append("running: " + text) or True)
    return seen


@pytest.fixture
def questions():
    """Every Save/Discard/Cancel or quit-while-running question the app asked (with the errors fixture)."""
    return []


@pytest.fixture
def window(qtbot, errors):
    from desktop.main_window import MainWindow

    win = MainWindow()
    qtbot.addWidget(win)
    win.resize(1366, 768)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.shutdown()


@pytest.fixture(autouse=True)
def _collect_before_each_test():
    """Collect earlier tests' windows at a safe point, before any new widget is built.

    A closed window left to Python's cyclic garbage collector is destroyed whenever the
    collector happens to run: once that was inside a Qt signal disconnect while the next
    test built its window, and the destroyed QActions waited on the mutex that disconnect
    held (a deadlock seen in a full run).
    """
    gc.collect()
    yield


# the CT viewing tests (test_ct_viewing.py, test_ct_mpr_ruler.py): LIDC-IDRI-0001, read once per
# test module, and a shown CtView with it loaded
LIDC = ("ct", "lidc_idri", "LIDC-IDRI-0001")


@pytest.fixture(scope="module")
def lidc(data_dir):
    from engine.io.dicom import read_dicom

    return read_dicom(data_dir.joinpath(*LIDC))


@pytest.fixture
def view(qtbot, lidc):
    from desktop.session import Session
    from desktop.views.ct_view import CtView

    session = Session()
    v = CtView(session)
    qtbot.addWidget(v)
    v.resize(900, 700)
    v.show()
    qtbot.waitExposed(v)
    session.set_data(lidc, lidc.path)
    return v
