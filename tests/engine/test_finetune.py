"""Transfer learning (issue 16): finetune / calibrate generators, user models, refusals, CLI."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from torch_helpers import one_torch_thread  # noqa: F401 (autouse fixture)

from engine.errors import ModelError, WeightsError
from engine.jobs import run_job
from engine.training.finetune import calibrate_model, finetune, read_annotations, split_units

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "resources" / "samples"
CT = SAMPLES / "ct" / "LIDC-IDRI-0001-nodule"


# every test here installs user models into its own (not yet created) folder
pytestmark = pytest.mark.usefixtures("user_models")


def test_split_is_by_unit_and_holds_out_the_last():
    assert split_units(10, 0.2) == (list(range(8)), [8, 9])
    assert split_units(2, 0.2) == ([0], [1])
    assert split_units(1, 0.2) == ([0], [])
    assert split_units(5, 0.0) == (list(range(5)), [])
    with pytest.raises(ModelError):
        split_units(5, 1.0)


def test_ct_finetune_writes_weights_json_parent_fingerprints_and_calibration(tmp_path):
    from engine import weights

    progress = []
    res = run_job(finetune("ct-dae", [str(CT)], out_dir=tmp_path, steps=2, device="cpu", name="ct-mine"),
                  progress.append)
    assert progress and progress[-1].fraction == 1.0
    assert Path(res["model"]).exists() and res["figures"] and Path(res["figures"][0]).exists()
    meta = json.loads((tmp_path / "ct-mine.json").read_text())
    assert meta["sha256"] == res["sha256"]
    parent = weights.load("ct-dae")
    assert meta["parent"]["name"] == "ct-dae" and meta["parent"]["sha256"] == parent.sha256
    files = {Path(f["file"]).name for f in meta["training"]["data"]}
    assert {p.name for p in CT.iterdir() if p.is_file()} <= files
    assert all(len(f["sha256"]) == 64 for f in meta["training"]["data"])
    hp = meta["training"]["hyperparameters"]
    assert hp["steps"] == 2 and hp["freeze"] == "none" and hp["val_fraction"] == 0.2
    # 9 planes: the last 2 (contiguous) are held out, calibration is on them
    assert meta["training"]["n_held_out_units"] == 2 and "planes [7, 8]" in meta["validation"]["held_out"]
    assert "held-out" in meta["calibration"]["data"] and meta["calibration"] != parent.meta["calibration"]
    assert set(meta["validation"]["before"]) >= {"fraction_above_1", "raw_error_mean"}
    lm = weights.load(res["model"])
    assert lm.meta["name"] == "ct-mine"


def test_freeze_encoder_keeps_encoder_weights(tmp_path):
    import torch

    from engine import weights

    res = run_job(finetune("eeg-cae", [str(SAMPLES / "eeg" / "S001R04.edf")], out_dir=tmp_path, steps=2,
                           freeze="encoder", device="cpu", lr=1e-2))
    a, b = weights.load("eeg-cae").module.state_dict(), weights.load(res["model"]).module.state_dict()
    enc = [k for k in a if k.startswith(("enc", "down", "to_latent")) and a[k].dtype.is_floating_point
           and "running" not in k and "num_batches" not in k]
    dec = [k for k in a if k.startswith(("dec", "up", "head")) and a[k].dtype.is_floating_point]
    assert enc and dec
    assert all(torch.equal(a[k], b[k]) for k in enc if "weight" in k or "bias" in k and "norm" not in k)
    assert any(not torch.equal(a[k], b[k]) for k in dec)
    assert "last 20% in time" in res["validation"]["held_out"]


def test_ecg_dae_finetune_on_part_of_a_record(tmp_path):
    from engine.data import Signal
    from engine.io import read

    sig = read(str(SAMPLES / "ecg" / "119"))
    part = Signal.from_array(sig.read(0, 360 * 150).astype(np.float32), sfreq=sig.sfreq, modality="ecg",
                             channels=sig.channels, units=sig.units, path="119[0:150s]")
    res = run_job(finetune("ecg-dae", [part], out_dir=tmp_path, steps=2, device="cpu"))
    v = res["validation"]
    assert {"floor_db", "bw_+0dB_improvement_db", "ma_+0dB_improvement_db"} <= set(v["before"]) & set(v["after"])
    meta = json.loads(Path(res["model"]).with_suffix(".json").read_text())
    assert meta["training"]["data"][0]["file"].startswith("119[0:150s]") and meta["calibration"]["n"] > 0


def _gated_ecg_dae(level: float):
    """The bundled ecg-dae with a do-no-harm gate (window 181, *level* mV), as scripts/train_ecg_dae.py
    --gate-window writes it."""
    import dataclasses

    from engine import weights
    from engine.models.signal_nets import SignalUNetDAE

    lm = weights.load("ecg-dae")
    hp = {**lm.meta["hparams"], "gate_window": 181}
    net = SignalUNetDAE(**{k: tuple(v) if isinstance(v, list) else v for k, v in hp.items()})
    net.load_state_dict(lm.module.state_dict(), strict=False)
    net.gate_level.fill_(level)
    meta = {**lm.meta, "hparams": hp, "training": {**lm.meta["training"], "gate": {"quantile": 0.99}}}
    return dataclasses.replace(lm, meta=meta, module=net.eval())


def test_gated_ecg_dae_finetune_trains_ungated_and_keeps_the_parents_gate(tmp_path, monkeypatch):
    from engine import weights
    from engine.data import Signal
    from engine.io import read
    from engine.models.signal_nets import SignalUNetDAE
    from engine.training.finetune import ecg

    assert ecg.DAE_GATE == "parent" and ecg.DAE_CLEAN_FRACTION == 0.3  # the measured recipe (README)
    gated_in_training = []
    real_gate = SignalUNetDAE.gate

    def spy(self, corr):
        gated_in_training.append(self.training)
        return real_gate(self, corr)
    monkeypatch.setattr(SignalUNetDAE, "gate", spy)
    sig = read(str(SAMPLES / "ecg" / "119"))
    part = Signal.from_array(sig.read(0, 360 * 150).astype(np.float32), sfreq=sig.sfreq, modality="ecg",
                             channels=sig.channels, units=sig.units, path="119[0:150s]")
    res = run_job(finetune(_gated_ecg_dae(0.05), [part], out_dir=tmp_path, steps=3, device="cpu"))
    assert gated_in_training and not any(gated_in_training)  # the gate ran only in validation, not in training
    after = weights.load(res["model"])
    assert float(after.module.gate_level) == pytest.approx(0.05)
    recipe = json.loads(Path(res["model"]).with_suffix(".json").read_text())["training"]["recipe"]
    assert recipe["gate"] == "parent" and recipe["clean_fraction"] == 0.3


def test_gate_calibration_is_a_quantile_of_the_clean_change():
    import torch

    from engine.models.signal_nets import SignalUNetDAE

    torch.manual_seed(0)
    net = SignalUNetDAE(widths=(4, 8), gate_window=31).eval()
    x = torch.randn(8, 1, 512) * 0.3
    lo, hi = net.calibrate_gate(x, quantile=0.5), net.calibrate_gate(x, quantile=0.99)
    assert 0 < lo < hi and float(net.gate_level) == pytest.approx(hi)
    with pytest.raises(ModelError):
        SignalUNetDAE(widths=(4, 8)).calibrate_gate(x, quantile=0.99)


def test_ecg_beats_finetune_on_normal_beats(tmp_path):
    res = run_job(finetune("ecg-beats", [str(SAMPLES / "ecg" / "119")], out_dir=tmp_path, steps=3, device="cpu"))
    b, a = res["validation"]["before"], res["validation"]["after"]
    assert b["n_abnormal"] > 0 and "auroc_latent_abnormal_vs_normal" in a and a["normal_beat_mse"] > 0
    assert "last 20% in time" in res["validation"]["held_out"]


def test_noise_resources_ship_with_attribution():
    from engine.training.finetune import load_noise_resources

    for k in ("bw", "ma", "em"):
        n = load_noise_resources(k)
        assert n.shape[0] == 2 and n.shape[1] >= 60 * 360 and np.isfinite(n).all()
    readme = (REPO / "resources" / "noise" / "README.md").read_text()
    assert "Open Data Commons Attribution" in readme and "Moody" in readme


def _nuclei_inputs(tmp_path):
    """Two copies of the sample tile, annotated with the bundled detector's own points (CSV and GeoJSON)."""
    from engine import weights
    from engine.io import read
    from engine.tasks.nuclei.core import detect_array

    src = SAMPLES / "histology" / "crchisto_img4.png"
    lm = weights.load("histo-nuclei")
    xy, _ = detect_array(lm.module, read(str(src)).array, threshold=0.35, min_distance=3)
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    shutil.copy(src, a)
    shutil.copy(src, b)
    (tmp_path / "a.csv").write_text("x,y\n" + "\n".join(f"{x},{y}" for x, y in xy))
    feats = [{"type": "Feature", "geometry": {"type": "MultiPoint", "coordinates": xy.tolist()},
              "properties": {"objectType": "annotation"}}]
    (tmp_path / "b.geojson").write_text(json.dumps(feats))  # QuPath exports a list of features
    return [a, b], xy


