"""``python -m engine reconstruct`` / ``train`` / ``models`` on real shared files with the bundled models."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from torch_helpers import one_torch_thread  # noqa: F401 (autouse fixture)

from engine._shared.files import sha256_file
from engine.cli import main
from engine.weights import bundled_path, list_bundled

BUNDLED = {r["name"] for r in list_bundled()}


def _need(name):
    if name not in BUNDLED:
        pytest.skip(f"bundled model {name} is not installed (resources/models/manifest.json)")


def _run_json(capsys, argv):
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out.strip().splitlines()[-1])


def _check_outputs(summary, model, stem, out, shape):
    assert summary["model"]["sha256"] == sha256_file(bundled_path(model))
    s = json.loads((out / f"{stem}.summary.json").read_text())
    assert s["model"]["sha256"] == summary["model"]["sha256"]
    assert s["anomaly"]["calibrated"] is True
    assert set(s["timings_s"]) >= {"inference", "total"} and s["device"]


@pytest.mark.parametrize("case", ["ct", "histology"])
def test_reconstruct_images(case, data_dir, tmp_path, capsys):
    import tifffile

    model, path, stem = {
        "ct": ("ct-dae", data_dir / "ct/dcmqi_liver_ct3", "dcmqi_liver_ct3"),
        "histology": ("histo-cae", data_dir / "histo/crchisto/img4/img4.png", "img4"),
    }[case]
    _need(model)
    from engine.io import read

    shape = read(str(path)).shape
    s = _run_json(capsys, ["reconstruct", str(path), "--out", str(tmp_path), "--json", "--device", "cpu"])
    _check_outputs(s, model, stem, tmp_path, shape)
    rec = tifffile.imread(tmp_path / f"{stem}.recon.tif")
    an = tifffile.imread(tmp_path / f"{stem}.anomaly.tif")
    assert rec.shape == tuple(shape) and rec.dtype == np.float32 and np.isfinite(rec).all()
    assert an.shape == tuple(shape[:3] if case == "ct" else shape[:2]) and np.isfinite(an).all()
    assert an.min() >= 0
    if case == "ct":  # reconstruction is CT-like: HU, clipped to the model window
        assert -1000.5 <= rec.min() and rec.max() <= 500.5 and rec.std() > 100


@pytest.mark.slow  # 64 channels x 125 s: ~15 s on an idle core
def test_reconstruct_eeg_edf(data_dir, tmp_path, capsys):
    _need("eeg-cae")
    from engine.io import read

    edf = data_dir / "eeg/eegmmidb/S001R04.edf"
    s = _run_json(capsys, ["reconstruct", str(edf), "--out", str(tmp_path), "--json"])
    _check_outputs(s, "eeg-cae", "S001R04", tmp_path, None)
    rec = np.load(tmp_path / "S001R04.recon.npy")
    an = np.load(tmp_path / "S001R04.anomaly.npy")
    sig = read(str(edf))
    assert rec.shape == an.shape == sig.shape and rec.dtype == np.float32
    assert np.isfinite(rec).all() and np.isfinite(an).all()
    # the reconstruction follows the EEG, in the input's units (uV)
    c = np.corrcoef(sig.data[:8].ravel(), rec[:8].ravel())[0, 1]
    assert c > 0.7, c


def test_reconstruct_bonn_text_resampled(data_dir, tmp_path, capsys):
    """A Bonn segment at 173.61 Hz is resampled to the model's 160 Hz and mapped back."""
    _need("eeg-cae")
    txt = data_dir / "eeg/bonn/A_Z/Z001.txt"
    s = _run_json(capsys, ["reconstruct", str(txt), "--sfreq", "173.61", "--modality", "eeg", "--out",
                           str(tmp_path), "--json"])
    _check_outputs(s, "eeg-cae", "Z001", tmp_path, None)
    rec = np.load(tmp_path / "Z001.recon.npy")
    an = np.load(tmp_path / "Z001.anomaly.npy")
    x = np.loadtxt(txt)
    assert rec.shape == an.shape == (1, 4097) and np.isfinite(rec).all() and np.isfinite(an).all()
    assert s["parameters"]["sfreq_in"] == pytest.approx(173.61)
    assert np.corrcoef(x, rec[0])[0, 1] > 0.7


def test_reconstruct_ecg(data_dir, tmp_path, capsys):
    if "ecg-dae" not in BUNDLED:
        pytest.skip("ecg-dae is built by the ECG/EEG task and is not installed yet")
    s = _run_json(capsys, ["reconstruct", str(data_dir / "ecg/mitdb/100"), "--out", str(tmp_path), "--json"])
    rec = np.load(tmp_path / "100.recon.npy")
    assert rec.shape == (2, 650000) and np.isfinite(rec).all()
    _check_outputs(s, "ecg-dae", "100", tmp_path, None)


