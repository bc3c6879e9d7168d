"""Work beside the caller's thread, delivered in order: the pattern of "the network runs on item i + 1
while numpy/scipy post-processes item i" (nucleus outlines, CT planes).

torch releases the GIL inside its kernels and most scipy.ndimage / scikit-image / OpenCV routines
do too, so on a machine whose torch runs one intra-op thread the post-processing uses the idle core.
Results come back to the caller's thread in submission order, so the output is the same as inline.
"""
from __future__ import annotations

from collections import deque
from typing import Any, Callable

__all__ = ["InOrder"]


class InOrder:
    """Run jobs in up to *workers* threads (0: inline, in the caller's thread), at most *workers* in
    flight; each job's ``done(result)`` runs in the caller's thread in submission order. A context
    manager: leaving it waits for running jobs and drops queued ones (a cancelled task)."""

    def __init__(self, workers: int, name: str):
        from concurrent.futures import ThreadPoolExecutor

        self.workers = max(0, int(workers))
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix=name) if self.workers else None
        self._pending: deque = deque()

    def submit(self, done: Callable[[Any], None], fn: Callable, *args, **kwargs) -> None:
        """``done(fn(*args, **kwargs))``, now (inline) or once the older jobs' results are delivered."""
        if self._pool is None:
            done(fn(*args, **kwargs))
            return
        if len(self._pending) >= self.workers:
            self._deliver()
        self._pending.append((self._pool.submit(fn, *args, **kwargs), done))

    def _deliver(self) -> None:
        future, done = self._pending.popleft()
        done(future.result())

    def drain(self) -> None:
        """Deliver every submitted job's result."""
        while self._pending:
            self._deliver()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> "InOrder":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
