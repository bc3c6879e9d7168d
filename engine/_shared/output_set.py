"""Write a task's several output files as one set: staged, fsynced, then swapped in together.

A task's result is several files (``rec_denoised.hea`` + ``.dat`` + ``.atr`` + ``.npy`` +
``.summary.json``; a reconstruction's images + summary; nuclei CSV + GeoJSON + summary). Each
file on its own is already written atomically (:func:`engine._shared.files.atomic_path`), but a
kill between two of them used to leave a new ``.dat`` beside the old ``.hea``. :func:`output_set`
writes the whole set into one hidden folder beside the targets and publishes it as a set.

The staging folder ``out_dir/.<stem>.latent-tmp-<pid>-<8 hex>/`` holds ``new/`` (the files the
writers make), ``old/`` (a backup of the files being replaced) and ``journal.json`` (the
process, the phase, the set's member names). Commit, after every new file is written:

1. fsync every new file and ``new/``; journal -> ``committing`` (written atomically, fsynced);
2. move the OLD members (files the new set replaces, plus stale members of the family the new
   set lacks, e.g. an old ``.atr``) from ``out_dir`` into ``old/``, the index files first
   (the summary, the WFDB ``.hea``);
3. move the NEW members from ``new/`` into ``out_dir``, the index files last; fsync ``out_dir``;
4. delete the staging folder (backup included).

What a reader can observe: POSIX ``rename`` is atomic per name, not across names, so the
final names are never a mix of old and new files of one set and never hold a partial file,
but during the few renames of steps 2-3 (microseconds to milliseconds) some members may be
missing: first a shrinking subset of the old set, then a growing subset of the new one. Index
files leave first and arrive last, so a reader that opens a set through its summary or its
WFDB header sees either no set or a complete one. A kill (or power loss) at any moment leaves
one of: the complete old set (steps before 2: the next run deletes the staging folder, a roll
back), or a subset of old and/or new members with the journal saying ``committing`` (the next
run rolls forward: it finishes steps 2-4, so the complete new set is in place). Recovery runs
at the start of every :func:`output_set` into that folder, or by calling
:func:`recover_output_sets`.

Recovery touches only folders whose name matches the staging pattern (and, in the folder
itself, only the member names its own journal lists) and files named like
:func:`engine._shared.files.atomic_path`'s temporaries; one whose process is still alive is
left alone. Two processes writing the SAME set at the same time are not serialised.
"""
from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import re
import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

from engine._shared.files import PART_PATTERN, _fsync_dir, _fsync_file
from engine.errors import DiskFullError

__all__ = ["output_set", "OutputSet", "recover_output_sets", "check_free_space", "required_bytes",
           "STAGING_PATTERN", "FREE_SPACE_MARGIN_BYTES", "FREE_SPACE_MARGIN_FRACTION"]

logger = logging.getLogger("engine")

#: Name of a staging folder: ``.<stem>.latent-tmp-<pid>-<8 hex digits>`` (nothing else is ever recovered).
STAGING_PATTERN = re.compile(r"^\.(?P<stem>.*)\.latent-tmp-(?P<pid>\d+)-(?P<tag>[0-9a-f]{8})$")
_JOURNAL = "journal.json"
_STEM_CHARS = 64  # a long stem is cut in the folder name (the journal holds the member names)

#: Free space kept beyond a task's estimated output bytes (bytes): other writers, file-system overhead.
FREE_SPACE_MARGIN_BYTES = 32 << 20
#: ... plus this fraction of the estimate (estimates of compressed outputs are upper bounds, others exact).
FREE_SPACE_MARGIN_FRACTION = 0.05


@dataclass
class OutputSet:
    """The staging folder writers write into (``dir``) and where its files end up (``out_dir``)."""

    out_dir: Path
    dir: Path
    index: tuple[str, ...] = ()
    family: tuple[str, ...] = ()
    names: list[str] = field(default_factory=list)

    def final(self, path: str | os.PathLike) -> Path:
        """The final path of a file written at *path* inside :attr:`dir`."""
        return self.out_dir / Path(path).relative_to(self.dir)

    def finals(self, paths: Iterable[str | os.PathLike]) -> list[Path]:
        return [self.final(p) for p in paths]


def required_bytes(estimate: int) -> int:
    """Free bytes a write of about *estimate* bytes asks for: the estimate plus the margins."""
    return int(estimate * (1.0 + FREE_SPACE_MARGIN_FRACTION)) + FREE_SPACE_MARGIN_BYTES


