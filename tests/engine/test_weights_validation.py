"""Untrusted weights are checked before the network is built: metadata schema, a size cap on
the meta device, header dtypes/shapes, and NaN/Inf values; every failure is a WeightsError
naming the file."""
from __future__ import annotations

import json
import struct
import time

import pytest
import torch
from safetensors.torch import save_file

from engine import weights
from engine.errors import WeightsError
from engine.models import build_model


def _net():
    return build_model("conv", spatial_dims=1, channels=[4, 8]).eval()


def _write(path, state, meta):
    """A safetensors file with *state* and raw *meta* (any JSON value, or a non-JSON string)."""
    latent = meta if isinstance(meta, str) else json.dumps(meta)
    save_file({k: v.contiguous() for k, v in state.items()}, str(path), metadata={"latent": latent})
    return path


def _good(tmp_path):
    net = _net()
    meta = {"architecture": "conv", "hparams": net.hparams, "modality": "ecg", "format_version": 1}
    return net, meta


def test_valid_file_loads(tmp_path):
    net, meta = _good(tmp_path)
    p = _write(tmp_path / "ok.safetensors", net.state_dict(), meta)
    assert weights.load(p).meta["architecture"] == "conv"


def test_huge_network_refused_without_allocating(tmp_path):
    """Metadata asking for ~130 GB of weights is refused fast, before anything is built."""
    net, meta = _good(tmp_path)
    meta["hparams"] = {**meta["hparams"], "spatial_dims": 2, "channels": [60000, 60000], "kernel_size": 3}
    p = _write(tmp_path / "huge.safetensors", net.state_dict(), meta)
    t0 = time.perf_counter()
    with pytest.raises(WeightsError, match=r"huge\.safetensors.*cap"):
        weights.load(p)
    assert time.perf_counter() - t0 < 10  # a real build would allocate tens of GB


MALFORMED = {
    "not-json": "{not json",
    "list": [1, 2],
    "no-architecture": {"hparams": {}, "modality": "ecg"},
    "architecture-number": {"architecture": 3, "hparams": {}, "modality": "ecg"},
    "unknown-architecture": {"architecture": "gpt-9", "hparams": {}, "modality": "ecg"},
    "hparams-list": {"architecture": "conv", "hparams": [1], "modality": "ecg"},
    "hparams-unknown-key": {"architecture": "conv", "hparams": {"bogus": 1}, "modality": "ecg"},
    "hparams-bad-type": {"architecture": "conv", "hparams": {"channels": "abc"}, "modality": "ecg"},
    "hparams-negative": {"architecture": "conv", "hparams": {"channels": [-4, 8]}, "modality": "ecg"},
    "hparams-bad-key": {"architecture": "conv", "hparams": {"1 x": 1}, "modality": "ecg"},
    "modality-missing": {"architecture": "conv", "hparams": {}},
    "format-version": {"architecture": "conv", "hparams": {}, "modality": "ecg", "format_version": "x"},
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_metadata_is_a_weights_error_naming_the_file(tmp_path, case):
    net, _ = _good(tmp_path)
    p = _write(tmp_path / f"{case}.safetensors", net.state_dict(), MALFORMED[case])
    with pytest.raises(WeightsError, match=case):
        weights.load(p)


def test_metadata_not_a_string_in_header(tmp_path):
    p = tmp_path / "rawmeta.safetensors"
    header = json.dumps({"__metadata__": {"latent": 5}}).encode()
    p.write_bytes(struct.pack("<Q", len(header)) + header)
    with pytest.raises(WeightsError, match="rawmeta"):
        weights.read_metadata(p)


@pytest.mark.parametrize("dtype", [torch.float64, torch.int8, torch.float16])
def test_wrong_dtype_refused(tmp_path, dtype):
    net, meta = _good(tmp_path)
    state = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in net.state_dict().items()}
    p = _write(tmp_path / "dt.safetensors", state, meta)
    with pytest.raises(WeightsError, match=r"dt\.safetensors.*not converted"):
        weights.load(p)


def test_wrong_shape_and_missing_tensor_refused(tmp_path):
    net, meta = _good(tmp_path)
    state = dict(net.state_dict())
    name = next(k for k, v in state.items() if v.ndim > 1)
    state[name] = torch.zeros(*state[name].shape[:-1], state[name].shape[-1] + 1)
    with pytest.raises(WeightsError, match="shape"):
        weights.load(_write(tmp_path / "sh.safetensors", state, meta))
    del state[name]
    with pytest.raises(WeightsError, match="missing"):
        weights.load(_write(tmp_path / "mi.safetensors", state, meta))


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_weights_refused(tmp_path, bad):
    net, meta = _good(tmp_path)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    name = next(k for k, v in state.items() if v.is_floating_point() and v.ndim > 1)
    state[name].view(-1)[0] = bad
    p = _write(tmp_path / "nf.safetensors", state, meta)
    with pytest.raises(WeightsError, match=r"nf\.safetensors.*NaN or Inf"):
        weights.load(p)
