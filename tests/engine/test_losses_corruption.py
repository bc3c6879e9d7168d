"""Known-answer tests: sparsity penalties and corruptions do what they claim."""
from __future__ import annotations

import math

import pytest
import torch

from engine.errors import ModelError
from engine.models.corruption import CoarseNoise, Compose, GaussianNoise, MaskingNoise, from_spec
from engine.training.losses import SparsityPenalty, kl_sparsity, l1_sparsity, mean_activation


def test_kl_zero_when_mean_equals_rho():
    a = torch.full((10, 7), 0.05)
    assert float(kl_sparsity(a, 0.05)) == pytest.approx(0.0, abs=1e-7)


def test_kl_closed_form():
    # two units with means 0.2 and 0.5 (conv layout: batch x units x length)
    a = torch.empty(4, 2, 3)
    a[:, 0] = 0.2
    a[:, 1] = torch.tensor([0.4, 0.6, 0.5])
    rho = 0.1
    expect = sum(rho * math.log(rho / q) + (1 - rho) * math.log((1 - rho) / (1 - q)) for q in (0.2, 0.5))
    assert torch.allclose(mean_activation(a), torch.tensor([0.2, 0.5]))
    assert float(kl_sparsity(a, rho)) == pytest.approx(expect, rel=1e-5)
    assert float(SparsityPenalty("kl", beta=3.0, rho=rho)(a)) == pytest.approx(3 * expect, rel=1e-5)


def test_kl_rejects_bad_rho():
    with pytest.raises(ModelError):
        kl_sparsity(torch.rand(3, 3), 0.0)


def test_l1_sparsity():
    a = torch.tensor([[1.0, -2.0], [0.0, 3.0]])
    assert float(l1_sparsity(a)) == pytest.approx(1.5)


def test_masking_zeroes_stated_fraction():
    torch.manual_seed(0)
    x = torch.ones(8, 4, 64, 64)
    m = MaskingNoise(0.3).train()
    y = m(x)
    frac = float((y == 0).float().mean())
    assert frac == pytest.approx(0.3, abs=0.01)  # 131k elements: binomial sd ~0.0013
    assert set(torch.unique(y).tolist()) == {0.0, 1.0}


def test_gaussian_noise_sigma():
    torch.manual_seed(1)
    x = torch.zeros(4, 1, 128, 128)
    y = GaussianNoise(0.25).train()(x)
    assert float(y.std()) == pytest.approx(0.25, rel=0.02)
    assert float(y.mean()) == pytest.approx(0.0, abs=0.005)


@pytest.mark.parametrize("shape", [(16, 1, 4096), (8, 1, 128, 128)])
def test_coarse_noise_is_smooth_low_frequency(shape):
    torch.manual_seed(2)
    x = torch.zeros(shape)
    scale = 16
    coarse = CoarseNoise(sigma=0.2, scale=scale).train()(x)
    white = GaussianNoise(0.2).train()(x)
    assert float(coarse.std()) == pytest.approx(0.2, rel=0.05)
    # neighbouring samples are strongly correlated (white noise: ~0)
    def lag1(n):
        a, b = n[..., :-1].flatten(), n[..., 1:].flatten()
        return float(torch.corrcoef(torch.stack([a, b]))[0, 1])
    assert lag1(coarse) > 0.95
    assert abs(lag1(white)) < 0.05
    # spectral energy above twice the coarse-grid frequency is tiny
    spec = torch.fft.rfft(coarse[..., :], dim=-1).abs() ** 2
    cut = 2 * shape[-1] // scale
    hi = float(spec[..., cut:].sum() / spec.sum())
    assert hi < 0.01


@pytest.mark.parametrize("corr", [GaussianNoise(0.3), MaskingNoise(0.5), CoarseNoise(0.3, 4),
                                  Compose([GaussianNoise(0.1), MaskingNoise(0.2)])])
def test_corruption_off_in_eval_mode(corr):
    x = torch.randn(2, 1, 32, 32)
    assert torch.equal(corr.eval()(x), x)
    assert not torch.equal(corr.train()(x), x)


def test_spec_round_trip():
    c = Compose([CoarseNoise(0.2, 8), MaskingNoise(0.1)])
    c2 = from_spec(c.spec())
    assert c2.spec() == c.spec()
    with pytest.raises(ModelError, match="unknown corruption"):
        from_spec({"kind": "pepper"})
