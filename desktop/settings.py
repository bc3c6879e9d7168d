"""User preferences in QSettings: recent files, last folder, geometry, overlay settings.

Set ``LATENT_SETTINGS_DIR`` to keep them in an INI file in that folder (tests and
portable installs do this).
"""
from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QSettings

__all__ = ["settings", "restore_window", "recent_files", "add_recent_file", "remove_recent_file", "last_dir",
           "set_last_dir", "export_dir", "set_export_dir", "MAX_RECENT"]

MAX_RECENT = 10
ORG, APP = "Latent", "Latent"


def settings() -> QSettings:
    folder = os.environ.get("LATENT_SETTINGS_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        return QSettings(str(Path(folder) / "latent.ini"), QSettings.Format.IniFormat)
    return QSettings(ORG, APP)


def _as_list(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    return [str(v) for v in value]


def recent_files() -> list[str]:
    return _as_list(settings().value("recent_files", []))


def add_recent_file(path: str) -> list[str]:
    path = os.path.abspath(path)
    items = [p for p in recent_files() if p != path]
    items.insert(0, path)
    items = items[:MAX_RECENT]
    settings().setValue("recent_files", items)
    return items


def remove_recent_file(path: str) -> list[str]:
    items = [p for p in recent_files() if p != path]
    settings().setValue("recent_files", items)
    return items


def last_dir() -> str:
    value = settings().value("last_dir", "")
    return str(value) if value and os.path.isdir(str(value)) else str(Path.home())


def set_last_dir(path: str) -> None:
    p = Path(path)
    settings().setValue("last_dir", str(p if p.is_dir() else p.parent))


def _inside_install(folder: Path) -> bool:
    """Inside the application's own folder (the bundled samples, the repository): no place to write."""
    from desktop.resources import resources_dir

    root = resources_dir().parent.resolve()
    try:
        folder.resolve().relative_to(root)
        return True
    except ValueError:
        return False


def documents_dir() -> str:
    from PySide6.QtCore import QStandardPaths

    docs = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation)
    return docs if docs and os.path.isdir(docs) else str(Path.home())


def export_dir() -> str:
    """Where dialogs that write files start: the last folder written to, else the last folder opened,
    else Documents; never inside the install folder (opening a bundled sample must not lead there)."""
    s = settings()
    for value in (s.value("last_export_dir", ""), s.value("last_dir", "")):
        if value and os.path.isdir(str(value)) and not _inside_install(Path(str(value))):
            return str(value)
    return documents_dir()


def set_export_dir(path: str) -> None:
    p = Path(path)
    settings().setValue("last_export_dir", str(p if p.is_dir() else p.parent))


def restore_window(win) -> None:
    """Give the main window its saved geometry and dock state, or a size that fits the screen."""
    from PySide6.QtCore import QByteArray

    s = settings()
    geo = s.value("window/geometry")
    if isinstance(geo, QByteArray) and not geo.isEmpty():
        win.restoreGeometry(geo)
    else:
        screen = win.screen().availableGeometry() if win.screen() else None
        w = min(1366, screen.width()) if screen else 1280
        h = min(768, screen.height()) if screen else 720
        win.resize(max(900, w - 40), max(600, h - 60))
    st = s.value("window/state")
    if isinstance(st, QByteArray) and not st.isEmpty():
        win.restoreState(st)
