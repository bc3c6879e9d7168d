"""QApplication wiring and the command line for automation.

``python -m desktop [FILE] [--task TASK] [--screenshot PNG] [--quit] [--sfreq HZ]`` opens FILE,
runs TASK with its default model, waits for the result, saves a screenshot of the
main window and (with ``--quit``) exits 0; any failure prints ``error: ...`` and exits 2.
``python -m desktop --quit`` without FILE exits 0 as soon as the empty main window has been shown.
``--save-session S.json`` saves a session when done; ``--session S.json`` restores one instead of FILE.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QApplication

from engine.tasks import TASKS

__all__ = ["main", "build_parser", "Automation", "TASK_CHOICES"]

logger = logging.getLogger("desktop")

TASK_CHOICES = tuple(TASKS)  # the task registry (pure data: importing it loads no task)
EXIT_FAILURE = 2


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m desktop", description="Latent desktop application.")
    p.add_argument("file", nargs="?", help="file, WFDB record or DICOM folder to open")
    p.add_argument("--task", choices=TASK_CHOICES, help="run this task with its default model after opening")
    p.add_argument("--model", help="bundled model name or .safetensors file for --task (default: the task's)")
    p.add_argument("--screenshot", metavar="PNG", help="save a screenshot of the main window when done")
    p.add_argument("--quit", action="store_true", help="exit when done (0 on success, 2 on failure)")
    p.add_argument("--sfreq", type=float, metavar="HZ", help="sampling rate of a headerless text/NPY signal")
    p.add_argument("--series-uid", help="DICOM SeriesInstanceUID to open from a folder with several series")
    p.add_argument("--timeout", type=float, default=900.0, metavar="S", help="give up after S seconds (automation)")
    p.add_argument("--size", default="1366x768", metavar="WxH", help="window size for automation (default 1366x768)")
    p.add_argument("--save-session", metavar="JSON",
                   help="save a session (input sha256, model, results, view) when done")
    p.add_argument("--session", metavar="JSON", help="open a saved session instead of FILE")
    p.add_argument("--selftest", action="store_true", help="check the installation and exit")
    return p


class Automation(QObject):
    """Open a file, optionally run a task, take a screenshot, optionally quit."""

    def __init__(self, window, args, app: QApplication):
        super().__init__(window)
        self.window, self.args, self.app = window, args, app
        self.exit_code: int | None = None
        self.handled = False  # the opening (and task) asked for on the command line is over
        self.t0 = time.perf_counter()

    @property
    def headless(self) -> bool:
        return bool(self.args.screenshot or self.args.quit or self.args.save_session)

    def start(self) -> None:
        from desktop.dialogs import messages

        # Only an unattended run (--screenshot or --quit) goes without dialogs; `python -m desktop FILE`
        # (a file manager's "Open with") is a normal session that merely starts with FILE open.
        if self.headless:
            messages.set_interactive(False)
            self.window.opener.interactive = False
            QTimer.singleShot(int(self.args.timeout * 1000),
                              lambda: self.fail(f"timed out after {self.args.timeout:g} s"))
        if self.args.session:  # the session's own file, results and view: nothing to run or frame
            sessions = self.window.sessions
            sessions.restored.connect(lambda _p: self._finished())
            sessions.restoreFailed.connect(self.fail)
            sessions.restore(self.args.session)
            return
        self.window.opener.opened.connect(self._opened)
        self.window.opener.failed.connect(lambda _p, msg: self.fail(msg))
        self.window.analysis.taskFinished.connect(lambda _t: self._finished())
        self.window.analysis.taskFailed.connect(lambda _t, msg: self.fail(msg))
        self.window.analysis.taskCancelled.connect(lambda _t: self.fail("the task was cancelled"))
        opts = {}
        if self.args.sfreq:
            opts["sfreq"] = self.args.sfreq
        if self.args.series_uid:
            opts["series_uid"] = self.args.series_uid
        self.window.open_path(self.args.file, **opts)

    def _opened(self, path: str) -> None:
        logger.info("opened %s in %.1f s", path, time.perf_counter() - self.t0)
        self.window.opener.opened.disconnect(self._opened)  # files opened later are the user's
        task = self.args.task
        if not task:
            self._finished()
            return
        spec = TASKS[task]
        modality = self.window.session.modality
        if modality not in spec.modalities:
            self.fail(f"task {task!r} does not apply to {modality} data; it applies to: {', '.join(spec.modalities)}")
            return
        if not self.window.analysis.run_task(task, self.args.model):
            self.fail(f"task {task!r} could not be started")

    def _finished(self) -> None:
        if self.handled:  # a task the user runs later is not framed or screenshot again
            return
        self.handled = True
        try:
            if not self.args.session:
                self._show_result()
        except Exception:  # noqa: BLE001 - a nicer framing is optional; the screenshot is not
            logger.debug("could not frame the result", exc_info=True)
        # Let the views draw the result before grabbing the window.
        QTimer.singleShot(500, self._shoot)

    def _show_result(self) -> None:
        """Make the screenshot informative, as the result's presenter frames it: the comparison at the
        most anomalous slice, or the page around the most abnormal beat / segment / stretch of signal."""
        from desktop.presenters import presenter_for

        w = self.window
        entry = w.session.results.get(self.args.task)
        if entry is None:
            return
        framing = presenter_for(entry.result).framing(entry.result, w.session.data)
        if framing.seconds is not None:
            w.signal_view.centre_on(framing.seconds)
        if framing.slice is not None:
            w.ct_view.set_slice(framing.slice)
        box = getattr(w.current_view(), "compare_box", None)
        if framing.compare and box is not None and box.isEnabled() and not box.isChecked():
            box.setChecked(True)

    def _shoot(self) -> None:
        if self.exit_code is not None:
            return
        if self.args.save_session:
            if self.window.sessions.save(self.args.save_session) is None:
                self.handled = False
                self.fail(f"the session could not be saved to {self.args.save_session}")
                return
            logger.info("session saved to %s", self.args.save_session)
        if self.args.screenshot:
            from desktop.panels.export import save_png

            try:
                self.app.processEvents()
                save_png(self.window, self.args.screenshot)
            except OSError as exc:
                self.handled = False  # the screenshot failing is the run failing
                self.fail(str(exc))
                return
            logger.info("screenshot saved to %s", self.args.screenshot)
        if self.args.quit:
            self.exit_code = 0
            self.window.close()
            self.app.exit(0)

    def fail(self, message: str) -> None:
        if self.exit_code is not None or self.handled:
            return
        self.handled = True
        print(f"error: {message}", file=sys.stderr)
        if self.args.quit:
            self.exit_code = EXIT_FAILURE
            self.window.close()
            self.app.exit(EXIT_FAILURE)


def _parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
        return max(400, w), max(300, h)
    except ValueError:
        return 1366, 768


def _platform_ok() -> bool:
    """Check the Qt platform plugin's system libraries before Qt tries (and aborts with a wrong hint)."""
    from desktop import startup_check

    report = startup_check.check_platform()
    if report.ok:
        return True
    print(report.message(), file=sys.stderr)
    return not startup_check.blocks_start(report)  # a Wayland session may still open the window


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if "--selftest" in argv:  # the installer's check has its own options (desktop/selftest/)
        from desktop.selftest import run_selftest

        return run_selftest(argv)
    args = build_parser().parse_args(argv)
    if not _platform_ok():
        return EXIT_FAILURE
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Latent")
    app.setOrganizationName("Latent")
    from desktop.main_window import MainWindow

    window = MainWindow()
    automation = None
    if args.file and args.session:
        print("error: give a FILE or --session, not both", file=sys.stderr)
        return EXIT_FAILURE
    if args.file or args.session:
        if args.screenshot or args.quit or args.save_session:
            window.resize(*_parse_size(args.size))
        automation = Automation(window, args, app)
        QTimer.singleShot(0, automation.start)
    elif args.task or args.screenshot or args.save_session:
        print("error: --task and --screenshot need a FILE to open", file=sys.stderr)
        return EXIT_FAILURE
    elif args.quit:  # start-up check (benchmarks/bench_viewer.py): exit once the window is shown and painted
        QTimer.singleShot(0, lambda: (app.processEvents(), window.close(), app.exit(0)))
    window.show()
    code = app.exec()
    if automation is not None and automation.exit_code is not None:
        code = automation.exit_code
    window.shutdown()
    return int(code)
