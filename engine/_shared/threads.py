"""How many CPU threads a process should use: the cores it may really run on, not ``os.cpu_count()``.

A container or a batch scheduler often gives a process fewer cores than the machine has
(CPU affinity, a cgroup CPU quota). Idle OpenMP threads spin while they wait, so on a small
or busy machine more intra-op threads than free cores make inference *slower*. The policy:
one intra-op thread per process on machines with at most :data:`SMALL_MACHINE_CORES` usable
cores, otherwise the usable cores (capped at :data:`MAX_INTRA_OP_THREADS`); an explicit
request always wins.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = [
    "MAX_INTRA_OP_THREADS",
    "SMALL_MACHINE_CORES",
    "ThreadPolicy",
    "apply_thread_policy",
    "concurrent_calls",
    "default_threads",
    "usable_cores",
]

SMALL_MACHINE_CORES = 2
MAX_INTRA_OP_THREADS = 8
#: Most network calls a task runs at once from its own threads (see :func:`concurrent_calls`).
MAX_CONCURRENT_CALLS = 2


@dataclass(frozen=True)
class ThreadPolicy:
    """The thread choice a process runs with, and why (shown in ``sys-info`` and summaries)."""

    intra_op_threads: int
    usable_cores: int
    reason: str

    def as_dict(self) -> dict:
        return asdict(self)


def _cgroup_quota_cores() -> float | None:
    """Cores allowed by a cgroup v2 (``cpu.max``) or v1 (``cfs_quota_us``) quota, if any."""
    try:
        text = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if text and text[0] != "max":
            return int(text[0]) / int(text[1])
    except (OSError, ValueError, IndexError, ZeroDivisionError):
        pass
    try:
        quota = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
        period = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
        if quota > 0 and period > 0:
            return quota / period
    except (OSError, ValueError):
        pass
    return None


def usable_cores() -> int:
    """Cores this process may run on: CPU affinity, then any cgroup quota (at least 1)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    quota = _cgroup_quota_cores()
    if quota is not None:
        cores = min(cores, max(1, int(quota)))
    return max(1, cores)


def default_threads(cores: int | None = None) -> int:
    """The default intra-op thread count for a process given *cores* usable cores."""
    cores = usable_cores() if cores is None else max(1, int(cores))
    if cores <= SMALL_MACHINE_CORES:
        return 1
    return min(cores, MAX_INTRA_OP_THREADS)


def apply_thread_policy(requested: int | None = None) -> ThreadPolicy:
    """Set torch's intra-op threads to *requested*, or to :func:`default_threads`; return the choice."""
    import torch

    cores = usable_cores()
    if requested is not None and int(requested) > 0:
        n, reason = int(requested), "requested"
    else:
        n = default_threads(cores)
        reason = (f"{cores} usable cores <= {SMALL_MACHINE_CORES}: one intra-op thread (idle threads spin)"
                  if cores <= SMALL_MACHINE_CORES else f"{cores} usable cores")
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return ThreadPolicy(intra_op_threads=n, usable_cores=cores, reason=reason)


def concurrent_calls(intra_op_threads: int | None = None) -> int:
    """How many torch calls a task may run at once from Python threads: the usable cores left by
    torch's intra-op threads (``usable // intra-op``, 1 to :data:`MAX_CONCURRENT_CALLS`).

    On a small machine the policy gives torch one intra-op thread (idle OpenMP threads spin), which
    leaves the other core idle; torch releases the GIL inside its kernels, so a second Python
    thread forwarding another part of the batch (or doing numpy work beside the network) uses it.
    *intra_op_threads*: torch's (default: the current setting).
    """
    if intra_op_threads is None:
        import torch

        intra_op_threads = torch.get_num_threads()
    return max(1, min(MAX_CONCURRENT_CALLS, usable_cores() // max(1, int(intra_op_threads))))
