"""Latent desktop application (PySide6 + pyqtgraph).

Nothing heavy is imported here: torch, the readers and the engine task modules are
imported only when a file is opened or a task is run, so the window shows fast.
"""
__all__ = ["main"]


def main(argv=None) -> int:
    from desktop.app import main as _main

    return _main(argv)
