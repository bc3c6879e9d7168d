"""The anomaly scale has ONE definition (engine.inference.anomaly.calibrate) for every producer:
known answers of its percentiles and of its unit-bootstrap high point, and finetune's new
calibration equals ``calibrate`` run on the very planes finetune held out (issue 16)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from torch_helpers import one_torch_thread  # noqa: F401 (autouse fixture)

from engine.inference import anomaly
from engine.inference.anomaly import apply_calibration, calibrate
from engine.jobs import run_job

REPO = Path(__file__).resolve().parents[2]
CT = REPO / "resources" / "samples" / "ct" / "LIDC-IDRI-0001-nodule"

pytestmark = pytest.mark.usefixtures("user_models")


def _ramp_map(top: float, shape=(101, 101)) -> tuple[np.ndarray, np.ndarray]:
    """An error map whose values inside a centred mask are exactly 0, top/10000, ..., top."""
    err = np.full(shape, 99.0, np.float32)  # outside the mask: must never count
    mask = np.zeros(shape, bool)
    mask.ravel()[:10001] = True
    err[mask] = np.arange(10001) * (top / 10000)
    return err, mask


def test_known_answer_one_unit_is_the_pooled_p99():
    err, mask = _ramp_map(1.0)
    cal = calibrate(err[mask], data="ramp")
    assert cal["p50"] == pytest.approx(0.5) and cal["p99"] == pytest.approx(0.99)
    assert cal["p99.9"] == pytest.approx(0.999)
    assert cal["low"] == anomaly.CALIBRATION_LOW == "p50" and cal["high"] == anomaly.CALIBRATION_HIGH
    assert cal[cal["high"]] == pytest.approx(0.99) and cal["n_units"] == 1 and cal["n"] == 10001
    assert cal["definition"] == anomaly.CALIBRATION_DEFINITION
    # on its own calibration values exactly 1 % lies above 1
    assert float((apply_calibration(err[mask], cal) > 1).mean()) == pytest.approx(0.01, abs=2e-4)


def test_known_answer_units_identical_units_keep_the_pooled_p99():
    err, mask = _ramp_map(1.0)
    cal = calibrate([err[mask]] * 4)
    assert cal["n_units"] == 4 and cal[cal["high"]] == pytest.approx(0.99) == cal["p99"]


def test_known_answer_two_different_units_bound_is_the_worse_unit():
    """Units A (0..1) and B (0..2): a unit bootstrap draws AA, AB, BB with probability 1/4, 1/2,
    1/4, so its 90th percentile of the pooled p99 is BB's p99 = 1.98, above the pooled p99."""
    a, ma = _ramp_map(1.0)
    b, mb = _ramp_map(2.0)
    cal = calibrate([a[ma], b[mb]])
    pooled = float(np.percentile(np.concatenate([a[ma], b[mb]]), 99))
    assert cal["p99"] == pytest.approx(pooled) and pooled < 1.98
    assert cal[cal["high"]] == pytest.approx(1.98)
    # never stricter than the pooled estimate, and a deterministic (seeded) result
    assert cal[cal["high"]] >= cal["p99"] and calibrate([a[ma], b[mb]]) == cal


def test_empty_values_are_refused():
    with pytest.raises(ValueError):
        calibrate([np.array([np.nan]), np.array([])])


def _plane_files(folder: Path) -> dict[int, Path]:
    import pydicom

    from engine.io import read

    uids = read(str(folder)).metadata["sop_instance_uids"]
    k_of = {u: k for k, u in enumerate(uids)}
    return {k_of[str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID)]: f
            for f in folder.iterdir() if f.suffix == ".dcm"}


def test_finetune_calibration_equals_calibrate_on_the_held_out_planes(tmp_path):
    from engine.inference.calibration import calibrate_on
    from engine.io import read
    from engine.training.finetune import calibrate_model, finetune
    from engine import weights

    res = run_job(finetune("ct-dae", [str(CT)], out_dir=tmp_path, steps=2, device="cpu", name="ct-ft"))
    meta = json.loads((tmp_path / "ct-ft.json").read_text())
    assert "planes [7, 8]" in meta["validation"]["held_out"]
    cal_ft = meta["calibration"]
    assert cal_ft["definition"] == anomaly.CALIBRATION_DEFINITION and cal_ft["n_units"] == 2
    # the same planes as files of their own, through `calibrate` (a different code path: a 2-plane series)
    files = _plane_files(CT)
    held = tmp_path / "held"
    held.mkdir()
    for k in (7, 8):
        (held / files[k].name).symlink_to(files[k])
    cres = run_job(calibrate_model(res["model"], [str(held)], out_dir=tmp_path, name="ct-ft-cal"))
    cal_c = cres["calibration"]
    # and through calibrate_on (what the bundled models' training scripts call)
    cal_o = calibrate_on(weights.load(res["model"]), [(read(str(CT)), [7, 8])])
    numeric = [k for k in cal_ft if isinstance(cal_ft[k], (int, float))]
    assert {"p50", "p99", anomaly.CALIBRATION_HIGH, "n", "n_units"} <= set(numeric)
    for k in numeric:
        assert cal_c[k] == pytest.approx(cal_ft[k], rel=1e-5), k
        assert cal_o[k] == pytest.approx(cal_ft[k], rel=1e-5), k
    assert cal_c["high"] == cal_ft["high"] == cal_o["high"] == anomaly.CALIBRATION_HIGH


def _bench_ecg(*extra):
    import subprocess
    import sys

    return subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_finetune.py"), "--part", "ecg",
                           "--threads", "1", "--out", str(extra[0]), *extra[1:]],
                          cwd=REPO, capture_output=True, text=True, timeout=600)


def test_bench_finetune_refuses_a_parent_trained_on_the_test_record(tmp_path):
    """The shipped ecg-dae lists all 35 shared records in training.records: record 100 is not
    unseen, so the ECG evidence must refuse it (naming the file) before fine-tuning anything."""
    from engine import weights

    shipped = Path(weights.bundled_path("ecg-dae"))
    assert "100" in weights.load("ecg-dae").meta["training"]["records"]
    r = _bench_ecg(tmp_path / "out", "--parent", str(shipped), "--record", "100")
    assert r.returncode != 0
    assert "record 100 was used to train this model" in r.stderr and shipped.name in r.stderr
    assert not (tmp_path / "out" / "ecg-dae-100.safetensors").exists()
    # a parent whose metadata does not list its training records cannot be shown to be unseen
    lm = weights.load("ecg-dae")
    meta = {k: v for k, v in lm.meta.items() if k not in ("sha256", "file", "format_version")}
    meta["training"] = {k: v for k, v in meta["training"].items() if k != "records"}
    bare = tmp_path / "bare.safetensors"
    weights.save(lm.module, bare, meta)
    r = _bench_ecg(tmp_path / "out", "--parent", str(bare), "--record", "100")
    assert r.returncode != 0 and "lists no training.records" in r.stderr and "bare.safetensors" in r.stderr
