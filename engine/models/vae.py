"""Variational autoencoder (1-D, 2-D, 3-D) on the :class:`~engine.models.conv.ConvAE` backbone.

The encoder ends in one convolution giving ``2 * latent_channels`` maps, split into the
posterior mean ``mu`` and log-variance ``logvar`` of a *spatial* Gaussian latent
(``latent_channels x size / 2**depth``); the network stays fully convolutional, so
tiled/windowed inference works as for ConvAE. In training mode :meth:`forward`
decodes a reparameterised sample ``mu + exp(logvar / 2) * eps``; in eval mode it decodes
``mu`` (deterministic). Training adds ``beta * KL / D`` through :meth:`penalized_forward`
(``D`` = input elements per sample), so the total per sample is ``(SSE + beta * KL) / D``:
the beta-VAE objective (Higgins et al. 2017) on the scale of a per-element mean loss.
"""
from __future__ import annotations

import math

import torch

from engine.errors import ModelError
from engine.models.blocks import check_float, conv_cls, init_weights
from engine.models.conv import ConvAE
from engine.models.penalties import PenalizedOutput, kl_divergence_gaussian

__all__ = ["VariationalAE", "negative_elbo"]

#: logvar is clamped to this range (natural log): exp() stays finite in float32 and bf16.
LOGVAR_RANGE = (-30.0, 20.0)


def negative_elbo(x: torch.Tensor, recon: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, *,
                  beta: float = 1.0) -> torch.Tensor:
    """Per-sample ``(SSE + beta * KL) / D``, the beta-VAE loss as a score.

    With a Gaussian decoder of variance ``beta / 2`` this is ``(beta / D)`` times the
    negative ELBO up to an additive constant. Evaluated with ``recon`` decoded from
    ``mu`` it replaces the expectation over ``z`` by its value at the mean.

    Parameters
    ----------
    x, recon : Tensor ``(batch, channels, *spatial)``
    mu, logvar : Tensor ``(batch, ...)``
    beta : float

    Returns
    -------
    Tensor ``(batch,)``
    """
    if x.shape != recon.shape:
        raise ModelError(f"x and recon shapes differ: {tuple(x.shape)} vs {tuple(recon.shape)}")
    d = math.prod(x.shape[1:])
    sse = (recon - x).pow(2).reshape(x.shape[0], -1).sum(dim=1)
    return (sse + beta * kl_divergence_gaussian(mu, logvar)) / d


class VariationalAE(ConvAE):
    """Convolutional VAE with a spatial Gaussian latent.

    Parameters (keyword-only)
    ----------
    beta : float >= 0
        Weight of the KL term (1: the plain VAE).
    **kwargs
        Every :class:`ConvAE` option except ``skip_connections`` (the decoder must see
        only the sampled code) and ``latent_activation`` (``mu``/``logvar`` are linear).
    """

    def __init__(self, *, beta: float = 1.0, skip_connections: bool = False,
                 latent_activation: str = "none", **kwargs):
        if skip_connections:
            raise ModelError("VariationalAE cannot have skip connections (they bypass the latent)")
        if latent_activation != "none":
            raise ModelError("VariationalAE's mu and logvar are linear: latent_activation must be 'none'")
        beta = check_float("beta", beta, lo=0.0)
        super().__init__(skip_connections=False, latent_activation="none", **kwargs)
        hp = self.hparams
        for key in ("skip_connections", "latent_activation"):
            hp.pop(key)
        hp["beta"] = beta
        k = hp["kernel_size"]
        # the bottleneck convolution now gives (mu, logvar): 2 * latent_channels maps
        self.to_latent = conv_cls(self.spatial_dims)(hp["channels"][-1], 2 * hp["latent_channels"], k,
                                                     padding=k // 2)
        init_weights(self.to_latent)

    def encode_stats(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior ``(mu, logvar)``, each ``(batch, latent_channels, *size / 2**depth)``."""
        stats = self._encode(x)[0]
        mu, logvar = stats.chunk(2, dim=1)
        return mu, logvar.clamp(*LOGVAR_RANGE)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The posterior mean ``mu`` (the deterministic code)."""
        return self.encode_stats(x)[0]

    def decode(self, z: torch.Tensor, skips=None) -> torch.Tensor:
        """Reconstruct from a latent sample or mean."""
        return super().decode(z, None)

    def _latent(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return mu
        return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The reconstruction: from a posterior sample in training mode, from ``mu`` in eval mode."""
        return self.decode(self._latent(*self.encode_stats(x)))

    def penalized_forward(self, x: torch.Tensor) -> PenalizedOutput:
        """Reconstruction (as :meth:`forward`) and ``beta * mean_batch(KL) / D`` from one pass."""
        mu, logvar = self.encode_stats(x)
        recon = self.decode(self._latent(mu, logvar))
        d = math.prod(x.shape[1:])
        kl = kl_divergence_gaussian(mu.float(), logvar.float())
        return PenalizedOutput(recon, self.hparams["beta"] * kl.mean() / d)

    def anomaly_score(self, x: torch.Tensor) -> torch.Tensor:
        """Per-sample :func:`negative_elbo` at the posterior mean (the model's own ``beta``).

        Deterministic in eval mode; ``(batch,)``, higher is more anomalous.
        """
        mu, logvar = self.encode_stats(x)
        recon = self.decode(mu)
        return negative_elbo(x, recon.float(), mu.float(), logvar.float(), beta=self.hparams["beta"])
