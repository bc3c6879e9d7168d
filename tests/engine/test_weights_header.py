"""A valid safetensors file is never mistaken for a pickle because of its header length bytes."""
from __future__ import annotations

import struct

import pytest
import torch

from engine.errors import WeightsError
from engine.weights import load, read_metadata, save


def _save_with_header_low_byte(tmp_path, low: int):
    """Save a tiny model, padding the metadata until the header length's first byte is *low*."""
    net = torch.nn.Conv1d(1, 1, 3)
    path = tmp_path / "m.safetensors"
    for pad in range(0, 600):
        meta = {"architecture": "x", "hparams": {}, "modality": "ecg", "pad": " " * pad}
        save(net, path, meta)
        if path.read_bytes()[0] == low:
            return path, meta
    pytest.fail("could not reach the wanted header length")


@pytest.mark.parametrize("low", [0x80, ord("P")])
def test_header_length_starting_like_a_pickle_is_accepted(tmp_path, low):
    path, meta = _save_with_header_low_byte(tmp_path, low)
    assert read_metadata(path)["pad"] == meta["pad"]


def test_real_pickle_is_still_refused(tmp_path):
    p = tmp_path / "ckpt.safetensors"
    torch.save({"w": torch.zeros(3)}, p)  # zip-based pickle checkpoint under a misleading name
    with pytest.raises(WeightsError, match="pickle"):
        load(p)
    raw = tmp_path / "raw.safetensors"
    raw.write_bytes(b"\x80\x04" + struct.pack("<Q", 3) + b"junk")  # protocol-4 pickle opcode
    with pytest.raises(WeightsError, match="pickle"):
        read_metadata(raw)
