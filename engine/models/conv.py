"""Convolutional autoencoder (1-D signals, 2-D images, 3-D volumes) via ``spatial_dims``.

Encoder: per level ``blocks_per_level`` convolutions then a downsampling by 2
(strided convolution or max pooling). Decoder: upsampling by 2 (transposed
convolution or interpolation + convolution) then convolutions, mirrored.
Optional U-Net style skip connections (``skip_connections=True``) keep detail; with
them the network must be trained as a *denoising* AE (see :mod:`engine.models.denoising`)
or it learns the identity — this is the coarse-noise DAE of Kascenas et al. (2022).

Input size: every spatial size must be divisible by ``2 ** len(channels)``
(:attr:`ConvAE.size_multiple`); :mod:`engine.tasks.reconstruct` pads inputs to that multiple.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from engine.errors import ModelError
from engine.models.blocks import (
    ACTIVATIONS,
    ConvBlock,
    PairConv,
    activation,
    as_tensor_shape,
    check_channels,
    check_choice,
    check_int,
    conv_cls,
    conv_transpose_cls,
    init_weights,
    pool_cls,
)

__all__ = ["ConvAE"]


class ConvAE(nn.Module):
    """Convolutional autoencoder.

    Parameters (keyword-only)
    ----------
    spatial_dims : {1, 2, 3}
    in_channels : int
    out_channels : int, optional
        Defaults to ``in_channels``.
    channels : sequence of int
        Feature channels per level; the depth is ``len(channels)``.
    latent_channels : int, optional
        Channels of the bottleneck code (default ``channels[-1]``).
    kernel_size : odd int
    downsample : {"stride", "pool"}
    upsample : {"transpose", "interp"}
    norm : bool
        BatchNorm after each convolution.
    activation, latent_activation, final_activation : str
        One of :data:`engine.models.blocks.ACTIVATIONS`. A ``"sigmoid"`` latent makes
        the code usable with a KL sparsity penalty.
    skip_connections : bool
        U-Net skips from encoder to decoder (denoising use only).
    blocks_per_level : int
    """

    def __init__(self, *, spatial_dims: int = 2, in_channels: int = 1, out_channels: int | None = None,
                 channels=(16, 32, 64), latent_channels: int | None = None, kernel_size: int = 3,
                 downsample: str = "stride", upsample: str = "transpose", norm: bool = True,
                 activation: str = "relu", latent_activation: str = "none",
                 final_activation: str = "none", skip_connections: bool = False,
                 blocks_per_level: int = 1):
        super().__init__()
        sd = check_choice("spatial_dims", spatial_dims, (1, 2, 3))
        cin = check_int("in_channels", in_channels)
        cout = cin if out_channels is None else check_int("out_channels", out_channels)
        chans = check_channels("channels", channels)
        latent = chans[-1] if latent_channels is None else check_int("latent_channels", latent_channels)
        k = check_int("kernel_size", kernel_size, hi=15)
        if k % 2 == 0:
            raise ModelError(f"kernel_size must be odd, not {k}")
        check_choice("downsample", downsample, ("stride", "pool"))
        check_choice("upsample", upsample, ("transpose", "interp"))
        for nm, v in (("activation", activation), ("latent_activation", latent_activation),
                      ("final_activation", final_activation)):
            check_choice(nm, v, ACTIVATIONS)
        bpl = check_int("blocks_per_level", blocks_per_level, hi=4)
        self.hparams = dict(spatial_dims=sd, in_channels=cin, out_channels=cout, channels=list(chans),
                            latent_channels=latent, kernel_size=k, downsample=downsample,
                            upsample=upsample, norm=bool(norm), activation=activation,
                            latent_activation=latent_activation, final_activation=final_activation,
                            skip_connections=bool(skip_connections), blocks_per_level=bpl)
        self.spatial_dims = sd
        self.skip_connections = bool(skip_connections)
        self._interp = "linear" if sd == 1 else ("bilinear" if sd == 2 else "trilinear")

        def block(i, o, **kw):
            return ConvBlock(sd, i, o, kernel_size=k, norm=norm, act=activation, **kw)

        self.enc = nn.ModuleList()
        self.down = nn.ModuleList()
        prev = cin
        for c in chans:
            self.enc.append(nn.Sequential(*[block(prev if j == 0 else c, c) for j in range(bpl)]))
            self.down.append(block(c, c, stride=2) if downsample == "stride" else pool_cls(sd)(2))
            prev = c
        self.to_latent = nn.Sequential(conv_cls(sd)(prev, latent, k, padding=k // 2),
                                       _act(latent_activation))
        self.from_latent = block(latent, chans[-1])
        self.up = nn.ModuleList()
        self.dec = nn.ModuleList()
        for i in reversed(range(len(chans))):
            c = chans[i]  # the decoder level that mirrors encoder level i reads and upsamples c channels
            nxt = chans[i - 1] if i > 0 else chans[0]
            self.up.append(conv_transpose_cls(sd)(c, c, 2, stride=2) if upsample == "transpose"
                           else conv_cls(sd)(c, c, k, padding=k // 2))
            first_in = 2 * c if self.skip_connections else c
            self.dec.append(nn.Sequential(*[block(first_in if j == 0 else nxt, nxt) for j in range(bpl)]))
        self.head = nn.Sequential(conv_cls(sd)(chans[0], cout, 1), _act(final_activation))
        init_weights(self)

    # ------------------------------------------------------------------ API
    @property
    def size_multiple(self) -> int:
        """Every spatial size of an input must be divisible by this."""
        return 2 ** len(self.hparams["channels"])

    def _check(self, x: torch.Tensor) -> None:
        as_tensor_shape(x, self.spatial_dims, "ConvAE")
        if x.shape[1] != self.hparams["in_channels"]:
            raise ModelError(f"ConvAE expects {self.hparams['in_channels']} input channel(s), got {x.shape[1]}")
        m = self.size_multiple
        if any(s % m for s in x.shape[2:]):
            raise ModelError(f"input size {tuple(x.shape[2:])} is not divisible by {m} (= 2**depth); pad it")

    def _encode(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        self._check(x)
        skips = []
        for enc, down in zip(self.enc, self.down):
            x = enc(x)
            skips.append(x)
            x = down(x)
        return self.to_latent(x), skips

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The bottleneck code (``latent_channels`` x size / 2**depth)."""
        return self._encode(x)[0]

    def decode(self, z: torch.Tensor, skips: list[torch.Tensor] | None = None) -> torch.Tensor:
        """Reconstruct from a code (a model with skip connections also needs the encoder features)."""
        if self.skip_connections and skips is None:
            raise ModelError("this ConvAE has skip connections: decode needs the encoder features; "
                             "call the model itself")
        h = self.from_latent(z)
        for j, (up, dec) in enumerate(zip(self.up, self.dec)):
            if self.hparams["upsample"] == "transpose":
                h = up(h)
            else:
                h = up(F.interpolate(h, scale_factor=2.0, mode=self._interp, align_corners=False))
            if self.skip_connections:
                skip = skips[len(skips) - 1 - j]
                # an inference copy may take the pair as is (PairConv: no concatenated copy)
                h = (h, skip) if isinstance(dec[0][0], PairConv) else torch.cat([h, skip], dim=1)
            h = dec(h)
        return self.head(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The reconstruction, same shape as *x*."""
        z, skips = self._encode(x)
        return self.decode(z, skips if self.skip_connections else None)


def _act(name: str) -> nn.Module:
    return activation(name)
