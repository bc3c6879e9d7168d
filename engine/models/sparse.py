"""Sparse autoencoders: fully connected (patches), convolutional, and stacked (greedy layer-wise).

The code of every sparse model is a sigmoid activation in (0, 1), returned by
:meth:`encode`; the training loop adds the penalty of :mod:`engine.training.losses`
(``beta * KL(rho || rho_hat)`` or ``beta * mean|a|``) on it. The defaults for that
penalty are part of each model's hyper-parameters (``sparsity``, ``rho``, ``beta``) so a
weights file says how it was trained. ``forward`` always returns the reconstruction.

- :class:`SparseAE`: one or more fully connected hidden layers on a flattened
  ``(channels, *patch)`` input.
- :class:`SparseConvAE`: :class:`~engine.models.conv.ConvAE` with a sigmoid bottleneck
  (Hou et al. 2019 use a sparse convolutional AE for nucleus detection).
- :class:`StackedSparseAE`: layers trained greedily one at a time
  (:func:`engine.training.stacked.pretrain_layerwise`) then fine-tuned end to end, with an
  optional linear/softmax head (:meth:`classify`) for supervised fine-tuning (Xu et al. 2016).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from engine.errors import ModelError
from engine.models.blocks import ACTIVATIONS, activation, check_choice, check_float, check_int
from engine.models.conv import ConvAE

__all__ = ["SparseAE", "SparseConvAE", "StackedSparseAE"]


def _sparsity_hparams(sparsity: str, rho: float, beta: float) -> dict:
    check_choice("sparsity", sparsity, ("kl", "l1"))
    rho = check_float("rho", rho, lo=0.0, hi=1.0, open_lo=True, open_hi=True)
    beta = check_float("beta", beta, lo=0.0)
    return {"sparsity": sparsity, "rho": rho, "beta": beta}


def _patch(spatial_dims: int, patch_size) -> list[int]:
    check_choice("spatial_dims", spatial_dims, (1, 2, 3))
    if isinstance(patch_size, int):
        patch_size = [patch_size] * spatial_dims
    patch = [check_int("patch_size", int(p) if not isinstance(p, bool) else p) for p in patch_size]
    if len(patch) != spatial_dims:
        raise ModelError(f"patch_size needs {spatial_dims} value(s), got {patch_size!r}")
    return patch


def _hidden(hidden) -> list[int]:
    if isinstance(hidden, int):
        hidden = [hidden]
    if not hidden:
        raise ModelError("hidden must name at least one layer size")
    return [check_int(f"hidden[{i}]", h) for i, h in enumerate(hidden)]


class _Flat(nn.Module):
    """Shared input handling for the fully connected families."""

    def _flat(self, x: torch.Tensor) -> torch.Tensor:
        want = (self.hparams["in_channels"], *self.hparams["patch_size"])
        if tuple(x.shape[1:]) != want:
            raise ModelError(f"{type(self).__name__} expects inputs of shape (batch, {', '.join(map(str, want))}), "
                             f"got {tuple(x.shape)}")
        return x.reshape(x.shape[0], -1)

    @property
    def in_features(self) -> int:
        return self.hparams["in_channels"] * math.prod(self.hparams["patch_size"])


class SparseAE(_Flat):
    """Fully connected sparse AE on patches/windows ``(batch, in_channels, *patch_size)``.

    Parameters (keyword-only): ``spatial_dims``, ``in_channels``, ``patch_size`` (int or
    per-axis), ``hidden`` (int or list of layer sizes; the last is the code),
    ``final_activation`` (``"none"`` or ``"sigmoid"`` for inputs in [0, 1]),
    ``sparsity`` (``"kl"``/``"l1"``), ``rho``, ``beta``.
    """

    def __init__(self, *, spatial_dims: int = 2, in_channels: int = 1, patch_size=16, hidden=64,
                 final_activation: str = "none", sparsity: str = "kl", rho: float = 0.05,
                 beta: float = 1e-3):
        super().__init__()
        patch = _patch(spatial_dims, patch_size)
        sizes = _hidden(hidden)
        check_choice("final_activation", final_activation, ACTIVATIONS)
        self.hparams = dict(spatial_dims=spatial_dims, in_channels=check_int("in_channels", in_channels),
                            patch_size=patch, hidden=sizes, final_activation=final_activation,
                            **_sparsity_hparams(sparsity, rho, beta))
        dims = [self.in_features] + sizes
        enc: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:]):
            enc += [nn.Linear(a, b), nn.Sigmoid()]
        dec: list[nn.Module] = []
        rev = dims[::-1]
        for i, (a, b) in enumerate(zip(rev[:-1], rev[1:])):
            dec.append(nn.Linear(a, b))
            dec.append(nn.Sigmoid() if i < len(rev) - 2 else activation(final_activation))
        self.encoder = nn.Sequential(*enc)
        self.decoder = nn.Sequential(*dec)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Sigmoid code ``(batch, hidden[-1])`` in (0, 1)."""
        return self.encoder(self._flat(x))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        out = self.decoder(z)
        return out.reshape(z.shape[0], self.hparams["in_channels"], *self.hparams["patch_size"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


class SparseConvAE(ConvAE):
    """A :class:`ConvAE` whose bottleneck is a sigmoid code penalised for sparsity.

    Takes every :class:`ConvAE` option except ``skip_connections`` (a sparse code is
    meaningless when the decoder can bypass it) plus ``sparsity``, ``rho``, ``beta``.
    """

    def __init__(self, *, sparsity: str = "kl", rho: float = 0.05, beta: float = 1e-3,
                 latent_activation: str = "sigmoid", skip_connections: bool = False, **kwargs):
        if skip_connections:
            raise ModelError("SparseConvAE cannot have skip connections")
        sp = _sparsity_hparams(sparsity, rho, beta)
        if sparsity == "kl" and latent_activation != "sigmoid":
            raise ModelError("a KL sparsity penalty needs latent_activation='sigmoid'")
        super().__init__(latent_activation=latent_activation, skip_connections=False, **kwargs)
        self.hparams.pop("skip_connections")
        self.hparams.update(sp)


class StackedSparseAE(_Flat):
    """Stacked sparse AE: ``in -> hidden[0] -> hidden[1] -> ...`` sigmoid layers.

    Layer *k* is an AE of its own (``encoders[k]``/``decoders[k]``) so it can be trained
    greedily on the codes of layer *k-1*; :meth:`forward` chains every encoder and then
    every decoder (end-to-end fine-tuning). With ``n_classes > 0`` a linear head on the
    top code gives class logits (:meth:`classify`; softmax is in the loss).
    """

    def __init__(self, *, spatial_dims: int = 2, in_channels: int = 1, patch_size=16, hidden=(100, 50),
                 n_classes: int = 0, final_activation: str = "none", sparsity: str = "kl",
                 rho: float = 0.05, beta: float = 1e-3):
        super().__init__()
        patch = _patch(spatial_dims, patch_size)
        sizes = _hidden(hidden)
        check_choice("final_activation", final_activation, ACTIVATIONS)
        n_classes = check_int("n_classes", n_classes, lo=0)
        self.hparams = dict(spatial_dims=spatial_dims, in_channels=check_int("in_channels", in_channels),
                            patch_size=patch, hidden=sizes, n_classes=n_classes,
                            final_activation=final_activation, **_sparsity_hparams(sparsity, rho, beta))
        dims = [self.in_features] + sizes
        self.encoders = nn.ModuleList(nn.Sequential(nn.Linear(a, b), nn.Sigmoid())
                                      for a, b in zip(dims[:-1], dims[1:]))
        self.decoders = nn.ModuleList(
            nn.Sequential(nn.Linear(b, a), nn.Sigmoid() if k > 0 else activation(final_activation))
            for k, (a, b) in enumerate(zip(dims[:-1], dims[1:])))
        self.head = nn.Linear(sizes[-1], n_classes) if n_classes else None

    @property
    def n_layers(self) -> int:
        return len(self.encoders)

    def encode_upto(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """The input of layer *k* (``k = 0``: the flattened input; ``k = n_layers``: the top code)."""
        if not 0 <= k <= self.n_layers:
            raise ModelError(f"layer index must be in [0, {self.n_layers}], not {k}")
        h = self._flat(x)
        for enc in self.encoders[:k]:
            h = enc(h)
        return h

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The top sigmoid code ``(batch, hidden[-1])``."""
        return self.encode_upto(x, self.n_layers)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        for dec in reversed(self.decoders):
            z = dec(z)
        return z.reshape(z.shape[0], self.hparams["in_channels"], *self.hparams["patch_size"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits ``(batch, n_classes)`` from the top code."""
        if self.head is None:
            raise ModelError("this StackedSparseAE has no classification head (n_classes=0)")
        return self.head(self.encode(x))

    def layer(self, k: int) -> "LayerAE":
        """Layer *k* as a stand-alone AE on ``(batch, dims[k])`` codes, for greedy pre-training."""
        return LayerAE(self, k)


class LayerAE(nn.Module):
    """View of one layer of a :class:`StackedSparseAE` (shares its parameters)."""

    def __init__(self, parent: StackedSparseAE, k: int):
        super().__init__()
        if not 0 <= k < parent.n_layers:
            raise ModelError(f"layer index must be in [0, {parent.n_layers - 1}], not {k}")
        self.enc, self.dec, self.k = parent.encoders[k], parent.decoders[k], k
        self.hparams = {"layer": k, **{key: parent.hparams[key] for key in ("sparsity", "rho", "beta")}}

    def encode(self, h: torch.Tensor) -> torch.Tensor:
        return self.enc(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.dec(z)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.dec(self.enc(h))
