"""glibc ``malloc`` settings that stop inference from page-faulting its activation buffers afresh.

PyTorch's CPU allocator asks ``malloc`` for every activation tensor. glibc serves a large
request (above a dynamic threshold of at most 32 MiB) with a fresh ``mmap`` and returns it
with ``munmap`` when the tensor dies, so the next window or tile touches brand-new pages
again: measured here, about 20% of denoise CPU time and most of the nuclei path's kernel
time (4000^2 region: sys 9.7 s -> 0.85 s with these settings). The policy keeps large
blocks on the heap (no ``mmap``) and keeps freed memory there instead of trimming it back,
so buffers are reused without faults. The cost is that the heap's high-water mark stays
resident until the process ends, which is what a compute process wants (peak RSS is
unchanged; it is reached once instead of re-faulted).

Applied with ``mallopt`` through :mod:`ctypes`, on glibc Linux only; elsewhere (musl,
macOS, Windows) :func:`apply_malloc_policy` changes nothing and says why. Environment
settings a user made (``MALLOC_MMAP_MAX_`` ... or ``GLIBC_TUNABLES``) win. Set
``LATENT_MALLOC=default`` to leave malloc alone.
"""
from __future__ import annotations

import os
import sys
from dataclasses import asdict, dataclass

__all__ = ["MALLOC_SETTINGS", "MallocPolicy", "apply_malloc_policy", "malloc_policy"]

#: ``mallopt`` parameter numbers (glibc ``malloc.h``) and the values this policy sets.
_M_TRIM_THRESHOLD, _M_MMAP_MAX, _M_ARENA_MAX = -1, -4, -8
#: name -> (mallopt parameter, value, environment variable that overrides it).
MALLOC_SETTINGS = {
    "M_MMAP_MAX": (_M_MMAP_MAX, 0, "MALLOC_MMAP_MAX_"),  # large blocks from the heap, not fresh mmaps
    "M_TRIM_THRESHOLD": (_M_TRIM_THRESHOLD, 1 << 30, "MALLOC_TRIM_THRESHOLD_"),  # keep up to 1 GiB freed
    "M_ARENA_MAX": (_M_ARENA_MAX, 2, "MALLOC_ARENA_MAX"),  # few arenas: freed blocks are found again
}
OPT_OUT_ENV = "LATENT_MALLOC"

_APPLIED: MallocPolicy | None = None


@dataclass(frozen=True)
class MallocPolicy:
    """What :func:`apply_malloc_policy` did (shown in ``sys-info``)."""

    applied: bool
    settings: dict
    reason: str

    def as_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        if not self.applied:
            return f"default ({self.reason})"
        return ", ".join(f"{k}={v}" for k, v in self.settings.items()) + f" ({self.reason})"


def _glibc():
    """The C library as a :class:`ctypes.CDLL` when it is glibc, else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):  # glibc only; musl has no such name
            return None
    except (ValueError, OSError, AttributeError):
        return None
    import ctypes

    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return None
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return libc


def apply_malloc_policy() -> MallocPolicy:
    """Set the malloc policy once per process (later calls return the first result)."""
    global _APPLIED
    if _APPLIED is not None:
        return _APPLIED
    if os.environ.get(OPT_OUT_ENV, "").lower() in ("default", "off", "0"):
        _APPLIED = MallocPolicy(False, {}, f"{OPT_OUT_ENV}={os.environ[OPT_OUT_ENV]}")
        return _APPLIED
    libc = _glibc()
    if libc is None:
        _APPLIED = MallocPolicy(False, {}, f"not glibc ({sys.platform}): malloc left as it is")
        return _APPLIED
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    done, kept = {}, []
    for name, (param, value, env) in MALLOC_SETTINGS.items():
        if env in os.environ or f"glibc.malloc.{name[2:].lower()}" in tunables:
            kept.append(name)
            continue
        if libc.mallopt(param, value) == 1:
            done[name] = value
    reason = "glibc mallopt" + (f"; {', '.join(kept)} left to the environment" if kept else "")
    _APPLIED = MallocPolicy(bool(done), done, reason if done else "mallopt refused every setting")
    return _APPLIED


def malloc_policy() -> MallocPolicy | None:
    """The policy this process applied, or None when :func:`apply_malloc_policy` never ran."""
    return _APPLIED
