"""Reconstruction losses and sparsity penalties (plain functions on tensors).

Activations are ``(batch, units)`` for fully connected codes or ``(batch, units, *spatial)``
for convolutional codes; a *unit* is a feature (dim 1) and its mean activation is taken
over the batch and every spatial position.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from engine.errors import ModelError

__all__ = ["mse", "l1", "mean_activation", "kl_sparsity", "l1_sparsity", "reconstruction_loss",
           "SparsityPenalty", "LOSSES"]

_EPS = 1e-6


def mse(recon: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error over every element."""
    return F.mse_loss(recon, target)


def l1(recon: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error over every element (Kascenas et al. train their DAE with it)."""
    return F.l1_loss(recon, target)


LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {"mse": mse, "l1": l1}


def reconstruction_loss(name: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The loss function called *name* (``"mse"`` or ``"l1"``)."""
    try:
        return LOSSES[name]
    except KeyError:
        raise ModelError(f"unknown loss {name!r}; valid: {', '.join(LOSSES)}") from None


def mean_activation(activations: torch.Tensor) -> torch.Tensor:
    """Each unit's mean activation ``rho_hat`` (over batch and spatial axes), shape ``(units,)``."""
    if activations.dim() < 2:
        raise ModelError(f"activations must be (batch, units, ...), got shape {tuple(activations.shape)}")
    dims = [0] + list(range(2, activations.dim()))
    return activations.mean(dim=dims)


def kl_sparsity(activations: torch.Tensor, rho: float) -> torch.Tensor:
    """Sum over units of KL(rho || rho_hat_j) (Ng's sparse-AE penalty).

    ``KL = rho log(rho / rho_hat) + (1 - rho) log((1 - rho) / (1 - rho_hat))``; activations
    must lie in (0, 1) (a sigmoid code). Zero exactly when every unit's mean equals *rho*.
    """
    if not 0.0 < rho < 1.0:
        raise ModelError(f"rho must be in (0, 1), not {rho!r}")
    rho_hat = mean_activation(activations).clamp(_EPS, 1 - _EPS)
    r = torch.as_tensor(rho, dtype=rho_hat.dtype, device=rho_hat.device)
    kl = r * torch.log(r / rho_hat) + (1 - r) * torch.log((1 - r) / (1 - rho_hat))
    return kl.sum()


def l1_sparsity(activations: torch.Tensor) -> torch.Tensor:
    """Mean absolute activation (an L1 penalty on the code)."""
    return activations.abs().mean()


class SparsityPenalty:
    """``beta * KL(rho || rho_hat)`` or ``beta * mean|a|`` on a model's code.

    Parameters
    ----------
    kind : {"kl", "l1"}
    beta : float
        Weight of the penalty in the total loss.
    rho : float
        Target mean activation (KL only).
    """

    def __init__(self, kind: str = "kl", *, beta: float = 1e-3, rho: float = 0.05):
        if kind not in ("kl", "l1"):
            raise ModelError(f"sparsity kind must be 'kl' or 'l1', not {kind!r}")
        if beta < 0:
            raise ModelError(f"sparsity beta must be >= 0, not {beta!r}")
        if kind == "kl" and not 0.0 < rho < 1.0:
            raise ModelError(f"rho must be in (0, 1), not {rho!r}")
        self.kind, self.beta, self.rho = kind, float(beta), float(rho)

    def __call__(self, activations: torch.Tensor) -> torch.Tensor:
        pen = kl_sparsity(activations, self.rho) if self.kind == "kl" else l1_sparsity(activations)
        return self.beta * pen

    def spec(self) -> dict:
        return {"kind": self.kind, "beta": self.beta, "rho": self.rho}

    @classmethod
    def from_spec(cls, spec: dict | None) -> "SparsityPenalty | None":
        if not spec:
            return None
        return cls(spec.get("kind", "kl"), beta=spec.get("beta", 1e-3), rho=spec.get("rho", 0.05))
