"""Output sets (engine._shared.output_set): staged, swapped in as a set, recovered after a kill.

The sets are WFDB records written by the real writer from MIT-BIH 100 (an old one with its beat
annotations, a new one of other samples without), so "a mix" is a header that does not
describe its samples, the defect issue 20 found.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine._shared.files import sha256_file
from engine._shared.output_set import STAGING_PATTERN, check_free_space, output_set, recover_output_sets
from engine.errors import DiskFullError, LatentError

REPO = Path(__file__).resolve().parents[2]
NAME = "rec_set"
MEMBERS = (f"{NAME}.hea", f"{NAME}.dat", f"{NAME}.atr")


def _part(src, a, b, *, annotations):
    from engine.data import Signal

    anns = [x for x in src.annotations if x.sample is not None and a <= x.sample < b] if annotations else []
    anns = [type(x)(onset=x.onset - a / src.sfreq, duration=x.duration, description=x.description,
                    sample=x.sample - a, channel=x.channel, aux=x.aux) for x in anns]
    return Signal.from_array(src.read(a, b), sfreq=src.sfreq, modality="ecg", channels=src.channels,
                             units=src.units, annotations=anns, path="part")


@pytest.fixture(scope="module")
def sets(data_dir, tmp_path_factory):
    """Reference folders holding the OLD set (0-5 s, with .atr) and the NEW set (5-10 s, no .atr)."""
    from engine.export.signals import write_wfdb
    from engine.io import read

    src = read(str(data_dir / "ecg" / "mitdb" / "100"))
    n = int(5 * src.sfreq)
    root = tmp_path_factory.mktemp("sets")
    old, new = root / "old", root / "new"
    write_wfdb(_part(src, 0, n, annotations=True), old, NAME)
    write_wfdb(_part(src, n, 2 * n, annotations=False), new, NAME)
    new_src = root / "new_src"  # the new record as an input file, for the child processes
    write_wfdb(_part(src, n, 2 * n, annotations=False), new_src, "src")
    assert (old / f"{NAME}.atr").exists() and not (new / f"{NAME}.atr").exists()
    return {"old": _digests(old), "new": _digests(new), "old_dir": old, "new_src": new_src / "src"}


def _digests(folder: Path) -> dict[str, str]:
    return {n: sha256_file(folder / n) for n in MEMBERS if (folder / n).exists()}


def _staging(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if STAGING_PATTERN.match(p.name)]


def _install_old(sets, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for n in sets["old"]:
        (out / n).write_bytes((sets["old_dir"] / n).read_bytes())


def _which(sets, out: Path) -> str:
    """'old' or 'new' when *out* holds exactly that complete set; else a description of the mix."""
    now = _digests(out)
    for k in ("old", "new"):
        if now == sets[k]:
            return k
    return f"mixed/partial: {now}"


def test_success_replaces_the_whole_set_and_drops_a_stale_member(sets, tmp_path):
    import wfdb

    from engine.export.signals import write_wfdb
    from engine.io import read

    out = tmp_path / "out"
    _install_old(sets, out)
    (out / "notes.txt").write_text("mine")
    write_wfdb(read(str(sets["new_src"])), out, NAME)
    assert _which(sets, out) == "new"  # the old .atr went with the old set
    assert not _staging(out) and (out / "notes.txt").read_text() == "mine"
    rec = wfdb.rdrecord(str(out / NAME))
    assert rec.sig_len == read(str(sets["new_src"])).n_samples


def test_an_exception_leaves_the_old_set_and_no_temp_folder(sets, tmp_path):
    out = tmp_path / "out"
    _install_old(sets, out)
    with pytest.raises(RuntimeError, match="boom"):
        with output_set(out, NAME, family=MEMBERS) as s:
            (s.dir / f"{NAME}.dat").write_bytes(b"\0" * 1000)
            assert _staging(out)  # staged beside the targets, hidden
            raise RuntimeError("boom")
    assert _which(sets, out) == "old" and sorted(os.listdir(out)) == sorted(sets["old"])


def test_final_paths_and_index_order(sets, tmp_path):
    out = tmp_path / "out"
    with output_set(out, "x", index=["x.summary.json"]) as s:
        a = s.dir / "x.dat"
        a.write_bytes((sets["old_dir"] / f"{NAME}.dat").read_bytes())
        (s.dir / "x.summary.json").write_text("{}")
    assert s.final(a) == out / "x.dat" and s.names == ["x.summary.json", "x.dat"]
    assert sha256_file(out / "x.dat") == sets["old"][f"{NAME}.dat"] and not _staging(out)


_CHILD = r"""
import os, signal, sys
from pathlib import Path
from engine.export.signals import write_wfdb
from engine.io import read
src, out, k = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
sig = read(src)
real, calls = os.replace, [0]
def replace(a, b):  # this test process only: die by SIGKILL before its k-th rename
    if calls[0] == k:
        os.kill(os.getpid(), signal.SIGKILL)
    calls[0] += 1
    return real(a, b)
