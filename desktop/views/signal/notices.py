"""What the reader must know about the open recording before reading it: a truncated file
(read up to its last complete data record, as EDFbrowser does), and display filters that are on."""
from __future__ import annotations

from PySide6.QtWidgets import QLabel

__all__ = ["truncation_notice", "NoticeBar"]


def truncation_notice(data) -> str | None:
    """One line saying how much of a truncated EDF/BDF is missing, or None for a complete file."""
    info = (getattr(data, "metadata", None) or {}).get("truncated")
    if not info:
        return None
    return (f"Truncated file: read {info['records_read']} of {info['records_announced']} data records; "
            f"the last {info['missing_s']:g} s announced by the header are missing.")


class NoticeBar(QLabel):
    """A yellow banner over the traces, hidden when there is nothing to say."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWordWrap(True)
        self.setStyleSheet("QLabel { background: #fff3c4; color: #5a4300; border-bottom: 1px solid #e0c060;"
                           " padding: 3px 6px; }")
        self.setVisible(False)

    def show_notices(self, lines: list[str]) -> None:
        self.setText("\n".join(lines))
        self.setVisible(bool(lines))
