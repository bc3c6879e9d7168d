"""engine._shared.background.InOrder: results reach the caller in submission order, at most
*workers* jobs in flight, inline when there are none, worker errors re-raised in the caller."""
from __future__ import annotations

import threading
import time

import pytest

from engine._shared.background import InOrder


@pytest.mark.parametrize("workers", [0, 1, 2])
def test_results_in_submission_order(workers):
    got, caller = [], threading.get_ident()

    def job(i):
        time.sleep(0.02 if i % 2 == 0 else 0.0)  # later jobs may finish first
        return i, threading.get_ident()

    def done(result):
        assert threading.get_ident() == caller  # delivered in the caller's thread
        got.append(result)

    with InOrder(workers, "test-inorder") as q:
        for i in range(7):
            q.submit(done, job, i)
            assert len(q._pending) <= workers
        q.drain()
    assert [i for i, _ in got] == list(range(7))
    ran_inline = all(t == caller for _, t in got)
    assert ran_inline == (workers == 0)


def test_worker_error_reaches_the_caller():
    def boom():
        raise ValueError("bad plane")

    with InOrder(1, "test-inorder") as q:
        q.submit(lambda r: None, boom)
        with pytest.raises(ValueError, match="bad plane"):
            q.drain()