os.replace = replace
write_wfdb(sig, out, sys.argv[4])
print(calls[0])
"""


def _child(sets, out: Path, k: int):
    return subprocess.run([sys.executable, "-c", _CHILD, str(sets["new_src"]), str(out), str(k), NAME],
                          cwd=REPO, capture_output=True, text=True, timeout=120)


def test_sigkill_before_every_rename_leaves_a_set_that_recovery_completes(sets, tmp_path):
    """SIGKILL the writer before each of its renames in turn (files, journal, the set's own moves)."""
    _install_old(sets, tmp_path / "probe")
    full = _child(sets, tmp_path / "probe", 10**9)
    assert full.returncode == 0, full.stderr
    n_renames = int(full.stdout.split()[-1])
    assert n_renames == 7  # journal x2, hea/dat/atr moved out, dat/hea moved in
    outcomes = []
    for k in range(n_renames):
        out = tmp_path / f"k{k}"
        _install_old(sets, out)
        r = _child(sets, out, k)
        assert r.returncode == -signal.SIGKILL, r.stderr
        now = _digests(out)
        # before any recovery: each present member is the old or the new file, never a mix of both sets
        from_old = {n for n, h in now.items() if sets["old"].get(n) == h}
        from_new = {n for n, h in now.items() if sets["new"].get(n) == h}
        assert from_old | from_new == set(now), f"k={k}: a partial file {now}"
        assert not (from_old - from_new and from_new - from_old), f"k={k}: old and new mixed {now}"
        stages = _staging(out)
        assert len(stages) <= 1
        if _which(sets, out) not in ("old", "new"):  # a kill inside the swap: the journal says so
            journal = json.loads((out / stages[0] / "journal.json").read_text())
            assert journal["phase"] == "committing"
        recover_output_sets(out)
        got = _which(sets, out)
        assert got in ("old", "new"), f"k={k}: {got}"
        assert not _staging(out), f"k={k}: staging folder left after recovery"
        outcomes.append(got)
    assert "old" in outcomes and "new" in outcomes  # both roll-back and roll-forward happened


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_recovery_leaves_live_runs_and_user_files_alone(sets, tmp_path):
    out = tmp_path / "out"
    _install_old(sets, out)
    dead = _dead_pid()
    stale = out / f".{NAME}.latent-tmp-{dead}-0123abcd"
    (stale / "new").mkdir(parents=True)
    (stale / "new" / f"{NAME}.dat").write_bytes(b"partial")
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = out / f".{NAME}.latent-tmp-{sleeper.pid}-89abcdef"
        (live / "new").mkdir(parents=True)
        user = {  # names a user (or another program) may have: none matches the staging pattern exactly
            ".hidden": "file", f".{NAME}.latent-tmp-{dead}-XYZ": "dir", f".{NAME}.latent-tmp-{dead}": "dir",
            f"{NAME}.latent-tmp-{dead}-0123abcd": "dir", f".{NAME}.latent-tmp-{dead}-fedcba98": "file",
            "notes.txt": "file", f".notes.latent-part-{sleeper.pid}-abcd_123.part.txt": "file",  # a live writer's
        }
        for n, kind in user.items():
            (out / n).mkdir() if kind == "dir" else (out / n).write_text("user data")
        done = recover_output_sets(out)
        assert done == [stale] and not stale.exists()
        assert live.is_dir() and (live / "new").is_dir()
        for n, kind in user.items():
            assert (out / n).is_dir() if kind == "dir" else (out / n).read_text() == "user data"
        assert _which(sets, out) == "old"
    finally:
        sleeper.kill()
        sleeper.wait()
    recover_output_sets(out)  # its process is gone now: the folder is removed
    assert not live.exists()


_PART_CHILD = r"""
import os, signal, sys
from engine._shared.files import atomic_path
with atomic_path(sys.argv[1]) as tmp:
    tmp.write_bytes(b"half a file")
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_killed_single_file_write_leaves_a_temporary_the_next_run_removes(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "model.json").write_text("old")
    r = subprocess.run([sys.executable, "-c", _PART_CHILD, str(out / "model.json")], cwd=REPO, timeout=60)
    assert r.returncode == -signal.SIGKILL
    left = [p.name for p in out.iterdir() if p.name != "model.json"]
    assert len(left) == 1 and ".latent-part-" in left[0]
    (out / ".model.latent-part-1-abc.part.json").write_text("not ours: the tag is not 8 characters")
    with output_set(out, "x") as s:  # a set written into the folder cleans first
        (s.dir / "x.txt").write_text("x")
    assert sorted(p.name for p in out.iterdir()) == [".model.latent-part-1-abc.part.json", "model.json", "x.txt"]
    assert (out / "model.json").read_text() == "old"


def test_free_space_check_against_the_real_file_system(tmp_path):
    import shutil

    free = shutil.disk_usage(tmp_path).free
    check_free_space(tmp_path, 1 << 20)  # 1 MB fits
    with pytest.raises(DiskFullError) as e:
        check_free_space(tmp_path / "not" / "yet", free + (1 << 30))  # more than this disk has
    msg = str(e.value)
    assert str(tmp_path / "not" / "yet") in msg and "free" in msg and "needed" in msg
    assert isinstance(e.value, LatentError) and e.value.needed > e.value.free


def test_a_set_too_big_for_the_free_space_writes_nothing(sets, tmp_path):
    out = tmp_path / "out"
    _install_old(sets, out)
    with pytest.raises(DiskFullError, match=r"MB needed.*MB free"):
        with output_set(out, NAME, family=MEMBERS, estimate=10 << 20, free_bytes=lambda p: 1 << 20):
            raise AssertionError("not reached: the check comes first")
    assert _which(sets, out) == "old" and not _staging(out)


def test_estimates_match_the_bytes_written(data_dir, tmp_path, record_property):
    """Each task writer's estimate, from its result's shapes, against the files it then writes."""
    from engine.io import read
    from engine.jobs import run_job
    from engine.tasks.denoise import denoise_task, estimate_denoised_bytes, write_denoised
    from engine.tasks.nuclei import detect_task, estimate_detections_bytes, write_detections
    from engine.tasks.reconstruct import estimate_reconstruction_bytes, reconstruct_task, write_reconstruction

    def size(paths):
        return sum(Path(p).stat().st_size for p in paths)

    rows = []
    from engine.export.signals import write_wfdb

    src = read(str(data_dir / "ecg" / "mitdb" / "100"))
    write_wfdb(_part(src, 0, int(10 * src.sfreq), annotations=True), tmp_path / "in", "rec")
    sig = read(str(tmp_path / "in" / "rec"))
    res = run_job(denoise_task(sig, device="cpu"))
    rows.append(("denoise", estimate_denoised_bytes(res, sig), size(write_denoised(res, sig, tmp_path / "d"))))
    from engine.tasks.score_beats import estimate_beat_scores_bytes, score_beats_task, write_beat_scores

    beats = run_job(score_beats_task(sig, device="cpu"))
    rows.append(("score-beats", estimate_beat_scores_bytes(beats, sig, "csv,annotations"),
                 size(write_beat_scores(beats, sig, tmp_path / "b", formats="csv,annotations"))))
    img = read(str(data_dir / "histo/crchisto/img4/img4.png"))
    det = run_job(detect_task(img, mpp=0.5, device="cpu"))
    rows.append(("nuclei", estimate_detections_bytes(det), size(write_detections(det, img, tmp_path / "n"))))
    rec = run_job(reconstruct_task(img, device="cpu"))
    rows.append(("reconstruct", estimate_reconstruction_bytes(rec, img),
                 size(write_reconstruction(rec, img, tmp_path / "r"))))
    record_property("estimates", rows)
    for name, est, actual in rows:
        # an upper bound, within a factor 2 (+ the fixed allowance for a summary JSON)
        assert actual <= est <= 2 * actual + (48 << 10), (name, est, actual)
    assert np.all([a > 0 for _, _, a in rows])


def _need_private_tmpfs(folder: Path) -> None:
    import shlex

    cmd = f"mount -t tmpfs -o size=1m tmpfs {shlex.quote(str(folder))}"
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", cmd], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a private tmpfs here (unshare -rm): {probe.stderr.strip()}")


def _small_fs_cli(folder: Path, size: str, argv: list[str]):
    """Run ``python -m engine ...`` with *folder* a real tmpfs of *size* (a private mount namespace)."""
    import shlex

    script = (f"mount -t tmpfs -o size={size} tmpfs {shlex.quote(str(folder))} && exec "
              + " ".join(shlex.quote(a) for a in [sys.executable, "-m", "engine", *argv]))
    return subprocess.run(["unshare", "-rm", "sh", "-c", script], cwd=REPO, capture_output=True, text=True,
                          timeout=300)


@pytest.mark.slow
def test_cli_refuses_outputs_that_do_not_fit_a_small_file_system(sets, tmp_path):
    """denoise onto a real 2 MB tmpfs: one ``error:`` line naming the folder, exit 2; on 64 MB it runs."""
    out = tmp_path / "small"
    out.mkdir()
    _need_private_tmpfs(out)
    argv = ["denoise", str(sets["new_src"]), "--device", "cpu", "--out", str(out)]
    r = _small_fs_cli(out, "2m", argv)
    assert r.returncode == 2, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(out) in lines[0], r.stderr
    assert "not enough free disk space" in lines[0] and "MB needed" in lines[0] and "MB free" in lines[0]
    ok = _small_fs_cli(out, "64m", [*argv, "--json"])
    assert ok.returncode == 0, ok.stderr  # the same outputs fit 64 MB (32 MiB margin + ~0.1 MB)


_ENOSPC_CHILD = r"""
import sys
from pathlib import Path
from engine._shared.output_set import output_set
from engine.errors import DiskFullError
out = Path(sys.argv[1])
(out / "x.dat").write_bytes(b"old")
try:
    with output_set(out, "x") as s:  # no estimate: the write itself hits the full disk
        (s.dir / "x.dat").write_bytes(b"\0" * (4 << 20))
except DiskFullError as e:
    assert str(out) in str(e) and "filled up" in str(e), e
    assert sorted(p.name for p in out.iterdir()) == ["x.dat"] and (out / "x.dat").read_bytes() == b"old"
    print("refused")
"""


def test_a_disk_that_fills_up_while_writing_keeps_the_old_set(tmp_path):
    """A real ENOSPC (a private 1 MB tmpfs): DiskFullError naming the folder, old file kept, no staging."""
    import shlex

    out = tmp_path / "tiny"
    out.mkdir()
    _need_private_tmpfs(out)
    script = (f"mount -t tmpfs -o size=1m tmpfs {shlex.quote(str(out))} && exec "
              f"{shlex.quote(sys.executable)} -c {shlex.quote(_ENOSPC_CHILD)} {shlex.quote(str(out))}")
    r = subprocess.run(["unshare", "-rm", "sh", "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "refused", r.stderr
