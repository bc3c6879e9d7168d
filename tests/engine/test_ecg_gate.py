"""The do-no-harm gate of the ECG DAE, the CV folds and lead-by-name reading (real MIT-BIH records)."""
from __future__ import annotations

import numpy as np
import pytest
import torch


def _gated_dae(level: float):
    from engine.models import build_model

    torch.manual_seed(0)
    dae = build_model("signal-unet-dae", widths=(4, 8), baseline_median=(73, 217), gate_window=181).eval()
    dae.gate_level.fill_(level)
    return dae


def _lead(data_dir, record="100", a=10_000, n=4096):
    from engine.io import read

    sig = read(str(data_dir / "ecg" / "mitdb" / record))
    x = sig.read(a, a + n)[sig.channels.index("MLII")].astype(np.float32)
    return torch.from_numpy(x - x.mean())[None, None]


def test_gate_returns_the_input_where_the_change_is_small(data_dir):
    x = _lead(data_dir)
    with torch.inference_mode():
        ungated = _gated_dae(0.0)(x)
        shut = _gated_dae(1e6)(x)  # level far above any change: g = 0 everywhere
        assert not torch.allclose(ungated, x, atol=1e-3)  # the untrained net does change the input
        torch.testing.assert_close(shut, x, rtol=0, atol=1e-6)


def test_gate_passes_large_changes_through(data_dir):
    """A level far below the change: g = 1, the output is the ungated one (up to the window edges)."""
    x = _lead(data_dir)
    with torch.inference_mode():
        ungated = _gated_dae(0.0)(x)
        opened = _gated_dae(1e-6)(x)
    torch.testing.assert_close(opened, ungated, rtol=0, atol=1e-5)


def test_gate_window_validation():
    from engine.errors import ModelError
    from engine.models import build_model

    with pytest.raises(ModelError, match="gate_window"):
        build_model("signal-unet-dae", gate_window=180)
    with pytest.raises(ModelError, match="gate_window"):
        build_model("signal-unet-dae", gate_window=181, residual=False)


def test_cv_folds_are_disjoint_and_cover_the_shared_records(data_dir):
    from signal_splits import ECG_RECORDS, ecg_folds

    folds = ecg_folds()
    assert len(folds) == 5 and sorted(r for f in folds for r in f) == sorted(ECG_RECORDS)
    assert ecg_folds() == folds  # fixed seed
    on_disk = sorted(p.stem for p in (data_dir / "ecg" / "mitdb").glob("*.hea"))
    assert sorted(ECG_RECORDS) == on_disk


def test_training_reads_mlii_by_name(data_dir):
    """Record 114 stores MLII second; the training loader puts it first."""
    import wfdb
    from train_ecg_dae import load_records

    rec = wfdb.rdrecord(str(data_dir / "ecg" / "mitdb" / "114"), sampto=2000)
    assert rec.sig_name == ["V5", "MLII"]
    got = load_records(data_dir / "ecg" / "mitdb", ["114"])[0]
    np.testing.assert_allclose(got[0, :2000], rec.p_signal[:, 1], atol=1e-6)


def test_training_noise_weights_pick_only_the_weighted_kinds(data_dir):
    """--noise-weights 0 0 1 draws electrode motion only: the noise table needs no other kind."""
    from ecg_noise import load_noise
    from train_ecg_dae import WIN, load_pairs, make_batch

    mitdb, nstdb = data_dir / "ecg" / "mitdb", data_dir / "ecg" / "nstdb"
    recs = load_pairs(mitdb, ["100"], None)
    em_only = {"em": load_noise(nstdb, "em", part="train", mitdb_dir=mitdb)}
    x, c = make_batch(recs, em_only, np.random.default_rng(0), 64, 0.0, 0.9, kind_p=np.array([0.0, 0.0, 1.0]))
    assert x.shape == c.shape == (64, 1, WIN) and np.all(np.abs(x - c).max(axis=-1) > 0)
    with pytest.raises(KeyError):  # equal weights need bw and ma too
        make_batch(recs, em_only, np.random.default_rng(0), 8, 0.0, 0.9)


def test_training_schema_follows_the_network_depth():
    from train_ecg_dae import schema_for

    from engine.models import build_model

    deep = build_model("signal-unet-dae", widths=(4, 4, 4, 4, 4, 4, 4))
    assert schema_for(deep)["input"]["size_multiple"] == 64 == deep.multiple
    assert schema_for(build_model("signal-unet-dae", widths=(4, 8)))["input"]["size_multiple"] == 2


def test_bundled_dae_leaves_a_clean_record_alone(data_dir):
    """Do no harm: the shipped ecg-dae's output on a clean reference stays >= 15 dB from it."""
    from ecg_noise import clean_reference, snr_db

    from engine.data import Signal
    from engine.io import read
    from engine.jobs import run_job
    from engine.tasks.denoise import denoise_task

    sig = read(str(data_dir / "ecg" / "mitdb" / "119"))
    ch = sig.channels.index("MLII")
    c = clean_reference(sig.read(100_000, 100_000 + 20 * 360)[ch], sig.sfreq)[720:-720]
    c = c - c.mean()
    out = run_job(denoise_task(Signal.from_array(c[None].astype(np.float32), sfreq=sig.sfreq, modality="ecg"),
                               device="cpu")).signal.data[0]
    assert snr_db(c, out) >= 15.0
