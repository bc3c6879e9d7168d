"""Latent desktop application (PySide6 + pyqtgraph).

Nothing heavy is imported here: torch, the readers and the engine task modules are
imported only when a file is opened or a task is run, so the window shows fast.
"""
__all__ = ["main"]


def _protect_bool_singletons() -> None:
    """Work around a PySide6 6.12 reference-count bug (CPython < 3.12 only).

    ``SignalInstance.emit()`` returns ``True`` without taking a reference, so every signal
    emitted from Python (ours and pyqtgraph's, thousands per session) drops one reference
    to ``True``; after enough emissions the interpreter aborts with "bool_dealloc:
    deallocating True or False". The bool singletons are never freed anyway, so giving
    them a huge reference count makes the bug harmless. From 3.12 they are immortal.
    """
    import sys

    if sys.implementation.name != "cpython" or sys.version_info >= (3, 12):
        return
    import ctypes

    for obj in (True, False):
        ctypes.c_ssize_t.from_address(id(obj)).value += 1 << 40  # ob_refcnt is the first field


_protect_bool_singletons()


def main(argv=None) -> int:
    from desktop.app import main as _main

    return _main(argv)