def test_read_annotations_csv_and_geojson(tmp_path):
    (tmp_path / "p.csv").write_text("x,y,class\n1,2,a\n3.5,4,b\n")
    assert read_annotations(tmp_path / "p.csv").tolist() == [[1, 2], [3.5, 4]]
    fc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [5, 6]}},
        {"type": "Feature",
         "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [2, 0], [2, 2], [0, 2], [0, 0]]]}}]}
    (tmp_path / "p.geojson").write_text(json.dumps(fc))
    assert read_annotations(tmp_path / "p.geojson").tolist() == [[5, 6], [1, 1]]


def test_nuclei_finetune_from_points(tmp_path):
    imgs, xy = _nuclei_inputs(tmp_path)
    res = run_job(finetune("histo-nuclei", [str(p) for p in imgs], out_dir=tmp_path / "out", steps=2,
                           device="cpu", mpp=0.5))
    v = res["validation"]
    assert v["held_out"].endswith("b.png")
    assert v["before"]["f1"] > 0.9  # the parent's own points: a sanity check of the point pipeline
    meta = json.loads(Path(res["model"]).with_suffix(".json").read_text())
    assert "tuned_on" in meta["detector"] and {"threshold", "min_distance"} <= set(meta["detector"])


def test_nuclei_without_annotations_is_refused(tmp_path):
    img = tmp_path / "c.png"
    shutil.copy(SAMPLES / "histology" / "crchisto_img4.png", img)
    with pytest.raises(ModelError, match="no point annotations"):
        run_job(finetune("histo-nuclei", [str(img)], out_dir=tmp_path, steps=1))


def test_eeg_seizure_finetune_from_labelled_segments(tmp_path):
    files = [str(SAMPLES / "eeg" / "bonn_S001.txt"), str(SAMPLES / "eeg" / "bonn_Z001.txt")]
    (tmp_path / "labels.csv").write_text("file,label\nbonn_S001.txt,1\nbonn_Z001.txt,0\n")
    res = run_job(finetune("eeg-seizure", files, out_dir=tmp_path, steps=3, labels=tmp_path / "labels.csv",
                           sfreq=173.61, device="cpu"))
    meta = json.loads(Path(res["model"]).with_suffix(".json").read_text())
    assert meta["training"]["labels"] == {files[0]: 1, files[1]: 0}
    assert "balanced_accuracy" in res["validation"]["after"]


def test_finetune_can_be_cancelled(tmp_path):
    job = finetune("ct-dae", [str(CT)], out_dir=tmp_path, steps=50, device="cpu")
    from engine.errors import CancelledError

    with pytest.raises(CancelledError):
        run_job(job, lambda p: None, should_cancel=lambda: True)
    assert not list(tmp_path.glob("*.safetensors"))


def _tampered(tmp_path) -> Path:
    from engine import weights

    d = tmp_path / "t"
    d.mkdir()
    src = weights.bundled_path("eeg-cae")
    dst = d / "eeg-cae-copy.safetensors"
    shutil.copy(src, dst)
    meta = json.loads(src.with_suffix(".json").read_text())
    (d / "eeg-cae-copy.json").write_text(json.dumps(meta))
    with open(dst, "r+b") as fh:  # flip one byte of the tensor data
        fh.seek(-3, 2)
        b = fh.read(1)
        fh.seek(-3, 2)
        fh.write(bytes([b[0] ^ 0xFF]))
    return dst


def test_sha256_mismatch_and_pickle_are_refused(tmp_path):
    bad = _tampered(tmp_path)
    with pytest.raises(WeightsError, match="does not match"):
        run_job(finetune(str(bad), [str(SAMPLES / "eeg" / "S001R04.edf")], out_dir=tmp_path, steps=1))
    pt = tmp_path / "model.pt"
    pt.write_bytes(b"\x80\x04\x95" + b"\0" * 64)
    with pytest.raises(WeightsError, match="pickle"):
        run_job(finetune(str(pt), [str(CT)], out_dir=tmp_path, steps=1))
    disguised = tmp_path / "model.safetensors"
    disguised.write_bytes(b"PK\x03\x04" + b"\0" * 64)
    with pytest.raises(WeightsError, match="pickle"):
        run_job(finetune(str(disguised), [str(CT)], out_dir=tmp_path, steps=1))


def test_user_models_install_list_load_remove(tmp_path, user_models):
    from engine import weights

    res = run_job(finetune("ct-dae", [str(CT)], out_dir=tmp_path, steps=1, name="ct-site", device="cpu"))
    row = weights.install_user(res["model"])
    assert row["name"] == "ct-site" and row["parent"]["name"] == "ct-dae"
    assert (user_models / "ct-site.safetensors").exists()
    rows = {r["name"]: r for r in weights.list_models()}
    assert rows["ct-dae"]["source"] == "bundled" and rows["ct-site"]["source"] == "user"
    lm = weights.load("ct-site")  # by name, found in the user folder
    assert lm.sha256 == res["sha256"]
    with pytest.raises(WeightsError, match="already installed"):
        weights.install_user(res["model"])
    with pytest.raises(WeightsError, match="bundled"):
        weights.install_user(res["model"], name="ct-dae")
    with pytest.raises(WeightsError, match="does not match"):
        weights.install_user(_tampered(tmp_path))
    # a user model replaced behind our back is refused on load
    (user_models / "ct-site.safetensors").write_bytes(Path(weights.bundled_path("ct-dae")).read_bytes())
    with pytest.raises(WeightsError, match="does not match"):
        weights.load("ct-site")
    weights.remove_user("ct-site")
    assert not (user_models / "ct-site.safetensors").exists() and not (user_models / "ct-site.json").exists()
    with pytest.raises(WeightsError):
        weights.remove_user("ct-dae")


def test_calibrate_without_training(tmp_path):
    res = run_job(calibrate_model("ct-dae", [str(CT)], out_dir=tmp_path, name="ct-cal"))
    f = res["fraction_above_1"]
    # 9 planes = 9 units: the high point is the unit-bootstrap bound of the p99, never below the pooled p99,
    # so at most ~1 % of the calibration values lie above 1 (exactly 1 % under the pooled p99 itself)
    cal = res["calibration"]
    assert cal["n_units"] == 9 and cal[cal["high"]] >= cal["p99"]
    assert 0.0 < f["new_scale"] <= 0.01 + 0.002
    meta = json.loads((tmp_path / "ct-cal.json").read_text())
    assert meta["parent"]["name"] == "ct-dae" and meta["training"]["kind"] == "calibrate"
    with pytest.raises(ModelError, match="no anomaly scale"):
        run_job(calibrate_model("histo-nuclei", [str(SAMPLES / "histology" / "crchisto_img4.png")], out_dir=tmp_path))


def test_resume_from_model_weights_is_a_clear_error(tmp_path):
    import torch

    from engine import weights
    from engine.training.loop import load_checkpoint

    lm = weights.load("eeg-cae")
    opt = torch.optim.Adam(lm.module.parameters())
    with pytest.raises(ModelError, match="not a training checkpoint.*finetune"):
        load_checkpoint(weights.bundled_path("eeg-cae"), lm.module, opt, torch.Generator())


def test_cli_finetune_models_install_remove_calibrate(tmp_path, capsys, user_models):
    from engine.cli import main

    out = tmp_path / "out"
    assert main(["finetune", "--model", "ct-dae", "--data", str(CT), "--out", str(out), "--steps", "1",
                 "--name", "ct-cli", "--device", "cpu", "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["parent"]["name"] == "ct-dae" and Path(s["model"]).exists()
    assert main(["models", "--install", s["model"]]) == 0
    capsys.readouterr()
    assert main(["models"]) == 0
    listing = capsys.readouterr().out
    assert "ct-cli" in listing and "from ct-dae" in listing
    assert main(["models", "--remove", "ct-cli"]) == 0
    capsys.readouterr()
    bad = _tampered(tmp_path)
    assert main(["finetune", "--model", str(bad), "--data", str(CT), "--out", str(out), "--steps", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "does not match" in err
    assert main(["calibrate", "--model", "ct-dae", "--data", str(CT), "--out", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["parent"]["name"] == "ct-dae"
