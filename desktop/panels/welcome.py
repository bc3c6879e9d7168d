"""The welcome page shown in the main window before any file is open."""
from __future__ import annotations

from typing import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QPushButton, QVBoxLayout, QWidget

__all__ = ["WELCOME", "welcome_page"]

WELCOME = """<h2>Latent</h2>
<p>Open a CT series (DICOM folder), an H&amp;E image or slide, an ECG or an EEG recording:<br>
<b>File › Open</b>, <b>File › Open DICOM folder</b>, drag a file onto this window,
or try a bundled sample from <b>Help › Open sample</b>.</p>
<p>Then choose a task in the <b>Analysis</b> panel and press <b>Run</b>.</p>"""


def welcome_page(open_file: Callable[[], None], open_folder: Callable[[], None]) -> QWidget:
    """The welcome text with "Open file…" and "Open DICOM folder…" buttons calling the two slots."""
    welcome = QWidget()
    wl = QVBoxLayout(welcome)
    text = QLabel(WELCOME)
    text.setWordWrap(True)
    text.setAlignment(Qt.AlignmentFlag.AlignCenter)
    wl.addStretch(1)
    wl.addWidget(text)
    for label, slot in (("Open file…", open_file), ("Open DICOM folder…", open_folder)):
        b = QPushButton(label)
        b.setMaximumWidth(260)
        b.clicked.connect(slot)
        wl.addWidget(b, 0, Qt.AlignmentFlag.AlignHCenter)
    wl.addStretch(2)
    return welcome
