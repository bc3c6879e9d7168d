"""Contractive autoencoder (Rifai et al. 2011) on the :class:`~engine.models.conv.ConvAE` backbone.

Training adds ``contractive_weight * ||d code / d x||_F^2 / D`` per sample (``D`` = input
elements per sample, so the total is ``(SSE + weight * ||J||_F^2) / D``, Rifai's
objective on the scale of a per-element mean loss). For a convolutional encoder the
exact Jacobian is far too large to form, so :meth:`penalized_forward` uses Hutchinson's
unbiased estimate with ``contractive_probes`` Rademacher probes per batch
(:func:`engine.models.penalties.contractive_penalty`); its gradient is back-propagated
through the vector-Jacobian products (double backward). The code defaults to a sigmoid,
as in Rifai et al.: with a linear code the penalty could be lowered by shrinking the code
and enlarging the decoder's weights without any contraction.
"""
from __future__ import annotations

import math

import torch

from engine.errors import ModelError
from engine.models.blocks import check_float, check_int
from engine.models.conv import ConvAE
from engine.models.penalties import PenalizedOutput, contractive_penalty

__all__ = ["ContractiveAE"]


class ContractiveAE(ConvAE):
    """Convolutional AE with a Jacobian (contractive) penalty on its encoder.

    Parameters (keyword-only)
    ----------
    contractive_weight : float >= 0
        Weight ``lambda`` of ``||J||_F^2`` (Rifai et al.); 0 trains a plain ConvAE.
    contractive_probes : int in [1, 64]
        Probes per batch for the stochastic estimate (more: lower variance, slower).
    latent_activation : str
        Default ``"sigmoid"``.
    **kwargs
        Every other :class:`ConvAE` option except ``skip_connections`` (the decoder
        could bypass the contracted code).
    """

    def __init__(self, *, contractive_weight: float = 0.1, contractive_probes: int = 1,
                 latent_activation: str = "sigmoid", skip_connections: bool = False, **kwargs):
        if skip_connections:
            raise ModelError("ContractiveAE cannot have skip connections (they bypass the contracted code)")
        weight = check_float("contractive_weight", contractive_weight, lo=0.0)
        probes = check_int("contractive_probes", contractive_probes, hi=64)
        super().__init__(latent_activation=latent_activation, skip_connections=False, **kwargs)
        self.hparams.pop("skip_connections")
        self.hparams.update(contractive_weight=weight, contractive_probes=probes)

    def penalized_forward(self, x: torch.Tensor) -> PenalizedOutput:
        """Reconstruction and ``weight * mean_batch(||J||_F^2 estimate) / D`` from one encoder pass.

        Works under ``torch.no_grad()`` too (validation): the Jacobian products are then
        computed in a local grad-enabled block and not kept for back-propagation.
        """
        d = math.prod(x.shape[1:])
        if self.hparams["contractive_weight"] == 0.0:  # a plain ConvAE: skip the double backward
            recon = self(x)
            return PenalizedOutput(recon, recon.new_zeros((), dtype=torch.float32))
        need_graph = torch.is_grad_enabled()
        with torch.enable_grad():
            xg = x if x.requires_grad else x.detach().requires_grad_(True)
            code = self.encode(xg)
            jac = contractive_penalty(code.float(), xg, n_probes=self.hparams["contractive_probes"],
                                      probe="rademacher", create_graph=need_graph)
        if not need_graph:
            code, jac = code.detach(), jac.detach()
        recon = self.decode(code)
        return PenalizedOutput(recon, self.hparams["contractive_weight"] * jac.mean() / d)
