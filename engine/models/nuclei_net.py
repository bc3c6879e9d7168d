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
    widths : tuple of 4 int
        Channels at full, 1/2, 1/4 and 1/8 resolution.
    """

    def __init__(self, *, input_mode: str = "rgbh", widths: tuple[int, ...] | list[int] = (16, 32, 48, 64)):
        super().__init__()
        if input_mode not in INPUT_MODES:
            raise ValueError(f"input_mode must be one of {INPUT_MODES}, got {input_mode!r}")
        widths = tuple(int(w) for w in widths)
        if len(widths) != 4 or min(widths) < 1:
            raise ValueError(f"widths must be 4 positive ints, got {widths}")
        self.hparams = {"input_mode": input_mode, "widths": list(widths)}
        self.input_mode = input_mode
        cin = {"rgb": 3, "h": 1, "rgbh": 4}[input_mode]
        w0, w1, w2, w3 = widths
        self.register_buffer("hed_from_rgb", torch.tensor(_HED_FROM_RGB, dtype=torch.float32), persistent=False)
        # Encoder (shared with the sparse conv AE).
        self.stem = _conv(cin, w0)
        self.enc1 = nn.Sequential(_conv(w0, w1, 2), _conv(w1, w1))
        self.enc2 = nn.Sequential(_conv(w1, w2, 2), _conv(w2, w2))
        self.enc3 = nn.Sequential(_conv(w2, w3, 2), _conv(w3, w3))
        # Detection head: feature pyramid back to 1/2 resolution, then a 1x1 logit.
        self.lat2 = nn.Conv2d(w2, w3, 1)
        self.dec2 = _conv(w3, w2)
        self.lat1 = nn.Conv2d(w1, w2, 1)
        self.dec1 = _conv(w2, w1)
        self.head = nn.Conv2d(w1, 1, 1)
        # Sparse conv AE decoder (pre-training only): 1/8 code -> input channels.
        self.ae_dec = nn.Sequential(
            nn.ConvTranspose2d(w3, w2, 2, stride=2), nn.ReLU(inplace=True),
            nn.ConvTranspose2d(w2, w1, 2, stride=2), nn.ReLU(inplace=True),
            nn.ConvTranspose2d(w1, w0, 2, stride=2), nn.ReLU(inplace=True),
            nn.Conv2d(w0, cin, 3, padding=1),
        )

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
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Features at 1/2, 1/4 and 1/8 resolution of a prepared input."""
        f1 = self.enc1(self.stem(x))
        f2 = self.enc2(f1)
        f3 = self.enc3(f2)
        return f1, f2, f3

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        """Proximity-map logits ``(N, 1, H, W)`` for RGB ``(N, 3, H, W)`` in [0, 1].

        H and W must be multiples of 8.
        """
        f1, f2, f3 = self.encode(self.prepare(rgb))
        p = F.interpolate(f3, size=f2.shape[-2:], mode="nearest") + self.lat2(f2)
        p = self.dec2(p)
        p = F.interpolate(p, size=f1.shape[-2:], mode="nearest") + self.lat1(f1)
        logit = self.head(self.dec1(p))
        return F.interpolate(logit, size=rgb.shape[-2:], mode="bilinear", align_corners=False)

    def autoencode(self, rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sparse conv AE pass: ``(target, reconstruction, code)``; the code is the 1/8 feature map."""
        x = self.prepare(rgb)
        code = self.encode(x)[2]
        return x, self.ae_dec(code), code