def check_free_space(folder: str | os.PathLike, estimate: int, *,
                     free_bytes: Callable[[Path], int] | None = None) -> None:
    """Raise :class:`~engine.errors.DiskFullError` when *folder*'s file system lacks room for *estimate* bytes.

    *free_bytes* returns the free bytes of a folder's file system (default
    :func:`shutil.disk_usage`'s ``free``); the old set stays on disk until the new one is in
    place, so the whole new set must fit beside it.
    """
    folder = Path(folder)
    probe = folder
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent  # the folder may not exist yet: its nearest existing parent is on the same disk
    free = int((free_bytes or (lambda p: shutil.disk_usage(p).free))(probe))
    need = required_bytes(int(estimate))
    if free < need:
        raise DiskFullError(folder, needed=need, free=free, estimate=int(estimate))


@contextlib.contextmanager
def output_set(out_dir: str | os.PathLike, stem: str, *, index: Iterable[str] = (),
               family: Iterable[str] = (), estimate: int | None = None,
               free_bytes: Callable[[Path], int] | None = None) -> Iterator[OutputSet]:
    """Stage one task's output files and publish them in *out_dir* as a set (see the module docstring).

    Parameters
    ----------
    out_dir : path
        Where the files end up (created if missing).
    stem : str
        Names the staging folder (``.<stem>.latent-tmp-...``); the set's members are whatever the
        writers put into the yielded :attr:`OutputSet.dir`.
    index : names
        Members that describe the others (summary, WFDB ``.hea``): moved away first, in last.
    family : names
        Names that belong to this kind of set: an existing one the new set lacks is removed with
        the old set (an old ``.atr`` when the new record has no annotations).
    estimate : int, optional
        Bytes the set will take; checked against the free space first (:func:`check_free_space`).
    free_bytes : callable, optional
        Source of the free bytes of a folder's file system (default :func:`shutil.disk_usage`).

    An exception inside the block deletes the staging folder and leaves *out_dir* as it was; a
    full disk (``ENOSPC``) becomes :class:`~engine.errors.DiskFullError`.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    recover_output_sets(out)
    if estimate is not None:
        check_free_space(out, estimate, free_bytes=free_bytes)
    tag = secrets.token_hex(4)
    stage = out / f".{stem[:_STEM_CHARS]}.latent-tmp-{os.getpid()}-{tag}"
    stage.mkdir()
    s = OutputSet(out_dir=out, dir=stage / "new", index=tuple(index), family=tuple(family))
    try:
        (stage / "new").mkdir()
        (stage / "old").mkdir()
        _write_journal(stage, {"phase": "writing"})
        yield s
        _commit(s, stage)
    except BaseException as exc:
        if (_read_journal(stage) or {}).get("phase") == "committing":
            # renames failed half-way (an OS error): keep the folder, the next run finishes the set
            logger.warning("output set in %s not completed; the next run into this folder completes it", out)
            raise
        shutil.rmtree(stage, ignore_errors=True)
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:  # the disk filled up while writing
            free = shutil.disk_usage(out).free if free_bytes is None else int(free_bytes(out))
            raise DiskFullError(out, needed=None if estimate is None else required_bytes(estimate), free=free,
                                estimate=estimate) from exc
        raise
    shutil.rmtree(stage, ignore_errors=True)
    if stage.exists():  # pragma: no cover - a file the OS refuses to delete; the next run retries
        logger.warning("could not remove the staging folder %s", stage)


def _order(names: Iterable[str], index: tuple[str, ...]) -> list[str]:
    """Index members first (in the order given), then the rest sorted: the move-out order."""
    names = list(dict.fromkeys(names))
    return [n for n in index if n in names] + sorted(n for n in names if n not in index)


def _commit(s: OutputSet, stage: Path) -> None:
    new = stage / "new"
    names = sorted(p.name for p in new.iterdir() if not p.name.startswith("."))
    for p in new.iterdir():
        if p.name.startswith("."):  # a writer's own temporary left behind: not a member
            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
    for n in names:
        _fsync_tree(new / n)
    _fsync_dir(new)
    replace = [n for n in s.family if n not in names]
    s.names = _order(names, s.index)
    _write_journal(stage, {"phase": "committing", "names": s.names, "replace": _order(replace, s.index),
                           "index": list(s.index)})
    _roll_forward(s.out_dir, stage, s.names, replace, s.index)


def _roll_forward(out: Path, stage: Path, names: list[str], replace: list[str], index) -> None:
    """Steps 2-3 of the commit; idempotent, so recovery after a kill at any point finishes them."""
    new, old = stage / "new", stage / "old"
    old.mkdir(exist_ok=True)
    for n in _order([*names, *replace], tuple(index)):
        # a member still in new/ has not been published, so out/n (if any) is the old file
        if (n in names and _exists(new / n)) or n not in names:
            if _exists(out / n):
                if _exists(old / n):
                    _remove(old / n)
                os.replace(out / n, old / n)
    _fsync_dir(out)
    for n in reversed(_order(names, tuple(index))):
        if _exists(new / n):
            os.replace(new / n, out / n)
    _fsync_dir(out)


def recover_output_sets(out_dir: str | os.PathLike) -> list[Path]:
    """Finish or undo the output sets a killed run left in *out_dir*; return the paths handled.

    A staging folder whose journal says ``committing`` is rolled forward (its new set is put in
    place); any other (still ``writing``, or no journal yet) is deleted, which leaves the old set.
    A single file's temporary (:data:`engine._shared.files.PART_PATTERN`) of a dead process is
    deleted. Those of a live process, and every name matching neither pattern, are left alone.
    """
    out = Path(out_dir)
    done: list[Path] = []
    try:
        entries = list(os.scandir(out))
    except OSError:
        return done
    for e in entries:
        part = PART_PATTERN.match(e.name)
        if part and e.is_file(follow_symlinks=False) and not _alive(int(part["pid"]), None):
            with contextlib.suppress(OSError):  # a single file's temporary (atomic_path) of a killed run
                os.unlink(e.path)
                done.append(Path(e.path))
            continue
        m = STAGING_PATTERN.match(e.name)
        if not m or not e.is_dir(follow_symlinks=False):
            continue
        stage = Path(e.path)
        journal = _read_journal(stage)
        if _alive(int(m["pid"]), (journal or {}).get("start")):
            continue
        if journal and journal.get("phase") == "committing":
            names = [n for n in journal.get("names", []) if _member_name(n)]
            replace = [n for n in journal.get("replace", []) if _member_name(n)]
            _roll_forward(out, stage, names, replace, tuple(journal.get("index", ())))
            logger.info("completed the output set a killed run left in %s (%s)", out, ", ".join(names))
        else:
            logger.info("removed the unfinished output set a killed run left in %s", stage)
        shutil.rmtree(stage, ignore_errors=True)
        done.append(stage)
    return done


def _member_name(n) -> bool:
    """A plain file name (no folder part): what a journal may list; anything else is ignored."""
    return isinstance(n, str) and n not in ("", ".", "..") and "/" not in n and "\\" not in n


def _exists(p: Path) -> bool:
    return os.path.lexists(p)


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p)
    else:
        p.unlink()


def _fsync_tree(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        for q in p.rglob("*"):
            if q.is_file() and not q.is_symlink():
                _fsync_file(q)
        for q in [p, *[d for d in p.rglob("*") if d.is_dir()]]:
            _fsync_dir(q)
    elif p.is_file():
        _fsync_file(p)


def _write_journal(stage: Path, content: dict) -> None:
    rec = {"version": 1, "pid": os.getpid(), "start": _start_time(os.getpid()), **content}
    tmp = stage / (_JOURNAL + ".part")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(rec, indent=1) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, stage / _JOURNAL)
    _fsync_dir(stage)


def _read_journal(stage: Path) -> dict | None:
    try:
        rec = json.loads((stage / _JOURNAL).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) else None


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), to tell a reused pid apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2:].split()
    return fields[19] if len(fields) > 19 else None


def _alive(pid: int, start: str | None) -> bool:
    """Whether process *pid* (started at *start*, when known) still runs; a zombie counts as dead."""
    if pid <= 0:
        return False
    if os.name == "nt":  # os.kill(pid, 0) would terminate the process on Windows
        return _alive_windows(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (macOS): the signal said it exists
    rest = stat[stat.rfind(")") + 2:].split()
    if rest and rest[0] in ("Z", "X"):
        return False
    return start is None or (len(rest) > 19 and rest[19] == start)


def _alive_windows(pid: int) -> bool:  # pragma: no cover - Windows only
    import ctypes

    kernel32 = ctypes.windll.kernel32
    handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
    if not handle:
        return False
    try:
        code = ctypes.c_ulong()
        return bool(kernel32.GetExitCodeProcess(handle, ctypes.byref(code))) and code.value == 259
    finally:
        kernel32.CloseHandle(handle)