def test_modality_mismatch_is_a_clear_error(data_dir, tmp_path, capsys):
    _need("histo-cae")
    code = main(["reconstruct", str(data_dir / "ct/dcmqi_liver_ct3"), "--model", "histo-cae", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "histology" in err and "ct" in err
    assert not any(tmp_path.iterdir())  # nothing written


def test_models_lists_bundled(capsys):
    rows = _run_json(capsys, ["models", "--json"])
    names = {r["name"] for r in rows}
    assert BUNDLED <= names
    for r in rows:
        if r["name"] in ("ct-dae", "histo-cae", "eeg-cae"):
            assert r["calibration"]["p99"] > r["calibration"]["p50"] > 0
            assert "train_bundled.py" in r["training"]["command"]
            assert bundled_path(r["name"]).stat().st_size < 20e6


def test_train_cli_one_tiny_epoch_then_reconstruct(data_dir, tmp_path, capsys):
    a, b = data_dir / "eeg/bonn/A_Z/Z001.txt", data_dir / "eeg/bonn/A_Z/Z002.txt"
    s = _run_json(capsys, ["train", "--family", "denoising", "--modality", "eeg", "--data", str(a), str(b),
                           "--sfreq", "173.61", "--out", str(tmp_path), "--epochs", "1", "--window", "256",
                           "--channels", "4,8", "--batch-size", "8", "--name", "tiny", "--json"])
    model = tmp_path / "tiny.safetensors"
    assert model.exists() and (tmp_path / "tiny.json").exists()
    meta = json.loads((tmp_path / "tiny.json").read_text())
    assert meta["architecture"] == "denoising" and meta["input"]["sfreq"] == pytest.approx(173.61)
    assert "Z002" in meta["calibration"]["data"]  # the held-out input calibrates
    assert meta["training"]["command"].startswith("python -m engine train --family denoising --modality eeg")
    assert s["sha256"] == sha256_file(model)
    out = tmp_path / "rec"
    s2 = _run_json(capsys, ["reconstruct", str(a), "--sfreq", "173.61", "--modality", "eeg", "--model", str(model),
                            "--out", str(out), "--json"])
    assert s2["model"]["sha256"] == s["sha256"]
    assert np.load(out / "Z001.recon.npy").shape == (1, 4097)


@pytest.mark.parametrize("family", ["conv", "sparse-conv", "stacked-sparse", "denoising", "contractive", "vae"])
def test_every_family_trains_and_reconstructs_from_the_cli(family, data_dir, tmp_path, capsys):
    """Each AE family trains one tiny epoch on ECG from the CLI and its model reconstructs the record."""
    rec = str(data_dir / "ecg/mitdb/100")
    s = _run_json(capsys, ["train", "--family", family, "--modality", "ecg", "--data", rec, "--out", str(tmp_path),
                           "--epochs", "1", "--window", "256", "--channels", "4,8", "--hidden", "32,8",
                           "--batch-size", "64", "--name", "tiny", "--device", "cpu", "--json"])
    meta = json.loads((tmp_path / "tiny.json").read_text())
    assert meta["architecture"] == {"sparse-conv": "sparse-conv"}.get(family, family)
    assert np.isfinite(s["metrics"]["best_val_loss"]) and meta["calibration"]["p99"] > 0
    s2 = _run_json(capsys, ["reconstruct", rec, "--model", str(tmp_path / "tiny.safetensors"), "--device", "cpu",
                            "--out", str(tmp_path / "rec"), "--json"])
    recon = np.load(tmp_path / "rec" / "100.recon.npy")
    assert recon.shape[0] == 2 and np.isfinite(recon).all()
    assert s2["model"]["sha256"] == s["sha256"]


@pytest.mark.parametrize("family,modality,path", [("stacked-sparse", "ct", "ct/dcmqi_liver_ct3"),
                                                   ("vae", "histology", "histo/crchisto/img1/img1.png")])
def test_image_families_train_on_patches_and_tile(family, modality, path, data_dir, tmp_path, capsys):
    src = data_dir / path
    _run_json(capsys, ["train", "--family", family, "--modality", modality, "--data", str(src), "--out",
                       str(tmp_path), "--epochs", "1", "--patch", "32", "--n-patches", "32", "--channels", "4,8",
                       "--hidden", "32,8", "--name", "tiny", "--device", "cpu", "--json"])
    meta = json.loads((tmp_path / "tiny.json").read_text())
    if family == "stacked-sparse":
        assert meta["input"]["tile"] == 32 and meta["hparams"]["patch_size"] == [32, 32]
    s2 = _run_json(capsys, ["reconstruct", str(src), "--model", str(tmp_path / "tiny.safetensors"), "--device", "cpu",
                            "--out", str(tmp_path / "rec"), "--json"])
    assert s2["anomaly"]["calibrated"] and np.isfinite(s2["anomaly"]["stats"]["max"])
