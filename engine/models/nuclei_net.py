"""Nucleus detection network: a sparse convolutional autoencoder encoder plus a proximity-map head.

The encoder is pre-trained without labels as a sparse convolutional autoencoder
(Hou et al., Pattern Recognition 2019): it reconstructs the input from a 1/8-resolution
code with an L1 or KL sparsity penalty on the code (see :meth:`NucleiNet.autoencode`).
A light feature-pyramid decoder is then fine-tuned on centroid annotations to
predict a proximity map (Sirinukunwattana et al., IEEE TMI 2016) whose peaks are
the nuclei.

Input is RGB in [0, 1] float ``(N, 3, H, W)``; the hematoxylin optical density is
computed inside the network by colour deconvolution (Ruifrok & Johnston), so stain
handling travels with the weights. ``input_mode`` picks what the convolutions see:
``"rgb"``, ``"h"`` (hematoxylin only) or ``"rgbh"`` (both).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["NucleiNet", "INPUT_MODES"]

INPUT_MODES = ("rgb", "h", "rgbh")

# skimage.color.hed_from_rgb (inverse of the Ruifrok & Johnston stain matrix), row-vector form.
_HED_FROM_RGB = (
    (1.87798274, -1.00767869, -0.55611582),
    (-0.06590806, 1.13473037, -0.1355218),
    (-0.60190736, -0.48041419, 1.57358807),
)
_LOG_ADJUST = -13.815510557964274  # log(1e-6), as in skimage.color.rgb2hed


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class NucleiNet(nn.Module):
    """Fully convolutional nucleus detector (sparse conv AE encoder + proximity head).

    Parameters
    ----------
    input_mode : {"rgb", "h", "rgbh"}
        Channels the first convolution sees.
    widths : tuple of 4 or 5 int
        Channels at full, 1/2, 1/4, 1/8 (and 1/16) resolution. Five levels give the
        network a receptive field of about 200 px instead of about 60 px.
    blocks : int
        3x3 convolutions after the strided one in each encoder level at 1/4 resolution
        and below (1/2 resolution always has one: it dominates the cost).
    """

    def __init__(self, *, input_mode: str = "rgbh", widths: tuple[int, ...] | list[int] = (16, 32, 48, 64),
                 blocks: int = 1):
        super().__init__()
        if input_mode not in INPUT_MODES:
            raise ValueError(f"input_mode must be one of {INPUT_MODES}, got {input_mode!r}")
        widths = tuple(int(w) for w in widths)
        if len(widths) not in (4, 5) or min(widths) < 1:
            raise ValueError(f"widths must be 4 or 5 positive ints, got {widths}")
        blocks = int(blocks)
        if blocks < 1:
            raise ValueError(f"blocks must be >= 1, got {blocks}")
        self.hparams = {"input_mode": input_mode, "widths": list(widths)}
        if blocks != 1:
            self.hparams["blocks"] = blocks
        self.input_mode = input_mode
        self.levels = len(widths)
        #: Total downsampling: inputs must be a multiple of this.
        self.stride = 2 ** (self.levels - 1)
        cin = {"rgb": 3, "h": 1, "rgbh": 4}[input_mode]
        self.register_buffer("hed_from_rgb", torch.tensor(_HED_FROM_RGB, dtype=torch.float32), persistent=False)
        # Encoder (shared with the sparse conv AE): stem at full resolution, enc1..encL-1 halve it.
        self.stem = _conv(cin, widths[0])
        for i in range(1, self.levels):
            n = 1 if i == 1 else blocks
            w = widths[i]
            setattr(self, f"enc{i}", nn.Sequential(_conv(widths[i - 1], w, 2), *(_conv(w, w) for _ in range(n))))
        # Detection head: feature pyramid from the deepest level back to 1/2 resolution, then a 1x1 logit.
        for i in range(self.levels - 2, 0, -1):
            setattr(self, f"lat{i}", nn.Conv2d(widths[i], widths[i + 1], 1))
            setattr(self, f"dec{i}", _conv(widths[i + 1], widths[i]))
        self.head = nn.Conv2d(widths[1], 1, 1)
        # Sparse conv AE decoder (pre-training only): deepest code -> input channels.
        up = []
        for i in range(self.levels - 1, 0, -1):
            up += [nn.ConvTranspose2d(widths[i], widths[i - 1], 2, stride=2), nn.ReLU(inplace=True)]
        self.ae_dec = nn.Sequential(*up, nn.Conv2d(widths[0], cin, 3, padding=1))

    # -- preprocessing -------------------------------------------------------------------
    def hematoxylin(self, rgb: torch.Tensor) -> torch.Tensor:
        """Hematoxylin channel ``(N, 1, H, W)`` of RGB in [0, 1], as skimage.color.rgb2hed (>= 0)."""
        x = torch.clamp(rgb, min=1e-6)
        od = torch.log(x) / _LOG_ADJUST  # (N, 3, H, W)
        h = torch.einsum("nchw,c->nhw", od, self.hed_from_rgb[:, 0]).unsqueeze(1)
        return torch.clamp(h, min=0.0)

    def prepare(self, rgb: torch.Tensor) -> torch.Tensor:
        """Network input from RGB in [0, 1]: centred RGB and/or scaled hematoxylin."""
        parts = []
        if self.input_mode in ("rgb", "rgbh"):
            parts.append((rgb - 0.5) / 0.25)
        if self.input_mode in ("h", "rgbh"):
            parts.append(self.hematoxylin(rgb) * 20.0 - 1.0)  # H OD of nuclei ~0.05-0.15
        return torch.cat(parts, 1) if len(parts) > 1 else parts[0]

    # -- networks ------------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Features at 1/2, 1/4, ... 1/stride resolution of a prepared input."""
        feats = []
        f = self.stem(x)
        for i in range(1, self.levels):
            f = getattr(self, f"enc{i}")(f)
            feats.append(f)
        return feats

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        """Proximity-map logits ``(N, 1, H, W)`` for RGB ``(N, 3, H, W)`` in [0, 1].

        H and W must be multiples of :attr:`stride`.
        """
        feats = self.encode(self.prepare(rgb))
        p = feats[-1]
        for i in range(self.levels - 2, 0, -1):
            f = feats[i - 1]
            p = F.interpolate(p, size=f.shape[-2:], mode="nearest") + getattr(self, f"lat{i}")(f)
            p = getattr(self, f"dec{i}")(p)
        logit = self.head(p)
        return F.interpolate(logit, size=rgb.shape[-2:], mode="bilinear", align_corners=False)

    def autoencode(self, rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sparse conv AE pass: ``(target, reconstruction, code)``; the code is the deepest feature map."""
        x = self.prepare(rgb)
        code = self.encode(x)[-1]
        return x, self.ae_dec(code), code
