"""engine._shared.guard.bounded_call: results, errors, time and memory bounds, no zombies."""
from __future__ import annotations

import os
from pathlib import Path
import sys
import time

import pytest

from engine._shared.guard import bounded_call
from engine.errors import CorruptFileError, ReadError

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the bound needs fork")


def _raise_read_error(p):
    raise ReadError(p, "bad header")


def test_result_and_exceptions_come_back():
    assert bounded_call(sum, [1, 2, 3], path="x", what="adding") == 6
    with pytest.raises(ValueError):
        bounded_call(int, "zz", path="x", what="parsing")
    with pytest.raises(ReadError, match="f.hea: bad header"):
        bounded_call(_raise_read_error, "f.hea", path="f.hea", what="parsing")


def test_timeout_names_the_file_and_leaves_no_zombie():
    t0 = time.perf_counter()
    with pytest.raises(CorruptFileError, match=r"rec\.atr: .*did not finish within 0.5 s"):
        bounded_call(time.sleep, 30, path="rec.atr", what="reading", timeout_s=0.5)
    assert time.perf_counter() - t0 < 5
    assert not _zombie_children(), "every worker was reaped"


def _zombie_children() -> list[int]:
    """PIDs of this process's children that exited but were never waited for (state Z)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] == "Z" and int(fields[1]) == os.getpid():
            out.append(int(stat.parent.name))
    return out


def test_memory_bound():
    with pytest.raises(CorruptFileError, match=r"x\.fif: .*exceeded 0.5 GB"):
        bounded_call(lambda: bytearray(2 * 2**30), path="x.fif", what="opening", memory_gb=0.5)
