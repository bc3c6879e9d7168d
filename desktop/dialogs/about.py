"""The Help menu's texts: About (the version and the library/device report, engine._shared.sysinfo.sys_info)
and Mouse and keys (:data:`HELP_TEXT`)."""
from __future__ import annotations

import threading

from PySide6.QtCore import Signal
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QPlainTextEdit, QVBoxLayout

__all__ = ["AboutDialog", "about_text", "HELP_TEXT", "show_help", "show_about"]


def about_text() -> str:
    from engine._shared.sysinfo import sys_info

    try:
        return sys_info()
    except Exception as exc:  # noqa: BLE001 - the About box must always open
        return f"version information unavailable: {exc}"


class AboutDialog(QDialog):
    infoReady = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        import engine

        self.setWindowTitle("About Latent")
        head = QLabel(f"<h3>Latent {engine.__version__}</h3><p>Offline autoencoder analysis of CT, H&amp;E "
                      "histology, ECG and EEG. Runs on your GPU when there is one, otherwise on the CPU; "
                      "never uses the network.</p><p>Bundled samples and their attribution: "
                      "resources/samples/README.md.</p>")
        head.setWordWrap(True)
        text = QPlainTextEdit("collecting version information…")
        text.setReadOnly(True)
        self.text = text
        self.infoReady.connect(text.setPlainText)
        # sys_info imports torch (seconds on a cold start): never on the UI thread
        threading.Thread(target=lambda: self._emit(about_text()), daemon=True).start()
        text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        buttons.accepted.connect(self.accept)
        lay = QVBoxLayout(self)
        lay.addWidget(head)
        lay.addWidget(text, 1)
        lay.addWidget(buttons)
        self.resize(560, 440)

    def _emit(self, text: str) -> None:
        try:
            self.infoReady.emit(text)
        except RuntimeError:  # the dialog was closed meanwhile
            pass


#: Help › Mouse and keys
HELP_TEXT = """CT: wheel or Up/Down/PageUp/PageDown = slice; right-drag = window (left/right) and level (up/down);
Ctrl+wheel = zoom; left-drag = pan; W/L tool makes left-drag adjust window/level; presets in the combo box;
plane box = axial / coronal / sagittal; Ruler tool: left-drag measures in mm, Delete removes the slice's rulers.
Slides: wheel = zoom; left-drag = pan; Fit / 1:1 buttons; click a nucleus in the Results table to centre on it.
Signals: Left/Right or PageUp/PageDown = page; Home/End; +/- = gain of the selected channels (all if none);
tick channels in the list to show them; HP/LP/Notch filters affect the display only; click the overview to jump.
Ctrl+R runs the selected task, Esc cancels it, Ctrl+K compares original / reconstruction / anomaly."""


def show_help(parent) -> None:
    """Help › Mouse and keys."""
    from desktop.dialogs import messages

    messages.show_info(parent, "Mouse and keys", HELP_TEXT)


def show_about(parent) -> None:
    """Help › About: modal, freed explicitly once closed (see desktop/dialogs/messages.py)."""
    dlg = AboutDialog(parent)
    dlg.exec()
    dlg.deleteLater()
