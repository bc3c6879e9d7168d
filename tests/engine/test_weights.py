"""Weights: safetensors round trip, pickle refused, damaged/renamed files caught."""
from __future__ import annotations

import json
import shutil

import pytest
import torch

from engine import weights
from engine.errors import WeightsError
from engine.models import build_model

META = {"architecture": "conv", "modality": "eeg",
        "preprocessing": {"kind": "signal", "units": "uV", "scale": 50.0, "baseline": "mean"},
        "input": {"channels": 1, "channel_mode": "per_channel", "window": 64, "overlap": 32, "sfreq": 100.0}}


def _model(seed=0):
    torch.manual_seed(seed)
    return build_model("conv", spatial_dims=1, channels=[4, 8]).eval()


def test_round_trip(tmp_path):
    m = _model()
    p = tmp_path / "m.safetensors"
    digest = weights.save(m, p, {**META, "hparams": m.hparams, "calibration": {"p50": 0.1, "p99": 0.5}})
    side = json.loads(p.with_suffix(".json").read_text())
    assert side["sha256"] == digest and side["hparams"] == m.hparams
    loaded = weights.load(p)
    assert loaded.sha256 == digest and loaded.modality == "eeg"
    assert loaded.meta["calibration"]["p99"] == 0.5
    x = torch.randn(2, 1, 64)
    with torch.no_grad():
        assert torch.equal(loaded.module(x), m(x))


def test_pickle_checkpoint_refused(tmp_path):
    m = _model()
    pt = tmp_path / "model.pt"
    torch.save(m.state_dict(), pt)
    with pytest.raises(WeightsError, match="pickle"):
        weights.load(pt)
    disguised = tmp_path / "model.safetensors"  # a torch.save zip renamed to .safetensors
    shutil.copy(pt, disguised)
    with pytest.raises(WeightsError, match="pickle"):
        weights.load(disguised)


def test_damaged_header_refused(tmp_path):
    m = _model()
    p = tmp_path / "m.safetensors"
    weights.save(m, p, {**META, "hparams": m.hparams})
    raw = bytearray(p.read_bytes())
    raw[8:12] = b"\x00\x00\x00\x00"  # destroy the JSON header
    p.write_bytes(bytes(raw))
    with pytest.raises(WeightsError, match="header|safetensors"):
        weights.load(p)
    p.write_bytes(bytes(raw[:20]))  # truncated
    with pytest.raises(WeightsError):
        weights.load(p)


def test_bundled_sha256_checked(tmp_path, monkeypatch):
    monkeypatch.setenv("LATENT_RESOURCES", str(tmp_path))
    (tmp_path / "models").mkdir()
    a, b = _model(0), _model(1)
    pa = tmp_path / "models" / "a.safetensors"
    weights.save(a, pa, {**META, "hparams": a.hparams})
    weights.register_bundled("a", pa, task="reconstruct", description="test")
    assert weights.load("a").name == "a"
    # a different model's file renamed onto a's: the sha256 in the manifest no longer matches
    pb = tmp_path / "b.safetensors"
    weights.save(b, pb, {**META, "hparams": b.hparams})
    shutil.copy(pb, pa)
    with pytest.raises(WeightsError, match="sha256"):
        weights.load("a")
    # one flipped byte in the tensor data
    weights.save(a, pa, {**META, "hparams": a.hparams})
    weights.register_bundled("a", pa, task="reconstruct", description="test")
    raw = bytearray(pa.read_bytes())
    raw[-5] ^= 0xFF
    pa.write_bytes(bytes(raw))
    with pytest.raises(WeightsError, match="sha256"):
        weights.load("a")
    with pytest.raises(WeightsError, match="bundled"):
        weights.load("no-such-model")
