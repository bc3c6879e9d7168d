"""Denoising autoencoder: any registered AE plus a corruption applied in training only.

``DenoisingAE(base="conv", base_hparams={...}, corruption={"kind": "coarse", ...})``
wraps the base network (``self.base``) and a :mod:`engine.models.corruption` module
(``self.corruption``). In training mode the input is corrupted before encoding and the
loss compares the output with the clean input; in eval mode the corruption is the
identity, so inference is the base AE's. The coarse-noise DAE of Kascenas et al. (2022)
is ``base="conv"`` with ``skip_connections=True`` and a ``coarse`` corruption.
"""
from __future__ import annotations

import torch
from torch import nn

from engine.errors import ModelError
from engine.models.corruption import from_spec

__all__ = ["DenoisingAE"]


class DenoisingAE(nn.Module):
    """Parameters (keyword-only): ``base`` (architecture name), ``base_hparams`` (dict),
    ``corruption`` (a :func:`engine.models.corruption.from_spec` dict, or None)."""

    def __init__(self, *, base: str = "conv", base_hparams: dict | None = None,
                 corruption: dict | None = None):
        super().__init__()
        from engine.models import build_model

        if base == "denoising":
            raise ModelError("DenoisingAE cannot wrap another DenoisingAE; compose corruptions instead")
        if not isinstance(base_hparams or {}, dict):
            raise ModelError(f"base_hparams must be a dict, not {type(base_hparams).__name__}")
        self.base = build_model(base, **(base_hparams or {}))
        corr = from_spec(corruption)
        self.corruption = corr if corr is not None else nn.Identity()
        self.hparams = dict(base=base, base_hparams=dict(self.base.hparams),
                            corruption=corr.spec() if corr is not None else None)

    @property
    def spatial_dims(self) -> int:
        return self.base.hparams["spatial_dims"]

    @property
    def size_multiple(self) -> int:
        return getattr(self.base, "size_multiple", 1)

    def corrupt(self, x: torch.Tensor) -> torch.Tensor:
        """The corrupted input (identity in eval mode)."""
        return self.corruption(x)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.base.encode(self.corrupt(x))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.base.decode(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(self.corrupt(x))
