"""BatchNorm folding keeps every bundled network's output (the inference-speed rewrite)."""
from __future__ import annotations

import pytest
import torch

from engine import weights
from engine.inference.optimize import count_batchnorm, fold_batchnorm

# an input each bundled network accepts: batch, channels (hparams in_channels), spatial size
_SHAPES = {
    "ct-dae": (1, 1, 64, 64),
    "histo-cae": (1, 3, 64, 64),
    "histo-nuclei": (1, 3, 96, 96),
    "ecg-dae": (1, 1, 1024),
    "ecg-beats": (1, 1, 256),
    "eeg-cae": (1, 1, 512),
}


@pytest.mark.parametrize("name", sorted(_SHAPES))
def test_folded_network_computes_the_same_function(name):
    loaded = weights.load(name)
    net = loaded.module
    x = torch.randn(*_SHAPES[name], generator=torch.Generator().manual_seed(0))
    before_bn = count_batchnorm(net)
    folded = fold_batchnorm(net)
    assert count_batchnorm(net) == before_bn, "folding must not touch the original network"
    if before_bn:
        assert count_batchnorm(folded) < before_bn
    with torch.no_grad():
        ref, out = net(x), folded(x)
    ref = ref[0] if isinstance(ref, tuple) else ref
    out = out[0] if isinstance(out, tuple) else out
    scale = float(ref.abs().max()) or 1.0
    assert float((ref - out).abs().max()) <= 1e-4 * scale + 1e-5


def test_folding_a_training_mode_batchnorm_uses_running_statistics():
    seq = torch.nn.Sequential(torch.nn.Conv1d(1, 4, 3, padding=1), torch.nn.BatchNorm1d(4))
    seq.train()
    seq(torch.randn(8, 1, 32))  # moves the running statistics away from 0/1
    seq.eval()
    folded = fold_batchnorm(seq)
    assert isinstance(folded[1], torch.nn.Identity)
    x = torch.randn(2, 1, 32)
    with torch.no_grad():
        torch.testing.assert_close(folded(x), seq(x), rtol=1e-5, atol=1e-5)
