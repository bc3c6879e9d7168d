"""One case in one forked worker with a wall-time and an address-space limit, and its verdict.

The worker is its own process group, so a reader's own guarded grandchild (engine's
``bounded_call``) dies with it on a timeout. Outcomes:

``ok``              read and data access worked and the oracle found nothing wrong
``ok-invalid``      read worked but the data is not valid (non-finite, larger than the file...)
``project-error``   an ``engine.errors`` exception naming the file
``unnamed-error``   an ``engine.errors`` exception whose message names none of the case's files
``exception``       any other exception (its class and first line)
``memory``          MemoryError, or a project error saying "not enough memory"
``hang``            no answer within the time limit
``crash``           the worker died (a signal, or exited without answering)
"""
from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
import traceback
from pathlib import Path

from engine._shared.guard import vm_size

__all__ = ["OUTCOMES", "FAILURES", "start_case", "finish_case"]

OUTCOMES = ("ok", "project-error", "unnamed-error", "exception", "hang", "memory", "ok-invalid", "crash")
#: Outcomes that fail the acceptance line.
FAILURES = ("unnamed-error", "exception", "hang", "memory", "ok-invalid", "crash")


def _child(conn, open_path: str, family: str, options: dict, files: dict, mem_bytes: int) -> None:
    os.setpgrp()
    import resource
    import warnings

    warnings.simplefilter("ignore")  # readers warn on damaged files; the verdict says what happened

    limit = vm_size() + mem_bytes
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    t0 = time.perf_counter()
    note = ""
    try:
        from engine.errors import LatentError
        from engine.io import opened

        from .oracle import access_and_check

        try:
            with opened(open_path, **options) as data:
                problem, note = access_and_check(data, family, {k: Path(v) for k, v in files.items()})
            kind, detail = ("ok", "") if problem is None else ("ok-invalid", problem)
        except LatentError as exc:
            msg = str(exc)
            names = [Path(open_path).name] + [Path(p).name for p in files.values()]
            if "not enough memory" in msg:
                kind = "memory"
            elif not any(n in msg for n in names if n and n != "."):
                kind = "unnamed-error"
            else:
                kind = "project-error"
            detail = f"{type(exc).__name__}: {msg}"
    except MemoryError:
        kind, detail = "memory", "MemoryError"
    except BaseException as exc:  # noqa: BLE001 - this is what the harness looks for
        tb = traceback.extract_tb(exc.__traceback__)
        where = f" at {Path(tb[-1].filename).name}:{tb[-1].lineno}" if tb else ""
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
        kind, detail = "exception", f"{type(exc).__name__}: {first}{where}"
    ms = (time.perf_counter() - t0) * 1000
    try:
        conn.send((kind, detail[:600], ms, note))
    finally:
        conn.close()
        os._exit(0)


def start_case(open_path: str, family: str, options: dict, files: dict, *, mem_mb: int):
    """Start the worker; returns ``(process, connection, start time)``."""
    ctx = mp.get_context("fork")
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(send, open_path, family, options, files, mem_mb * 2**20))
    proc.start()
    send.close()
    return proc, recv, time.perf_counter()


def _kill_group(proc) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if proc.is_alive():
        proc.kill()


def finish_case(proc, recv, started: float, timeout_s: float, *, timed_out: bool = False):
    """Collect the verdict ``(kind, detail, ms, note)``; kills the worker's group in any case."""
    got = None
    if not timed_out:  # called when the connection is ready: an answer, or EOF if the worker died
        try:
            got = recv.recv()
        except (EOFError, OSError):
            got = None
    recv.close()
    proc.join(0.5)
    _kill_group(proc)
    proc.join()
    elapsed = (time.perf_counter() - started) * 1000
    if got is not None:
        return got
    if timed_out:
        return ("hang", f"no answer within {timeout_s:g} s", elapsed, "")
    code = proc.exitcode
    if code is not None and code < 0:
        return ("crash", f"worker killed by signal {signal.Signals(-code).name}", elapsed, "")
    return ("crash", f"worker exited with code {code} without answering", elapsed, "")
