"""Batch runs on a real Dask LocalCluster (2 worker processes): fault isolation, resume, crash retry.

The cluster is started once for the module; the tests hand its address to the batch
(``scheduler=``) the way ``--scheduler`` does. One test starts and cancels its own cluster.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

import engine.io
from engine._shared.files import sha256_file
from engine.batch import batch_task, expand_inputs, input_sha256, read_manifest
from engine.batch.manifest import MANIFEST_NAME
from engine.errors import LatentError
from engine.jobs import run_job
from engine.tasks import TaskSpec, get_task

REPO = Path(__file__).resolve().parents[2]
SAMPLE_CT = REPO / "resources" / "samples" / "ct" / "LIDC-IDRI-0001-nodule"


# ---------------------------------------------------------------- test-only tasks (imported by workers)

def crash_once_task(data, *, marker, **options):
    """detect-nuclei, except that the first call kills its worker process (no cleanup, like a segfault)."""
    if not os.path.exists(marker):
        Path(marker).write_text(str(os.getpid()))
        os._exit(3)
    return (yield from get_task("detect-nuclei").runner()(data, **options))


def crash_always_task(data, *, attempts, **options):
    """Kills its worker process every time, after noting the attempt in the file *attempts*."""
    with open(attempts, "a") as fh:
        fh.write(f"{Path(data.path).name}\n")
    os._exit(3)
    yield  # a generator function, like every task


def _spec(run: str) -> TaskSpec:
    return TaskSpec(run, "test-only", {"histology": "histo-nuclei"}, "tests.engine.test_batch", run,
                    "write_detections", "Detections")


def write_detections(result, data, out_dir):
    return get_task("detect-nuclei").writer()(result, data, out_dir)


# ---------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def cluster():
    from engine.batch.cluster import local_cluster

    c = local_cluster(2, gpus=0)
    try:
        yield c
    finally:
        c.close()


@pytest.fixture(scope="module")
def he_images(tmp_path_factory, data_dir):
    """Three real H&E tiles, a truncated PNG and a README that is no image."""
    folder = tmp_path_factory.mktemp("he")
    for i in (1, 10, 12):
        shutil.copy(data_dir / "histo" / "crchisto" / f"img{i}" / f"img{i}.png", folder)
    (folder / "broken.png").write_bytes((folder / "img1.png").read_bytes()[:3000])
    (folder / "README.txt").write_text("three CRCHistoPhenotypes tiles and one damaged file\n")
    return folder


def _single_run(task, path, out_dir, read_opts=None, **options) -> list[Path]:
    spec = get_task(task)
    with engine.io.opened(path, **(read_opts or {})) as data:
        return spec.writer()(run_job(spec.runner()(data, **options)), data, out_dir)


def _error_text(task, path, out_dir, **options) -> str:
    try:
        _single_run(task, path, out_dir, **options)
    except LatentError as exc:
        return str(exc)
    raise AssertionError(f"{path} did not fail")


def _by_name(result):
    return {Path(r.input).name: r for r in result.rows}


# ---------------------------------------------------------------- input expansion (no cluster)

def test_folder_expansion_by_content(tmp_path, data_dir):
    series = tmp_path / "scans" / "patient1" / "series_a"
    series.mkdir(parents=True)
    for f in sorted(SAMPLE_CT.glob("*.dcm"))[:2]:
        shutil.copy(f, series / f.stem)  # no extension: content makes it DICOM
    (series / "notes.csv").write_text("slice,comment\n")
    pngs = tmp_path / "scans" / "pngs"
    pngs.mkdir()
    for i in (1, 10):
        shutil.copy(data_dir / "histo" / "crchisto" / f"img{i}" / f"img{i}.png", pngs)
    (tmp_path / "scans" / "other").mkdir()
    shutil.copy(data_dir / "histo" / "crchisto" / "img1" / "img1.png", tmp_path / "scans" / "other")
    ecg = tmp_path / "scans" / "ecg"
    ecg.mkdir()
    for ext in ("hea", "dat", "atr"):
        shutil.copy(data_dir / "ecg" / "mitdb" / f"100.{ext}", ecg)

    items = expand_inputs([tmp_path / "scans"], modalities=get_task("reconstruct").modalities)
    got = {Path(i.path).relative_to(tmp_path).as_posix(): (i.kind, i.name) for i in items}
    assert got == {
        "scans/patient1/series_a": ("dicom-folder", "series_a"),  # a DICOM series folder is one input
        "scans/pngs/img1.png": ("file", "pngs_img1"),  # a folder of PNGs is many; clashing names get
        "scans/other/img1.png": ("file", "other_img1"),  # their parent folder in front
        "scans/pngs/img10.png": ("file", "img10"),
        "scans/ecg/100.hea": ("wfdb", "100"),  # one input per record, not per file
    }
    # a task for H&E only takes the images; no DICOM folder, no record
    he = expand_inputs([tmp_path / "scans"], modalities=get_task("detect-nuclei").modalities)
    assert sorted(Path(i.path).name for i in he) == ["img1.png", "img1.png", "img10.png"]
    # glob patterns; a record named without .hea
    globbed = expand_inputs([str(tmp_path / "scans" / "*" / "img1.png")], modalities=("histology",))
    assert [Path(i.path).parent.name for i in globbed] == ["other", "pngs"]
    assert len(expand_inputs([str(tmp_path / "**" / "*.png")], modalities=("histology",))) == 3
    assert [i.kind for i in expand_inputs([ecg / "100"], modalities=("ecg",))] == ["wfdb"]
    # the hash of a record covers its signal file too
    before = input_sha256(str(ecg / "100.hea"))
    with open(ecg / "100.dat", "r+b") as fh:
        fh.seek(1000)
        fh.write(b"\x00\x01")
    assert input_sha256(str(ecg / "100.hea")) != before
    assert input_sha256(str(pngs / "img10.png")) == sha256_file(pngs / "img10.png")
    with pytest.raises(LatentError, match="no such file"):
        expand_inputs([tmp_path / "missing.png"], modalities=("histology",))
    with pytest.raises(LatentError, match="matches no file"):
        expand_inputs([str(tmp_path / "*.svs")], modalities=("histology",))


# ---------------------------------------------------------------- batches on the module cluster

def test_detect_nuclei_batch_isolates_errors_matches_single_runs_and_resumes(cluster, he_images, tmp_path):
    out = tmp_path / "batch"
    result = run_job(batch_task([he_images], task="detect-nuclei", out_dir=out, options={"device": "cpu"},
                                scheduler=cluster.scheduler_address))
    rows = _by_name(result)
    assert sorted(rows) == ["broken.png", "img1.png", "img10.png", "img12.png"]  # README.txt is no input
    assert {n: r.status for n, r in rows.items()} == {"broken.png": "error", "img1.png": "ok",
                                                      "img10.png": "ok", "img12.png": "ok"}
    assert rows["broken.png"].message == _error_text("detect-nuclei", he_images / "broken.png", tmp_path / "e",
                                                        device="cpu")
    assert "broken.png" in rows["broken.png"].message and rows["broken.png"].outputs == ()
    for stem in ("img1", "img10", "img12"):
        row = rows[f"{stem}.png"]
        assert row.sha256 == sha256_file(he_images / f"{stem}.png") and row.device == "cpu"
        assert f"{stem}/{stem}.nuclei.csv" in row.outputs
        single = _single_run("detect-nuclei", he_images / f"{stem}.png", tmp_path / "single" / stem, device="cpu")
        single_csv = next(p for p in single if p.name.endswith(".nuclei.csv"))
        assert (out / stem / f"{stem}.nuclei.csv").read_bytes() == single_csv.read_bytes()
        assert len(single_csv.read_text().splitlines()) > 10  # real detections, not an empty file
    on_disk = read_manifest(out / MANIFEST_NAME)
    assert {Path(k).name: v.status for k, v in on_disk.items()} == {n: r.status for n, r in rows.items()}

    # --resume: unchanged inputs with their outputs are skipped; the error is retried (and fails again)
    again = run_job(batch_task([he_images], task="detect-nuclei", out_dir=out, options={"device": "cpu"},
                               scheduler=cluster.scheduler_address, resume=True))
    assert {n: r.status for n, r in _by_name(again).items()} == {
        "broken.png": "error", "img1.png": "skipped", "img10.png": "skipped", "img12.png": "skipped"}
    assert _by_name(again)["img1.png"].outputs == rows["img1.png"].outputs

    # a changed input and a deleted output are run again
    shutil.copy(he_images / "img12.png", tmp_path / "img12.png")
    (out / "img1" / "img1.nuclei.geojson").unlink()
    changed = he_images / "img10.png"
    original = changed.read_bytes()
    try:
        changed.write_bytes((tmp_path / "img12.png").read_bytes())
        third = run_job(batch_task([he_images], task="detect-nuclei", out_dir=out, options={"device": "cpu"},
                                   scheduler=cluster.scheduler_address, resume=True))
    finally:
        changed.write_bytes(original)
    st = {n: r.status for n, r in _by_name(third).items()}
    assert st == {"broken.png": "error", "img1.png": "ok", "img10.png": "ok", "img12.png": "skipped"}
    assert (out / "img10" / "img10.nuclei.csv").read_bytes() == (out / "img12" / "img12.nuclei.csv").read_bytes()


def test_worker_that_dies_is_retried_once_then_reported(cluster, he_images, tmp_path):
    marker = tmp_path / "crashed-once"
    result = run_job(batch_task([he_images / "img1.png"], task=_spec("crash_once_task"), out_dir=tmp_path / "a",
                                options={"device": "cpu", "marker": str(marker)},
                                scheduler=cluster.scheduler_address))
    assert marker.exists()  # the first attempt really killed a worker process
    (row,) = result.rows
    assert row.status == "ok", row.message
    single = _single_run("detect-nuclei", he_images / "img1.png", tmp_path / "single", device="cpu")
    assert (tmp_path / "a" / "img1" / "img1.nuclei.csv").read_bytes() == single[0].read_bytes()

    # a worker that dies on every attempt: one error row, and the other input still runs
    result = run_job(batch_task([he_images / "img1.png", he_images / "img10.png"], task=_spec("crash_always_task"),
                                out_dir=tmp_path / "b", options={"device": "cpu", "attempts": str(tmp_path / "n")},
                                scheduler=cluster.scheduler_address))
    rows = _by_name(result)
    assert [r.status for r in rows.values()] == ["error", "error"]
    assert sorted((tmp_path / "n").read_text().split()) == ["img1.png"] * 2 + ["img10.png"] * 2  # retried once
    assert all("worker process died" in r.message and r.input in r.message for r in rows.values())


def test_score_beats_over_two_wfdb_records_matches_single_runs(cluster, data_dir, tmp_path):
    records = tmp_path / "records"
    records.mkdir()
    for rec in ("100", "119"):
        for ext in ("hea", "dat", "atr"):
            shutil.copy(data_dir / "ecg" / "mitdb" / f"{rec}.{ext}", records)
    out = tmp_path / "out"
    result = run_job(batch_task([records], task="score-beats", out_dir=out, options={"device": "cpu"},
                                scheduler=cluster.scheduler_address))
    assert [(Path(r.input).name, r.status) for r in result.rows] == [("100.hea", "ok"), ("119.hea", "ok")]
    for rec in ("100", "119"):
        single = _single_run("score-beats", records / f"{rec}.hea", tmp_path / "single",
                             read_opts={"modality": "ecg"}, device="cpu")
        batch_csv = (out / rec / f"{rec}.beats.csv").read_text()
        assert batch_csv == single[0].read_text()
        assert len(batch_csv.splitlines()) > 1500  # every beat of a 30-minute record


def test_reconstruct_two_dicom_series_folders(cluster, data_dir, tmp_path):
    import tifffile

    liver = data_dir / "ct" / "dcmqi_liver_ct3"
    out = tmp_path / "out"
    result = run_job(batch_task([SAMPLE_CT, liver], task="reconstruct", out_dir=out,
                                options={"device": "cpu"}, scheduler=cluster.scheduler_address))
    assert [(Path(r.input).name, r.status) for r in result.rows] == [
        ("LIDC-IDRI-0001-nodule", "ok"), ("dcmqi_liver_ct3", "ok")]
    single = _single_run("reconstruct", liver, tmp_path / "single", device="cpu")
    anomaly = next(p for p in single if p.name.endswith(".anomaly.tif"))
    batch_map = tifffile.imread(out / "dcmqi_liver_ct3" / anomaly.name)
    assert batch_map.shape == (3, 512, 512)
    np.testing.assert_array_equal(batch_map, tifffile.imread(anomaly))
    assert result.rows[1].sha256 == input_sha256(str(liver))


def test_cli_batch_json_and_exit_status(cluster, he_images, tmp_path, capsys):
    from engine.cli import main

    out = tmp_path / "cli"
    rc = main(["batch", "detect-nuclei", str(he_images / "img1.png"), str(he_images / "broken.png"),
               "--out", str(out), "--device", "cpu", "--threshold", "0.5",
               "--scheduler", cluster.scheduler_address, "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert rc == 1 and (summary["ok"], summary["error"]) == (1, 1)
    with open(out / MANIFEST_NAME, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["status"] for r in rows] == ["error", "ok"]
    params = json.loads((out / "img1" / "img1.summary.json").read_text())["parameters"]
    assert params["threshold"] == 0.5  # the task option reached the task
    rc = main(["batch", "detect-nuclei", str(he_images / "img1.png"), "--out", str(out), "--resume",
               "--scheduler", cluster.scheduler_address])
    assert rc == 0 and "0 ok, 0 error, 1 skipped" in capsys.readouterr().out


# ---------------------------------------------------------------- cancel (own local cluster)

def test_closing_the_generator_cancels_and_leaves_the_manifest_true(he_images, tmp_path):
    from distributed import Client

    out = tmp_path / "cancel"
    inputs = [he_images / f"img{i}.png" for i in (1, 10, 12)]
    job = batch_task(inputs, task="detect-nuclei", out_dir=out, options={"device": "cpu"}, workers=1, gpus=0)
    address, finished = None, []
    for p in job:
        address = p.info.get("cluster", address)
        if "row" in p.info:
            finished.append(p.info["row"])
            break
    job.close()
    assert address and len(finished) == 1
    rows = read_manifest(out / MANIFEST_NAME)
    assert list(rows) == [finished[0]["input"]] and rows[finished[0]["input"]].status == "ok"
    with pytest.raises((OSError, TimeoutError)):  # the cluster it started is gone
        Client(address, timeout=2).close()
    time.sleep(0.5)
    assert read_manifest(out / MANIFEST_NAME).keys() == rows.keys()  # nothing wrote after the close
