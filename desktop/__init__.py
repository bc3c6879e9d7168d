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


class _SkipPyqtgraphCudaProbe:
    """An import hook that answers pyqtgraph's optional ``cuda.bindings.runtime`` probe with "absent".

    pyqtgraph's ``RawImageWidget`` (a widget the app does not use) imports CUDA Python at import
    time for its GL interop; in a CUDA install that loaded the CUDA driver bindings (~65-100 ms of
    the viewers' first import here). Only that probe, while that module runs, is refused;
    pyqtgraph then takes its own no-CUDA path (``cudart = None``), and any later import of
    ``cuda.bindings.runtime`` (torch's, say) is left alone.
    """

    @staticmethod
    def find_spec(name, path=None, target=None):
        if name == "cuda.bindings.runtime":
            import sys

            probe = sys.modules.get("pyqtgraph.widgets.RawImageWidget")
            if probe is not None and not hasattr(probe, "cudart"):  # in the middle of its import
                raise ModuleNotFoundError("skipped for pyqtgraph (desktop/__init__.py)", name=name)
        return None


def _install_import_hooks() -> None:
    import sys

    if not any(isinstance(f, _SkipPyqtgraphCudaProbe) for f in sys.meta_path):
        sys.meta_path.insert(0, _SkipPyqtgraphCudaProbe())


_install_import_hooks()


def main(argv=None) -> int:
    from desktop.app import main as _main

    return _main(argv)
