"""Penalty terms of the regularised AE families, and the training hook's output type.

Plain functions on tensors, each returning one value **per sample** (shape ``(batch,)``)
so a caller can average them into a loss or keep them as an anomaly score:

- :func:`kl_divergence_gaussian`: closed-form ``KL(N(mu, exp(logvar)) || N(0, I))``
  (the VAE's latent term).
- :func:`contractive_penalty_dense`: exact ``||J||_F^2`` of a dense sigmoid layer
  (Rifai et al. 2011, eq. 4).
- :func:`contractive_penalty`: an unbiased stochastic estimate of ``||J||_F^2`` for any
  differentiable encoder (Hutchinson's estimator, through one vector-Jacobian product
  per probe).

A model whose training loss has a term besides the reconstruction error implements
``penalized_forward(x) -> PenalizedOutput``; :func:`engine.training.loop.train` adds the
returned ``penalty`` (already weighted by the model's hyper-parameters) to the
reconstruction loss, in training and in validation alike.
"""
from __future__ import annotations

from typing import NamedTuple

import torch

from engine.errors import ModelError

__all__ = [
    "PROBES",
    "PenalizedOutput",
    "contractive_penalty",
    "contractive_penalty_dense",
    "kl_divergence_gaussian",
]

#: probe distributions of :func:`contractive_penalty` (both have E[v v^T] = I).
PROBES = ("gaussian", "rademacher")


class PenalizedOutput(NamedTuple):
    """What ``penalized_forward`` returns: the reconstruction and the weighted penalty.

    ``reconstruction`` has the input's shape; ``penalty`` is a scalar tensor to add to
    the (per-element mean) reconstruction loss.
    """

    reconstruction: torch.Tensor
    penalty: torch.Tensor


def _per_sample_sum(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(t.shape[0], -1).sum(dim=1)


def kl_divergence_gaussian(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``KL(N(mu, diag(exp(logvar))) || N(0, I))`` per sample, summed over the latent elements.

    ``KL = 0.5 * sum(mu**2 + exp(logvar) - 1 - logvar)`` (Kingma & Welling 2014, app. B).

    Parameters
    ----------
    mu, logvar : Tensor ``(batch, ...)``
        Posterior mean and log-variance (natural log), same shape.

    Returns
    -------
    Tensor ``(batch,)``
        Non-negative; zero exactly where ``mu = 0`` and ``logvar = 0``.

    >>> import torch
    >>> float(kl_divergence_gaussian(torch.ones(1, 4), torch.zeros(1, 4)))
    2.0
    """
    if mu.shape != logvar.shape or mu.dim() < 1:
        raise ModelError(f"mu and logvar must have the same (batch, ...) shape, got "
                         f"{tuple(mu.shape)} and {tuple(logvar.shape)}")
    return 0.5 * _per_sample_sum(mu.pow(2) + logvar.exp() - 1.0 - logvar)


def contractive_penalty_dense(h: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Exact squared Frobenius norm of the Jacobian of ``h = sigmoid(x @ W.T + b)``.

    ``||dh/dx||_F^2 = sum_j (h_j (1 - h_j))^2 * sum_i W_ji^2`` (Rifai et al. 2011, eq. 4).

    Parameters
    ----------
    h : Tensor ``(batch, hidden)``
        The layer's sigmoid activations.
    weight : Tensor ``(hidden, in_features)``
        Its weight matrix (``torch.nn.Linear.weight``).

    Returns
    -------
    Tensor ``(batch,)``
    """
    if h.dim() != 2 or weight.dim() != 2 or weight.shape[0] != h.shape[1]:
        raise ModelError(f"need h (batch, hidden) and weight (hidden, in_features), got "
                         f"{tuple(h.shape)} and {tuple(weight.shape)}")
    return (h * (1 - h)).pow(2) @ weight.pow(2).sum(dim=1)


def contractive_penalty(code: torch.Tensor, inputs: torch.Tensor, *, n_probes: int = 1,
                        probe: str = "gaussian", create_graph: bool = True) -> torch.Tensor:
    """Unbiased estimate of ``||d code / d inputs||_F^2`` per sample (Hutchinson's estimator).

    For a probe ``v`` with ``E[v v^T] = I`` in code space, ``E ||J^T v||^2 = tr(J J^T)
    = ||J||_F^2``; ``J^T v`` is one vector-Jacobian product (``torch.autograd.grad``),
    so no Jacobian is ever formed. The estimate averages *n_probes* independent probes
    (variance ``2 ||J J^T||_F^2 / n_probes`` for Gaussian probes, lower for Rademacher).

    The per-sample split assumes sample *i*'s code depends on sample *i*'s input only.
    BatchNorm in training mode couples a batch through its statistics; the estimate then
    also counts those (small, O(1/batch)) cross-sample derivatives.

    Parameters
    ----------
    code : Tensor ``(batch, ...)``
        The encoder's output, computed from *inputs* with autograd recording.
    inputs : Tensor ``(batch, ...)``
        The encoder's input; must require grad.
    n_probes : int
    probe : {"gaussian", "rademacher"}
        Probes are drawn from torch's global generator (seed it to repeat an estimate).
    create_graph : bool
        Keep the graph of the estimate so it can be back-propagated (training).

    Returns
    -------
    Tensor ``(batch,)``
    """
    if not inputs.requires_grad or code.grad_fn is None:
        raise ModelError("contractive_penalty needs a code computed from inputs that require grad")
    if isinstance(n_probes, bool) or not isinstance(n_probes, int) or n_probes < 1:
        raise ModelError(f"n_probes must be an integer >= 1, not {n_probes!r}")
    if probe not in PROBES:
        raise ModelError(f"probe must be one of {', '.join(PROBES)}, not {probe!r}")
    total = code.new_zeros(code.shape[0])
    for _ in range(n_probes):
        v = torch.randn_like(code)
        if probe == "rademacher":
            v = v.sign()  # P(randn == 0) = 0
        # retain: the caller usually decodes *code* and back-propagates through it afterwards
        (jtv,) = torch.autograd.grad(code, inputs, grad_outputs=v, create_graph=create_graph,
                                     retain_graph=True)
        total = total + _per_sample_sum(jtv.pow(2))
    return total / n_probes
