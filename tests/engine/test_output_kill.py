"""Kill tests (issue 20): SIGKILL ``python -m engine denoise/reconstruct/detect-nuclei`` while it
overwrites a previous run; the final names must hold exactly the old set or exactly the new one.

For each command two inputs with the same stem give two different reference sets (OLD, NEW).
The old set is put in the output folder, the command is started on the new input and killed
(its whole process group) after seeded random delays spread over its measured duration, and
once as soon as its staging folder appears (the write phase). After each kill, before any
recovery, every file under a final name must be the old or the new file (never a partial file)
and the old and new sets never mixed; after :func:`recover_output_sets` (what the next run
does first) the folder holds exactly one complete set. A last real run into a killed folder
leaves no hidden staging folder.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from engine._shared.files import sha256_file
from engine._shared.output_set import STAGING_PATTERN, recover_output_sets

REPO = Path(__file__).resolve().parents[2]
N_RANDOM_KILLS = 6
SEED = 20


def _normalized(obj):
    """A summary JSON without its timings (the only part that differs between two identical runs)."""
    if isinstance(obj, dict):
        return {k: _normalized(v) for k, v in obj.items() if k not in ("timings_s", "seconds")}
    if isinstance(obj, list):
        return [_normalized(v) for v in obj]
    return obj


def _fingerprint(path: Path):
    if path.name.endswith(".json"):
        try:
            return ("json", json.dumps(_normalized(json.loads(path.read_text())), sort_keys=True))
        except ValueError:
            return ("broken json", sha256_file(path))
    return ("sha256", sha256_file(path))


def _state(folder: Path) -> dict:
    return {p.name: _fingerprint(p) for p in sorted(folder.iterdir()) if not p.name.startswith(".")}


def _staging(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if STAGING_PATTERN.match(p.name)]


def _inodes(folder: Path) -> dict[str, int]:
    """The final names and their inodes: a rename onto a name, or its removal, changes this."""
    out = {}
    for e in os.scandir(folder):
        if not e.name.startswith("."):
            try:
                out[e.name] = e.inode()
            except OSError:
                pass
    return out


def _argv(cmd: str, src: Path, out: Path) -> list[str]:
    extra = {"denoise": ["--device", "cpu"], "reconstruct": ["--device", "cpu"],
             "detect-nuclei": ["--device", "cpu", "--mpp", "0.5"]}[cmd]
    return [sys.executable, "-m", "engine", cmd, str(src), "--out", str(out), *extra]


def _run(cmd, src, out) -> float:
    t0 = time.perf_counter()
    r = subprocess.run(_argv(cmd, src, out), cwd=REPO, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    return time.perf_counter() - t0


def _start(cmd, src, out):
    return subprocess.Popen(_argv(cmd, src, out), cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def _kill(proc) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the command and any worker it started
    except ProcessLookupError:
        pass
    proc.wait(timeout=60)


def _inputs(cmd: str, data_dir: Path, root: Path) -> tuple[Path, Path]:
    """Two inputs with the same stem and different content (the old run's and the new run's)."""
    a, b = root / "in_a", root / "in_b"
    a.mkdir()
    b.mkdir()
    if cmd == "denoise":
        from engine.data import Signal
        from engine.export.signals import write_wfdb
        from engine.io import read

        src = read(str(data_dir / "ecg" / "mitdb" / "100"))
        n = int(20 * src.sfreq)
        anns = [x for x in src.annotations if x.sample is not None and x.sample < n]
        kw = dict(sfreq=src.sfreq, modality="ecg", channels=src.channels, units=src.units, path="part")
        write_wfdb(Signal.from_array(src.read(0, n), annotations=anns, **kw), a, "rec")  # old: with .atr
        write_wfdb(Signal.from_array(src.read(n, 2 * n), **kw), b, "rec", annotations=False)  # new: none
        return a / "rec", b / "rec"
    crc = data_dir / "histo" / "crchisto"
    shutil.copyfile(crc / "img4" / "img4.png", a / "tile.png")
    shutil.copyfile(crc / "img1" / "img1.png", b / "tile.png")
    return a / "tile.png", b / "tile.png"


@pytest.mark.slow
@pytest.mark.parametrize("cmd", ["denoise", "reconstruct", "detect-nuclei"])
def test_sigkill_while_overwriting_leaves_the_old_or_the_new_set(cmd, data_dir, tmp_path, record_property):
    src_a, src_b = _inputs(cmd, data_dir, tmp_path)
    ref_a, ref_b = tmp_path / "ref_a", tmp_path / "ref_b"
    _run(cmd, src_a, ref_a)
    duration = _run(cmd, src_b, ref_b)
    old, new = _state(ref_a), _state(ref_b)
    assert old != new and not _staging(ref_a) and not _staging(ref_b)
    if cmd == "denoise":  # the new record has no annotations: the old .atr must go with the old set
        assert "rec_denoised.atr" in old and "rec_denoised.atr" not in new

    # seeded, one random moment in each of N equal slices of 5 %..110 % of the measured run time
    slices = (np.arange(N_RANDOM_KILLS) + np.random.default_rng(SEED).uniform(size=N_RANDOM_KILLS)) / N_RANDOM_KILLS
    delays = (0.05 + 1.05 * slices) * duration
    outcomes, caught = [], {}
    for i, when in enumerate([*delays, "stage", "swap"]):
        out = tmp_path / f"kill{i}"
        shutil.copytree(ref_a, out)
        inodes = _inodes(out)
        proc = _start(cmd, src_b, out)
        if isinstance(when, str):  # kill as soon as the staging folder appears / a final name changes
            deadline = time.monotonic() + 10 * duration + 60
            hit = (lambda: bool(_staging(out))) if when == "stage" else (lambda: _inodes(out) != inodes)
            while proc.poll() is None and time.monotonic() < deadline and not hit():
                time.sleep(0.0002)
            seen = hit()
        else:
            time.sleep(float(when))
        _kill(proc)
        now = _state(out)
        # before recovery: no partial file, and never old members beside new ones
        for name, fp in now.items():
            assert fp in (old.get(name), new.get(name)), f"kill {i} ({when}): {name} is neither old nor new"
        only_old = {n for n, fp in now.items() if fp == old.get(n) and fp != new.get(n)}
        only_new = {n for n, fp in now.items() if fp == new.get(n) and fp != old.get(n)}
        assert not (only_old and only_new), f"kill {i} ({when}): old {only_old} mixed with new {only_new}"
        if isinstance(when, str):
            assert seen, f"the {when} moment was never caught"
            caught[when] = "old" if now == old else "new" if now == new else f"{len(now)} members (mid-swap)"
        if when != "stage":
            recover_output_sets(out)  # what the next run into this folder does first
            after = _state(out)
            assert after in (old, new), f"kill {i} ({when}, run {duration:.2f} s): {sorted(after)}"
            assert not _staging(out)
            outcomes.append("old" if after == old else "new")
    last = tmp_path / f"kill{N_RANDOM_KILLS}"  # the write-phase kill: not recovered by hand
    assert _staging(last)
    _run(cmd, src_b, last)  # the next real run cleans up and writes the new set
    assert _state(last) == new and not _staging(last)
    record_property("kills", {"duration_s": round(duration, 2), "delays_s": [round(float(d), 2) for d in delays],
                              "outcomes": outcomes, "caught": caught})
    # a kill at 5-22 % of the run (still importing/computing) keeps the old set: the test really killed
    # mid-run; which later kills land before or after the swap depends on the machine's load (recorded
    # above), the swap itself is covered kill by kill in test_output_set.py
    assert outcomes[0] == "old"
