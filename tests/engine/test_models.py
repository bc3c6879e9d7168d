"""Shapes and validation of every autoencoder family in 1-D and 2-D."""
from __future__ import annotations

import pytest
import torch

from engine.errors import ModelError
from engine.models import MODELS, build_model


@pytest.mark.parametrize("sd,shape", [(1, (3, 2, 64)), (2, (3, 1, 32, 48))])
@pytest.mark.parametrize("opts", [
    {},
    {"downsample": "pool", "upsample": "interp"},
    {"skip_connections": True},
])
def test_conv_shapes(sd, shape, opts):
    m = build_model("conv", spatial_dims=sd, in_channels=shape[1], channels=[8, 16], **opts)
    x = torch.randn(shape)
    y = m(x)
    assert y.shape == x.shape
    z = m.encode(x).detach()
    assert z.shape == (shape[0], 16) + tuple(s // 4 for s in shape[2:])
    assert m.size_multiple == 4


def test_conv_rejects_sizes_not_divisible():
    m = build_model("conv", spatial_dims=2, channels=[8, 16])
    with pytest.raises(ModelError, match="divisible by 4"):
        m(torch.randn(1, 1, 30, 32))


@pytest.mark.parametrize("sd,patch", [(1, [32]), (2, [8, 8])])
def test_sparse_fc_and_stacked_shapes(sd, patch):
    x = torch.randn(5, 2, *patch)
    m = build_model("sparse", spatial_dims=sd, in_channels=2, patch_size=patch, hidden=[12])
    assert m(x).shape == x.shape
    z = m.encode(x).detach()
    assert z.shape == (5, 12) and float(z.min()) > 0 and float(z.max()) < 1  # sigmoid code
    s = build_model("stacked-sparse", spatial_dims=sd, in_channels=2, patch_size=patch, hidden=[20, 6],
                    n_classes=3)
    assert s(x).shape == x.shape
    assert s.encode(x).shape == (5, 6)
    assert s.classify(x).shape == (5, 3)
    assert s.layer(1)(s.encode_upto(x, 1)).shape == (5, 20)


@pytest.mark.parametrize("sd,shape", [(1, (2, 1, 64)), (2, (2, 3, 32, 32))])
def test_sparse_conv_and_denoising_shapes(sd, shape):
    x = torch.randn(shape)
    m = build_model("sparse-conv", spatial_dims=sd, in_channels=shape[1], channels=[4, 8])
    assert m(x).shape == x.shape
    z = m.encode(x).detach()
    assert float(z.min()) >= 0 and float(z.max()) <= 1
    d = build_model("denoising", base="conv", base_hparams={"spatial_dims": sd, "in_channels": shape[1],
                                                          "channels": [4, 8]},
                    corruption={"kind": "gaussian", "sigma": 0.5})
    assert d(x).shape == x.shape
    d.eval()
    assert torch.equal(d(x), d.base(x))  # corruption is off in eval mode
    d.train()
    torch.manual_seed(0)
    assert not torch.equal(d.corrupt(x), x)


@pytest.mark.parametrize("arch", sorted(MODELS))
def test_rebuild_from_hparams(arch):
    kw = {
        "conv": dict(spatial_dims=1, channels=[4]),
        "sparse": dict(spatial_dims=1, patch_size=16, hidden=8),
        "sparse-conv": dict(spatial_dims=1, channels=[4]),
        "stacked-sparse": dict(spatial_dims=1, patch_size=16, hidden=[8, 4]),
        "denoising": dict(base="conv", base_hparams=dict(spatial_dims=1, channels=[4]),
                          corruption={"kind": "masking", "fraction": 0.3}),
        "contractive": dict(spatial_dims=1, channels=[4], contractive_weight=0.5),
        "vae": dict(spatial_dims=1, channels=[4], beta=0.5),
    }.get(arch)
    if kw is None:
        pytest.skip(f"{arch} is a task network, rebuilt by its task's tests")
    m = build_model(arch, **kw)
    m2 = build_model(arch, **m.hparams)
    assert m2.hparams == m.hparams
    m2.load_state_dict(m.state_dict())


@pytest.mark.parametrize("arch,kw,match", [
    ("conv", dict(spatial_dims=4), "spatial_dims"),
    ("conv", dict(channels=[]), "channels"),
    ("conv", dict(kernel_size=4), "odd"),
    ("conv", dict(downsample="avg"), "downsample"),
    ("conv", dict(bogus=1), "bogus"),
    ("sparse", dict(rho=1.5), "rho"),
    ("sparse", dict(patch_size=[8, 8, 8]), "patch_size"),
    ("sparse-conv", dict(skip_connections=True), "skip"),
    ("stacked-sparse", dict(hidden=[]), "hidden"),
    ("denoising", dict(corruption={"kind": "salt"}), "salt"),
])
def test_bad_hparams_raise_model_error(arch, kw, match):
    with pytest.raises(ModelError, match=match):
        build_model(arch, **kw)


def test_unknown_architecture_lists_valid():
    with pytest.raises(ModelError, match="conv"):
        build_model("transformer")
