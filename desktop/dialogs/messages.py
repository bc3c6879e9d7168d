"""Every message box the application shows goes through these functions.

Tests replace :func:`show_error` to intercept dialogs without a modal loop.
"""
from __future__ import annotations

import logging

from PySide6.QtWidgets import QMessageBox, QWidget

logger = logging.getLogger("desktop")

__all__ = ["show_error", "show_info", "ask_yes_no", "ask_unsaved", "ask_quit_running", "set_interactive",
           "errors_seen"]

_interactive = True
#: Every error shown (or, when not interactive, logged) in this process, newest last.
errors_seen: list[str] = []


def set_interactive(on: bool) -> None:
    """Automation runs without modal dialogs: errors are then logged and remembered only."""
    global _interactive
    _interactive = bool(on)


def show_error(parent: QWidget | None, title: str, text: str) -> None:
    """Show a modal error dialog with *text* (one or two lines that say what to do)."""
    logger.warning("%s: %s", title, text)
    errors_seen.append(text)
    if not _interactive:
        return
    box = QMessageBox(QMessageBox.Icon.Critical, title, text, QMessageBox.StandardButton.Ok, parent)
    box.exec()
    # Transient windows are deleted explicitly once closed: left to Python's cyclic GC, a parented
    # dialog can be destroyed at an arbitrary point (inside another object's signal disconnect).
    box.deleteLater()


def show_info(parent: QWidget | None, title: str, text: str) -> None:
    if not _interactive:
        logger.info("%s: %s", title, text)
        return
    QMessageBox.information(parent, title, text)


def ask_yes_no(parent: QWidget | None, title: str, text: str) -> bool:
    answer = QMessageBox.question(parent, title, text)
    return answer == QMessageBox.StandardButton.Yes


def ask_unsaved(parent: QWidget | None, text: str) -> str:
    """Results would be lost: ``"save"``, ``"discard"`` or ``"cancel"`` (unattended: ``"discard"``)."""
    if not _interactive:
        return "discard"
    b = QMessageBox.StandardButton
    box = QMessageBox(QMessageBox.Icon.Warning, "Unsaved results", text, b.Save | b.Discard | b.Cancel, parent)
    box.setDefaultButton(b.Save)
    answer = box.exec()
    box.deleteLater()
    return {b.Save: "save", b.Discard: "discard"}.get(b(answer), "cancel")


def ask_quit_running(parent: QWidget | None, text: str) -> bool:
    """A task is running: quit anyway (cancelling it)? (unattended: yes)."""
    if not _interactive:
        return True
    answer = QMessageBox.question(parent, "A task is running", text)
    return answer == QMessageBox.StandardButton.Yes
