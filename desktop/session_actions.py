"""File › Save session / Open session, and the questions asked before results are lost.

A session file (:mod:`desktop.session_files`) names the input with its sha256, the model, the
parameters, the view and the results; opening it reads the same input (refused if it changed),
puts the same results back and the view as it was. Unsaved results prompt (Save / Discard /
Cancel) before another file is opened, the file is closed or the window quits; a running task
prompts before quit.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QFileDialog

from desktop.dialogs import messages
from desktop.session import ResultEntry

__all__ = ["SessionActions", "SESSION_FILTER"]

logger = logging.getLogger("desktop")
SESSION_FILTER = "Latent session (*.json)"


class SessionActions(QObject):
    """Signals: ``saved(str)``, ``restored(str)`` (results and view are back), ``restoreFailed(str)``."""

    saved = Signal(str)
    restored = Signal(str)
    restoreFailed = Signal(str)

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.session = window.session
        self.dirty = False  # results exist that no session file holds
        self._restoring = False
        self._pending: dict | None = None
        self.session.resultAdded.connect(self._on_result)
        self.session.resultsCleared.connect(self._clean)
        self._add_menu_items()

    def _add_menu_items(self) -> None:
        w = self.window
        file_menu = w.menuBar().actions()[0].menu()
        self.open_act = QAction("Open &session…", w)
        self.open_act.setStatusTip("Open a saved session: its file, model, results and view")
        self.open_act.triggered.connect(self.ask_open)
        self.save_act = QAction("Sa&ve session…", w)
        self.save_act.setShortcut(QKeySequence.StandardKey.Save)
        self.save_act.setStatusTip("Save the open file's results, model and view to a session file")
        self.save_act.triggered.connect(self.ask_save)
        file_menu.insertAction(w.png_act, self.open_act)
        file_menu.insertAction(w.png_act, self.save_act)
        file_menu.insertSeparator(w.png_act)
        self.session.dataChanged.connect(self._update)
        self._update()

    def _update(self) -> None:
        self.save_act.setEnabled(self.session.data is not None)

    def _on_result(self, _task: str) -> None:
        self.dirty = not self._restoring

    def _clean(self) -> None:
        self.dirty = False

    # ---- questions ------------------------------------------------------------------
    def confirm_discard(self) -> bool:
        """True when the current results may go (saved, discarded, or none); False = Cancel."""
        if not self.dirty or not self.session.results:
            return True
        from engine.tasks import TASKS

        names = ", ".join(TASKS[t].title if t in TASKS else t for t in self.session.results)
        answer = messages.ask_unsaved(self.window, f"The results of {Path(self.session.path or '').name} "
                                                   f"({names}) are not saved. Save them as a session?")
        if answer == "save":
            return self.ask_save()
        return answer == "discard"

    def confirm_quit(self) -> bool:
        """Before the window closes: a running task, then unsaved results."""
        analysis = self.window.analysis
        if analysis.busy:
            from engine.tasks import TASKS

            title = TASKS[analysis.job.name].title if analysis.job.name in TASKS else "A task"
            if not messages.ask_quit_running(self.window, f"{title} is still running. Quit and cancel it?"):
                return False
            analysis.cancel()
        return self.confirm_discard()

    # ---- saving -------------------------------------------------------------------
    def ask_save(self) -> bool:
        if self.session.data is None:
            return False
        from desktop.settings import export_dir
        from engine._shared.files import stem_of

        default = str(Path(export_dir()) / f"{stem_of(self.session.path)}.session.json")
        path, _ = QFileDialog.getSaveFileName(self.window, "Save session", default, SESSION_FILTER)
        if not path:
            return False
        if not path.lower().endswith(".json"):
            path += ".json"
        return self.save(path) is not None

    def save(self, path: str | os.PathLike) -> Path | None:
        """Write the session to *path* (and its results beside it); None (after a message) on failure."""
        from desktop import session_files, view_state
        from desktop.settings import set_export_dir

        s = self.session
        results = [{"task": e.task, "result": e.result, "model": e.model, "device": e.device,
                    "seconds": e.seconds, "options": e.options} for e in s.results.values()]
        try:
            out = session_files.write_session(
                path, input_path=s.path, read_options=s.read_options, modality=s.modality, results=results,
                selected=view_state.capture_selection(self.window), view=view_state.capture(self.window))
        except (OSError, TypeError, session_files.SessionError) as exc:
            messages.show_error(self.window, "Could not save the session", f"{path}: {exc}")
            return None
        set_export_dir(str(out))
        self.dirty = False
        self.window.statusBar().showMessage(f"Session saved to {out}", 8000)
        self.saved.emit(str(out))
        return out

    # ---- restoring -----------------------------------------------------------------
    def ask_open(self) -> None:
        from desktop.settings import export_dir

        path, _ = QFileDialog.getOpenFileName(self.window, "Open session", export_dir(), SESSION_FILTER)
        if path and self.confirm_discard():
            self.restore(path)

    def restore(self, path: str | os.PathLike) -> bool:
        """Open the session's input, then put its results and view back (``restored`` when done)."""
        from desktop import session_files as sf

        try:
            doc = sf.read_session(path)
            inp = sf.check_input(doc, path)
            results = sf.load_results(doc, path)
            options = sf.decode(doc["input"].get("read_options") or {}, {})
        except (sf.SessionError, KeyError, TypeError) as exc:
            self._fail(str(exc) if isinstance(exc, sf.SessionError) else f"{path}: damaged session ({exc})")
            return False
        self._pending = {"path": str(path), "input": os.path.abspath(inp), "doc": doc, "results": results}
        opener = self.window.opener
        opener.opened.connect(self._opened)
        opener.failed.connect(self._open_failed)
        self.dirty = False
        opener.open(inp, **options)
        return True

    def _disconnect(self) -> None:
        opener = self.window.opener
        for sig, slot in ((opener.opened, self._opened), (opener.failed, self._open_failed)):
            try:
                sig.disconnect(slot)
            except (RuntimeError, TypeError):
                pass

    def _open_failed(self, _path: str, msg: str) -> None:
        self._disconnect()
        self._pending = None
        self.restoreFailed.emit(msg)

    def _opened(self, path: str) -> None:
        pending, self._pending = self._pending, None
        self._disconnect()
        if pending is None or os.path.abspath(path) != pending["input"]:
            return
        self._restoring = True
        try:
            for r in pending["results"]:
                self.session.add_result(ResultEntry(task=r["task"], result=r["result"], model=r["model"],
                                                    device=r["device"], seconds=r["seconds"], options=r["options"]))
        except Exception as exc:  # noqa: BLE001 - an unknown result type: say so, keep what opened
            self._fail(f"{pending['path']}: {exc}")
            return
        finally:
            self._restoring = False
        # the views lay out and frame the new data first; the saved view goes on top of that
        QTimer.singleShot(0, lambda: self._apply_view(pending))

    def _apply_view(self, pending: dict) -> None:
        from desktop import view_state

        doc = pending["doc"]
        try:
            view_state.apply(self.window, doc.get("view") or {}, doc.get("selected") or {})
        except Exception:  # noqa: BLE001 - the results are back; a view detail must not fail the restore
            logger.warning("could not restore the view of %s", pending["path"], exc_info=True)
        self.dirty = False
        if self.session.results:
            self.window.analysis.message.setText(f"Results restored from {Path(pending['path']).name}.")
        self.window.statusBar().showMessage(f"Session restored from {Path(pending['path']).name}", 8000)
        self.restored.emit(pending["path"])

    def _fail(self, msg: str) -> None:
        self.restoreFailed.emit(msg)
        messages.show_error(self.window, "Cannot open the session", msg)
