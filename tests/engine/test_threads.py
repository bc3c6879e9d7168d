"""Thread policy: usable cores, not os.cpu_count(); one intra-op thread on small machines."""
from __future__ import annotations

import os

import torch

from engine._shared import threads


def test_default_threads_by_machine_size():
    assert threads.default_threads(1) == 1
    assert threads.default_threads(threads.SMALL_MACHINE_CORES) == 1
    assert threads.default_threads(4) == 4
    assert threads.default_threads(64) == threads.MAX_INTRA_OP_THREADS


def test_usable_cores_follows_affinity():
    assert 1 <= threads.usable_cores() <= len(os.sched_getaffinity(0))


def test_apply_thread_policy_sets_torch_and_says_why():
    before = torch.get_num_threads()
    try:
        p = threads.apply_thread_policy(3)
        assert (p.intra_op_threads, p.reason, torch.get_num_threads()) == (3, "requested", 3)
        p = threads.apply_thread_policy()
        assert p.intra_op_threads == threads.default_threads() == torch.get_num_threads()
        assert p.usable_cores == threads.usable_cores() and p.reason
    finally:
        torch.set_num_threads(before)


def test_concurrent_calls_use_the_cores_torch_leaves(monkeypatch):
    before = torch.get_num_threads()
    try:
        for cores, intra, expect in ((2, 1, 2), (1, 1, 1), (2, 2, 1), (8, 8, 1), (16, 4, 2), (3, 1, 2)):
            monkeypatch.setattr(threads, "usable_cores", lambda c=cores: c)
            torch.set_num_threads(intra)
            assert threads.concurrent_calls() == expect, (cores, intra)
    finally:
        torch.set_num_threads(before)


def test_concurrent_calls_for_given_intra_op_threads(monkeypatch):
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    assert threads.concurrent_calls(1) == 2 and threads.concurrent_calls(2) == 1
