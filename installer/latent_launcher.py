"""Entry point of the frozen application: the script PyInstaller builds ``latent`` from.

``latent [FILE] [--task T] ...``  the desktop application (``desktop.__main__``)
``latent --selftest``             open every bundled sample, run every task, exit 0/1
``latent engine COMMAND ...``     the batch command line (``python -m engine``)
"""
from __future__ import annotations

import multiprocessing
import sys


def _attach_console() -> None:
    # The Windows build is a windowed executable without stdout; print to the console it
    # was started from, if any (cmd.exe, PowerShell). A no-op everywhere else.
    if sys.platform == "win32" and sys.stdout is None:
        try:
            import ctypes

            if ctypes.windll.kernel32.AttachConsole(-1):
                sys.stdout = sys.stderr = open("CONOUT$", "w", encoding="utf-8", errors="replace")
        except Exception:
            pass


def main() -> int:
    multiprocessing.freeze_support()
    argv = sys.argv[1:]
    if "--selftest" in argv:
        _attach_console()
        from desktop.selftest import main as selftest

        return selftest(argv)
    if argv[:1] == ["engine"]:
        _attach_console()
        from engine.cli import main as engine_main

        return engine_main(argv[1:])
    from desktop.__main__ import main as desktop_main

    return int(desktop_main() or 0)


if __name__ == "__main__":
    sys.exit(main())
