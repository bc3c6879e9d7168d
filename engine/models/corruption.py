"""Input corruptions for denoising autoencoders, applied in training only.

Each corruption is an ``nn.Module`` whose ``forward`` returns the input unchanged in
eval mode, so a model that contains one behaves as a plain AE at inference. They work
on ``(batch, channels, *spatial)`` tensors with 1, 2 or 3 spatial axes and compose with
:class:`Compose`. Randomness comes from torch's global generator (seeded by
:func:`engine.training.loop.train`). Every corruption can be rebuilt from its ``spec()``.

- :class:`GaussianNoise` — additive i.i.d. N(0, sigma²).
- :class:`MaskingNoise` — zeroes a random ``fraction`` of the inputs (Vincent et al. 2008).
- :class:`CoarseNoise` — Gaussian noise drawn at a coarse resolution and upsampled
  (bilinear/linear), i.e. smooth low-frequency blobs (Kascenas et al., MIDL 2022).
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from engine.errors import ModelError

__all__ = ["Corruption", "GaussianNoise", "MaskingNoise", "CoarseNoise", "Compose", "from_spec", "KINDS"]


class Corruption(nn.Module):
    """Base class: identity in eval mode; subclasses implement :meth:`corrupt`."""

    kind = "identity"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        return self.corrupt(x)

    def corrupt(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - overridden
        return x

    def spec(self) -> dict[str, Any]:
        return {"kind": self.kind}


class GaussianNoise(Corruption):
    """Add N(0, sigma²) noise to every element (sigma in the input's units)."""

    kind = "gaussian"

    def __init__(self, sigma: float = 0.1):
        super().__init__()
        if not sigma >= 0:
            raise ModelError(f"GaussianNoise sigma must be >= 0, not {sigma!r}")
        self.sigma = float(sigma)

    def corrupt(self, x):
        return x + self.sigma * torch.randn_like(x)

    def spec(self):
        return {"kind": self.kind, "sigma": self.sigma}


class MaskingNoise(Corruption):
    """Set a random *fraction* of the input elements to zero (independently per element)."""

    kind = "masking"

    def __init__(self, fraction: float = 0.25):
        super().__init__()
        if not 0.0 <= fraction < 1.0:
            raise ModelError(f"MaskingNoise fraction must be in [0, 1), not {fraction!r}")
        self.fraction = float(fraction)

    def corrupt(self, x):
        keep = torch.rand_like(x) >= self.fraction
        return x * keep

    def spec(self):
        return {"kind": self.kind, "fraction": self.fraction}


class CoarseNoise(Corruption):
    """Low-resolution Gaussian noise upsampled to the input size (Kascenas et al. 2022).

    Parameters
    ----------
    sigma : float
        Standard deviation of the coarse noise (input units; 0.2 in the paper on [0, 1] MRI).
    scale : int
        Coarse grid spacing in input samples/pixels: noise is drawn on a grid
        ``ceil(size / scale) + 1`` per axis (16x16 for a 128x128 image with scale 8) and
        interpolated, so its spectrum is low-pass with cutoff about ``1 / scale``.
    per_channel : bool
        Independent noise per channel (True) or one field shared by all channels.
    """

    kind = "coarse"

    def __init__(self, sigma: float = 0.2, scale: int = 8, per_channel: bool = True):
        super().__init__()
        if not sigma >= 0:
            raise ModelError(f"CoarseNoise sigma must be >= 0, not {sigma!r}")
        if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
            raise ModelError(f"CoarseNoise scale must be an integer >= 1, not {scale!r}")
        self.sigma, self.scale, self.per_channel = float(sigma), int(scale), bool(per_channel)

    def corrupt(self, x):
        spatial = x.shape[2:]
        nd = len(spatial)
        if nd not in (1, 2, 3):
            raise ModelError(f"CoarseNoise needs 1-3 spatial axes, got shape {tuple(x.shape)}")
        coarse = tuple(-(-s // self.scale) + 1 for s in spatial)
        ch = x.shape[1] if self.per_channel else 1
        noise = torch.randn((x.shape[0], ch) + coarse, device=x.device, dtype=torch.float32)
        # Upsample the grid by `scale` and crop at a random offset so the grid is not pinned to pixel 0.
        big = tuple(c * self.scale for c in coarse)
        mode = ("linear", "bilinear", "trilinear")[nd - 1]
        noise = F.interpolate(noise, size=big, mode=mode, align_corners=False)
        offs = [int(torch.randint(0, b - s + 1, ()).item()) for b, s in zip(big, spatial)]
        sl = (slice(None), slice(None)) + tuple(slice(o, o + s) for o, s in zip(offs, spatial))
        noise = noise[sl]
        # Interpolation shrinks the variance; restore the nominal sigma.
        std = noise.std().clamp_min(1e-8)
        return x + (self.sigma * noise / std).to(x.dtype)

    def spec(self):
        return {"kind": self.kind, "sigma": self.sigma, "scale": self.scale, "per_channel": self.per_channel}


class Compose(Corruption):
    """Apply several corruptions in order."""

    kind = "compose"

    def __init__(self, parts):
        super().__init__()
        parts = list(parts)
        for p in parts:
            if not isinstance(p, Corruption):
                raise ModelError(f"Compose takes Corruption modules, not {type(p).__name__}")
        self.parts = nn.ModuleList(parts)

    def corrupt(self, x):
        for p in self.parts:
            x = p.corrupt(x)
        return x

    def spec(self):
        return {"kind": self.kind, "parts": [p.spec() for p in self.parts]}


KINDS = {"gaussian": GaussianNoise, "masking": MaskingNoise, "coarse": CoarseNoise}


def from_spec(spec: dict[str, Any] | None) -> Corruption | None:
    """Rebuild a corruption from :meth:`Corruption.spec` (``None`` -> no corruption)."""
    if not spec:
        return None
    spec = dict(spec)
    kind = spec.pop("kind", None)
    if kind == "compose":
        return Compose([from_spec(p) for p in spec.get("parts", [])])
    if kind == "identity":
        return Corruption()
    if kind not in KINDS:
        raise ModelError(f"unknown corruption {kind!r}; valid: {', '.join(list(KINDS) + ['compose'])}")
    try:
        return KINDS[kind](**spec)
    except TypeError as exc:
        raise ModelError(f"corruption {kind!r}: {exc}") from None
