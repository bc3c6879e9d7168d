"""A non-blocking banner over the CT view listing the files of a series that were left out.

The DICOM reader loads the readable slices of a series and names the others with the
reason in ``metadata["skipped"]``; like Weasis, the viewer opens the rest and says so
in a bar the user can expand (the list) or close, without a modal dialog.
"""
from __future__ import annotations

from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPlainTextEdit, QToolButton, QVBoxLayout, QWidget

__all__ = ["SkippedBanner", "skipped_lines"]

_STYLE = ("QFrame#skippedBanner { background: #fff3cd; border-bottom: 1px solid #e0c36a; }"
          " QLabel { color: #5c4400; }")


def skipped_lines(skipped) -> list[str]:
    """``'name: reason'`` for each ``{"file", "reason"}`` entry of ``metadata["skipped"]``."""
    return [f"{s.get('file', '?')}: {s.get('reason', 'unreadable')}" for s in skipped or ()]


class SkippedBanner(QFrame):
    """A yellow bar: how many files were left out, Details (the list with reasons), Close."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("skippedBanner")
        self.setStyleSheet(_STYLE)
        self.text = QLabel("")
        self.text.setWordWrap(True)
        self.details_btn = QToolButton(text="Details")
        self.details_btn.setCheckable(True)
        self.details_btn.toggled.connect(lambda on: self.details.setVisible(on))
        self.close_btn = QToolButton(text="✕")
        self.close_btn.setToolTip("Hide this message")
        self.close_btn.clicked.connect(self.hide)
        self.details = QPlainTextEdit()
        self.details.setReadOnly(True)
        self.details.setMaximumHeight(110)
        self.details.setVisible(False)
        top = QHBoxLayout()
        top.setContentsMargins(6, 3, 6, 3)
        top.addWidget(self.text, 1)
        top.addWidget(self.details_btn)
        top.addWidget(self.close_btn)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        lay.addLayout(top)
        lay.addWidget(self.details)
        self.setVisible(False)

    def show_skipped(self, skipped, n_loaded: int) -> None:
        """Show the banner for the *skipped* entries (hide it when there are none)."""
        lines = skipped_lines(skipped)
        if not lines:
            self.hide()
            return
        n = len(lines)
        first = lines[0] if n == 1 else f"{lines[0]} (and {n - 1} more)"
        self.text.setText(f"⚠ {n} file{'s' if n > 1 else ''} of this series could not be read and "
                          f"{'were' if n > 1 else 'was'} left out; showing the {n_loaded} readable "
                          f"slice{'s' if n_loaded != 1 else ''}. {first}")
        self.details.setPlainText("\n".join(lines))
        self.details_btn.setChecked(False)
        self.show()
