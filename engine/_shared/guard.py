"""Run a third-party parser that can loop or exhaust memory behind a time and memory bound.

Some parsers (``wfdb.rdann`` on a damaged ``.atr``, MNE's FIF directory walk) loop
forever or grow memory without bound on a few damaged bytes. :func:`bounded_call`
runs such a call in a forked worker with a wall-time limit and an address-space
limit (``RLIMIT_AS``, added to what the worker already maps) and turns a timeout or
a memory blow-up into :class:`~engine.errors.CorruptFileError` naming the file.

* Linux/macOS: ``fork`` (no re-import, a few ms per call); the worker is always
  reaped (``join`` after ``kill``), so no zombie is left.
* Windows (no fork): the call runs in-process without the bound; the readers' cheap
  size checks still run first. This is the documented fallback.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import sys
from collections.abc import Callable
from typing import Any

from engine.errors import CorruptFileError, LatentError

__all__ = ["bounded_call", "vm_size", "DEFAULT_TIMEOUT_S", "DEFAULT_MEMORY_GB"]

#: Wall-time limit of one guarded call, in seconds.
DEFAULT_TIMEOUT_S = 10.0
#: Extra address space a guarded call may map, in GB.
DEFAULT_MEMORY_GB = 2.0


def vm_size() -> int:
    """Address space mapped by this process now (bytes); 0 when unknown."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _child(conn, fn, args, kwargs, memory_bytes):
    try:
        import resource

        limit = vm_size() + memory_bytes
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, ValueError, OSError):
        pass
    try:
        result = ("ok", fn(*args, **kwargs))
    except MemoryError:
        result = ("memory", None)
    except LatentError as exc:  # ReadError(path, reason) does not unpickle from its args
        result = ("latent", (type(exc), getattr(exc, "path", None), getattr(exc, "reason", str(exc))))
    except BaseException as exc:  # noqa: BLE001 - sent back and re-raised in the parent
        result = ("error", exc)
    try:
        conn.send(result)
    except Exception as exc:  # unpicklable result or exception
        try:
            conn.send(("error", RuntimeError(f"{type(exc).__name__}: {exc}")))
        except Exception:
            pass
    finally:
        conn.close()
        os._exit(0)


def bounded_call(fn: Callable[..., Any], *args, path, what: str,
                 timeout_s: float = DEFAULT_TIMEOUT_S, memory_gb: float = DEFAULT_MEMORY_GB,
                 **kwargs) -> Any:
    """``fn(*args, **kwargs)`` in a forked worker bounded in time and memory.

    Parameters
    ----------
    fn : callable
        The parser call; its result must be picklable.
    path : str or os.PathLike
        The file named in the error.
    what : str
        What is being done, for the message (e.g. ``"reading the WFDB annotations"``).
    timeout_s, memory_gb : float
        Wall-time limit and extra address space allowed.

    Returns
    -------
    object
        The call's result. An exception raised by ``fn`` is re-raised here.

    Raises
    ------
    engine.errors.CorruptFileError
        When the call does not finish within ``timeout_s`` or exceeds ``memory_gb``.
    """
    if sys.platform == "win32" or "fork" not in mp.get_all_start_methods():
        return fn(*args, **kwargs)  # documented fallback: no bound without fork
    ctx = mp.get_context("fork")
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(send, fn, args, kwargs, int(memory_gb * 2**30)), daemon=True)
    # a Dask/multiprocessing worker is itself daemonic, and multiprocessing refuses children
    # there; the bounded worker is killed and joined below, so it cannot outlive its parent
    config = mp.current_process()._config
    was_daemon = config.get("daemon", False)
    config["daemon"] = False
    try:
        proc.start()
    finally:
        config["daemon"] = was_daemon
    send.close()
    try:
        got = recv.poll(timeout_s)
        result = recv.recv() if got else None
    except EOFError:  # the worker died without answering (killed for memory, crashed)
        got, result = True, ("memory", None)
    finally:
        recv.close()
        if proc.is_alive():
            proc.kill()
        proc.join()
    if not got:
        raise CorruptFileError(path, f"{what} did not finish within {timeout_s:g} s: the file is damaged")
    kind, value = result
    if kind == "ok":
        return value
    if kind == "memory":
        raise CorruptFileError(path, f"{what} exceeded {memory_gb:g} GB of memory: the file is damaged")
    if kind == "latent":
        cls, epath, reason = value
        try:
            err = cls(epath, reason)
        except TypeError:
            err = CorruptFileError(epath or path, reason)
        raise err
    raise value
