"""Variational and contractive AEs: known-answer penalties, shapes, hparams, training, weights."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn
from torch_helpers import one_torch_thread, sines  # noqa: F401 (autouse fixture)

from engine import weights
from engine.errors import ModelError
from engine.inference.tiles import tiled_reconstruct
from engine.jobs import run_job
from engine.training.losses import mse
from engine.models import build_model
from engine.models.penalties import (
    contractive_penalty,
    contractive_penalty_dense,
    kl_divergence_gaussian,
)
from engine.models.vae import negative_elbo
from engine.training.loop import train

FAMILIES = ("vae", "contractive")


# ------------------------------------------------------------------ penalties: known answers

def test_kl_zero_at_the_prior():
    z = torch.zeros(3, 4, 5)
    assert torch.equal(kl_divergence_gaussian(z, z), torch.zeros(3))


def test_kl_closed_form_by_hand():
    mu = torch.tensor([[1.0, -2.0], [0.0, 0.0]], dtype=torch.float64)
    logvar = torch.tensor([[0.0, math.log(2.0)], [math.log(0.5), 0.0]], dtype=torch.float64)
    # 0.5 * (mu^2 + var - 1 - log var) per element
    expect = [0.5 * (1 + 1 - 1) + 0.5 * (4 + 2 - 1 - math.log(2.0)),
              0.5 * (0.5 - 1 - math.log(0.5))]
    torch.testing.assert_close(kl_divergence_gaussian(mu, logvar),
                               torch.tensor(expect, dtype=torch.float64), rtol=1e-12, atol=0)
    # and agrees with torch.distributions on random values
    torch.manual_seed(0)
    mu, logvar = torch.randn(4, 3, 6, dtype=torch.float64), torch.randn(4, 3, 6, dtype=torch.float64)
    ref = torch.distributions.kl_divergence(torch.distributions.Normal(mu, (0.5 * logvar).exp()),
                                            torch.distributions.Normal(0.0, 1.0)).sum(dim=(1, 2))
    torch.testing.assert_close(kl_divergence_gaussian(mu, logvar), ref, rtol=1e-12, atol=1e-12)
    with pytest.raises(ModelError, match="same"):
        kl_divergence_gaussian(mu, logvar[:, :2])


def test_negative_elbo_by_hand():
    x, recon = torch.zeros(2, 1, 8), torch.ones(2, 1, 8)  # SSE = D = 8 per sample
    mu, logvar = torch.zeros(2, 4), torch.zeros(2, 4)
    mu[1] = 1.0  # KL = 4 * 0.5 = 2
    torch.testing.assert_close(negative_elbo(x, recon, mu, logvar, beta=2.0),
                               torch.tensor([1.0, (8 + 2 * 2) / 8]))


def test_dense_contractive_closed_form_equals_autograd_jacobian():
    torch.manual_seed(1)
    layer = nn.Linear(7, 5).double()
    x = torch.randn(3, 7, dtype=torch.float64)
    h = torch.sigmoid(layer(x))
    closed = contractive_penalty_dense(h, layer.weight)
    for i in range(3):
        jac = torch.autograd.functional.jacobian(lambda v: torch.sigmoid(layer(v)), x[i])  # (5, 7)
        assert float(closed[i].detach()) == pytest.approx(float(jac.pow(2).sum()), rel=1e-12)
    with pytest.raises(ModelError, match="hidden"):
        contractive_penalty_dense(h, layer.weight.T)


def _exact_jacobian_norms(encoder, x):
    """Per-sample ||J||_F^2 and ||J J^T||_F^2, and the largest cross-sample derivative."""
    jac = torch.autograd.functional.jacobian(encoder, x)  # code shape + input shape
    b = x.shape[0]
    jac = jac.reshape(b, -1, b, x[0].numel())
    own = torch.stack([jac[i, :, i] for i in range(b)])  # (b, code, input)
    cross = max(float(jac[i, :, j].abs().max()) for i in range(b) for j in range(b) if i != j)
    gram = own @ own.transpose(1, 2)
    return own.pow(2).sum(dim=(1, 2)), gram, cross


@pytest.mark.parametrize("probe", ["gaussian", "rademacher"])
def test_stochastic_contractive_estimate_converges_to_exact(probe):
    # the ContractiveAE's own encoder (eval mode: BatchNorm per sample), in float64
    torch.manual_seed(2)
    m = build_model("contractive", spatial_dims=1, in_channels=2, channels=[3, 4], latent_channels=2)
    m = m.double().eval()
    for p in m.parameters():
        p.requires_grad_(False)  # only d code / d x is wanted
    x = torch.randn(2, 2, 16, dtype=torch.float64)
    exact, gram, cross = _exact_jacobian_norms(m.encode, x)
    assert cross == 0.0 and float(exact.min()) > 0
    # the estimator's variance per probe, from the exact Jacobian (Hutchinson 1990; Avron & Toledo 2011)
    var = 2 * gram.pow(2).sum(dim=(1, 2))
    if probe == "rademacher":
        var = var - 2 * torch.diagonal(gram, dim1=1, dim2=2).pow(2).sum(dim=1)
    n = 4000
    torch.manual_seed(3)
    xg = x.clone().requires_grad_(True)
    est = contractive_penalty(m.encode(xg), xg, n_probes=n, probe=probe, create_graph=False)
    se = (var / n).sqrt()
    # within 4 standard errors, which on this encoder is within 6 % of the exact norm
    assert torch.all((est - exact).abs() < 4 * se), (est, exact, se)
    assert torch.all(4 * se < 0.06 * exact), (se, exact)


def test_contractive_penalty_rejects_bad_use():
    x = torch.randn(2, 1, 8)
    with pytest.raises(ModelError, match="require grad"):
        contractive_penalty(x * 2, x)
    xg = x.clone().requires_grad_(True)
    with pytest.raises(ModelError, match="n_probes"):
        contractive_penalty(xg * 2, xg, n_probes=0)
    with pytest.raises(ModelError, match="probe"):
        contractive_penalty(xg * 2, xg, probe="uniform")
    # a linear map y = 2x has ||J||_F^2 = 4 * D whatever the probe (Rademacher: exact)
    est = contractive_penalty(xg * 2, xg, n_probes=3, probe="rademacher")
    torch.testing.assert_close(est, torch.full((2,), 32.0))


# ------------------------------------------------------------------ models

@pytest.mark.parametrize("arch", FAMILIES)
@pytest.mark.parametrize("sd,shape", [(1, (3, 2, 64)), (2, (3, 1, 32, 48))])
def test_shapes(arch, sd, shape):
    m = build_model(arch, spatial_dims=sd, in_channels=shape[1], channels=[4, 8], latent_channels=6)
    x = torch.randn(shape)
    code_shape = (shape[0], 6) + tuple(s // 4 for s in shape[2:])
    for mode in (m.train, m.eval):
        mode()
        assert m(x).shape == x.shape
        out = m.penalized_forward(x)
        assert out.reconstruction.shape == x.shape and out.penalty.shape == ()
        assert float(out.penalty.detach()) > 0
        assert m.encode(x).shape == code_shape
        assert m.size_multiple == 4
    if arch == "vae":
        mu, logvar = m.encode_stats(x)
        assert mu.shape == logvar.shape == code_shape
        assert m.anomaly_score(x).shape == (shape[0],)
    else:
        z = m.encode(x).detach()
        assert float(z.min()) > 0 and float(z.max()) < 1  # sigmoid code by default
    with pytest.raises(ModelError, match="divisible"):
        m(torch.randn(*shape[:-1], shape[-1] - 2))


def test_vae_eval_is_deterministic_and_decodes_the_mean():
    torch.manual_seed(0)
    m = build_model("vae", spatial_dims=2, channels=[4, 8])
    x = torch.randn(2, 1, 16, 16)
    m.train()
    m(x)  # update the BatchNorm running statistics once
    assert not torch.equal(m(x), m(x))  # a fresh posterior sample each call
    m.eval()
    with torch.no_grad():
        a, b = m(x), m(x)
        assert torch.equal(a, b)
        assert torch.equal(a, m.decode(m.encode_stats(x)[0]))
        assert torch.equal(m.anomaly_score(x), m.anomaly_score(x))
        assert torch.equal(m.penalized_forward(x).reconstruction, a)


def test_tiled_inference_works_unchanged():
    m = build_model("vae", spatial_dims=2, channels=[4, 8]).eval()
    img = np.random.default_rng(0).random((1, 40, 56), dtype=np.float32)
    outs = [run_job(tiled_reconstruct(m, lambda y0, x0, y1, x1: img[:, y0:y1, x0:x1], 40, 56, tile=32,
                                      overlap=8, size_multiple=m.size_multiple)) for _ in range(2)]
    assert outs[0].shape == img.shape and np.isfinite(outs[0]).all()
    assert np.array_equal(outs[0], outs[1])


@pytest.mark.parametrize("arch,kw", [
    ("vae", {"spatial_dims": 1, "channels": [4], "beta": 0.5, "latent_channels": 3}),
    ("contractive", {"spatial_dims": 2, "channels": [4, 8], "contractive_weight": 0.3, "contractive_probes": 2,
                         "latent_activation": "tanh"}),
])
def test_hparams_round_trip(arch, kw):
    m = build_model(arch, **kw)
    hp = json.loads(json.dumps(m.hparams))
    assert hp == m.hparams and all(hp[k] == v for k, v in kw.items())
    m2 = build_model(arch, **hp)
    assert m2.hparams == m.hparams
    m2.load_state_dict(m.state_dict(), strict=True)


@pytest.mark.parametrize("arch,kw,match", [
    ("vae", {"beta": -1.0}, "beta"),
    ("vae", {"beta": "big"}, "beta"),
    ("vae", {"skip_connections": True}, "skip"),
    ("vae", {"latent_activation": "sigmoid"}, "latent_activation"),
    ("vae", {"spatial_dims": 4}, "spatial_dims"),
    ("vae", {"channels": []}, "channels"),
    ("vae", {"bogus": 1}, "bogus"),
    ("contractive", {"contractive_weight": -0.1}, "contractive_weight"),
    ("contractive", {"contractive_probes": 0}, "contractive_probes"),
    ("contractive", {"contractive_probes": 1.5}, "contractive_probes"),
    ("contractive", {"skip_connections": True}, "skip"),
    ("contractive", {"kernel_size": 4}, "odd"),
    ("contractive", {"latent_activation": "softplus"}, "latent_activation"),
])
def test_bad_hparams_raise_model_error(arch, kw, match):
    with pytest.raises(ModelError, match=match):
        build_model(arch, **kw)


def test_contractive_penalty_trains_the_encoder_only():
    torch.manual_seed(0)
    m = build_model("contractive", spatial_dims=1, channels=[4, 8], contractive_weight=1.0)
    m.penalized_forward(torch.randn(4, 1, 32)).penalty.backward()  # double backward
    enc = [p.grad for p in m.enc.parameters()] + [p.grad for p in m.to_latent.parameters()]
    assert all(g is not None for g in enc) and sum(float(g.abs().sum()) for g in enc) > 0
    assert all(p.grad is None for p in m.head.parameters())  # the decoder plays no part
    m.zero_grad()
    plain = build_model("contractive", spatial_dims=1, channels=[4], contractive_weight=0.0)
    assert float(plain.penalized_forward(torch.randn(2, 1, 32)).penalty) == 0.0


# ------------------------------------------------------------------ training and weights

def _train(arch, x_train, x_val, epochs=10, **kw):
    torch.manual_seed(0)
    m = build_model(arch, spatial_dims=1, channels=[8, 16], **kw)
    return run_job(train(m, x_train, x_val, epochs=epochs, batch_size=16, lr=3e-3, seed=0, device="cpu",
                         patience=None))


@pytest.mark.parametrize("arch,kw", [("vae", {"beta": 0.1}), ("contractive", {"contractive_weight": 0.1})])
def test_training_reduces_the_loss_and_validates_with_the_penalty(arch, kw):
    x = sines(96, 64, f_max=4)
    res = _train(arch, x[:80], x[80:], **kw)
    first, best = res.history[0]["val_loss"], res.metrics["best_val_loss"]
    assert best < 0.5 * first, (first, best)  # measured: vae 0.53 -> 0.13, contractive 0.61 -> 0.06
    # the validation loss is reconstruction + the model's own penalty (train's fixed validation seed)
    xv = torch.from_numpy(x[80:])
    m = res.model
    with torch.no_grad(), torch.random.fork_rng():
        torch.manual_seed(12345)
        out = m.penalized_forward(xv)
    rec, pen = float(mse(out.reconstruction, xv)), float(out.penalty)
    assert pen > 1e-3 * rec
    assert best == pytest.approx(rec + pen, rel=1e-5)


def test_contractive_training_contracts_the_encoder():
    x = sines(96, 64, f_max=4)
    xv = torch.from_numpy(x[80:])

    def jacobian_norm(weight):
        m = _train("contractive", x[:80], x[80:], contractive_weight=weight).model
        torch.manual_seed(0)
        xg = xv.clone().requires_grad_(True)
        return float(contractive_penalty(m.encode(xg), xg, n_probes=64, create_graph=False).mean())

    plain, contracted = jacobian_norm(0.0), jacobian_norm(0.1)
    assert contracted < 0.2 * plain, (plain, contracted)  # measured: ~250 -> ~18


def test_trained_vae_scores_an_anomaly_higher():
    x = sines(96, 64, f_max=4)
    res = _train("vae", x[:80], x[80:], beta=0.1)
    normal = torch.from_numpy(x[80:])
    spiky = normal.clone()
    spiky[:, :, 20:24] += 3.0  # a 4-sample spike
    with torch.no_grad():
        s_normal, s_spiky = res.model.anomaly_score(normal), res.model.anomaly_score(spiky)
    assert torch.all(s_spiky > s_normal + 3 * s_normal.std())


@pytest.mark.parametrize("arch", FAMILIES)
def test_weights_round_trip(arch, tmp_path):
    torch.manual_seed(0)
    m = build_model(arch, spatial_dims=1, channels=[4, 8])
    m.train()
    m(torch.randn(8, 1, 64))  # non-trivial BatchNorm running statistics
    m.eval()
    p = tmp_path / f"{arch}.safetensors"
    weights.save(m, p, {"architecture": arch, "hparams": m.hparams, "modality": "ecg"})
    loaded = weights.load(p)
    assert loaded.meta["hparams"] == m.hparams and not loaded.module.training
    x = torch.randn(3, 1, 64)
    with torch.no_grad():
        assert torch.equal(loaded.module(x), m(x))
        assert torch.equal(loaded.module.encode(x), m.encode(x))
