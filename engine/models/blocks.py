"""Building blocks shared by the autoencoder families, for 1-D, 2-D and 3-D inputs.

Everything here is dimension-generic: ``spatial_dims`` picks ``Conv1d``/``Conv2d``/
``Conv3d`` and the matching pooling, normalisation and transposed convolution.
Normalisation is BatchNorm (or none) on purpose: per-sample norms (instance or group
norm) would make a tile's output depend on the rest of the tile, which breaks the
"tiled inference equals whole-image inference" property that :mod:`engine.tasks.reconstruct` relies on.
"""
from __future__ import annotations

from typing import Any, Iterable

import torch
from torch import nn

from engine.errors import ModelError

__all__ = ["conv_cls", "conv_transpose_cls", "norm_cls", "pool_cls", "activation", "ConvBlock", "PairConv",
           "check_choice", "check_int", "check_float", "ACTIVATIONS"]

ACTIVATIONS = ("relu", "leaky_relu", "elu", "gelu", "sigmoid", "tanh", "none")


def _pick(spatial_dims: int, options: tuple) -> type:
    if spatial_dims not in (1, 2, 3):
        raise ModelError(f"spatial_dims must be 1, 2 or 3, not {spatial_dims!r}")
    return options[spatial_dims - 1]


def conv_cls(spatial_dims: int) -> type:
    return _pick(spatial_dims, (nn.Conv1d, nn.Conv2d, nn.Conv3d))


def conv_transpose_cls(spatial_dims: int) -> type:
    return _pick(spatial_dims, (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d))


def norm_cls(spatial_dims: int) -> type:
    return _pick(spatial_dims, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d))


def pool_cls(spatial_dims: int) -> type:
    return _pick(spatial_dims, (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d))


def activation(name: str) -> nn.Module:
    """An activation module by name (one of :data:`ACTIVATIONS`)."""
    check_choice("activation", name, ACTIVATIONS)
    return {
        "relu": lambda: nn.ReLU(inplace=True),
        "leaky_relu": lambda: nn.LeakyReLU(0.1, inplace=True),
        "elu": lambda: nn.ELU(inplace=True),
        "gelu": nn.GELU,
        "sigmoid": nn.Sigmoid,
        "tanh": nn.Tanh,
        "none": nn.Identity,
    }[name]()


class ConvBlock(nn.Sequential):
    """Convolution (same padding) -> optional BatchNorm -> activation."""

    def __init__(self, spatial_dims: int, in_ch: int, out_ch: int, *, kernel_size: int = 3,
                 stride: int = 1, norm: bool = True, act: str = "relu"):
        pad = kernel_size // 2
        layers: list[nn.Module] = [conv_cls(spatial_dims)(in_ch, out_ch, kernel_size, stride=stride,
                                                          padding=pad, bias=not norm)]
        if norm:
            layers.append(norm_cls(spatial_dims)(out_ch))
        layers.append(activation(act))
        super().__init__(*layers)


class PairConv(nn.Module):
    """``conv(torch.cat([a, b], dim=1))`` for a pair ``(a, b)``, as two convolutions summed.

    Built from a trained convolution by :func:`engine.inference.optimize.split_skip_convs` for
    inference: the decoder of a network with skip connections then never makes the
    concatenated copy (same function; float rounding of the sum differs, ~1e-6).
    """

    def __init__(self, conv: nn.Module, first_channels: int):
        super().__init__()
        c = int(first_channels)
        if not 0 < c < conv.in_channels or conv.groups != 1:
            raise ModelError(f"cannot split a {conv.in_channels}-channel convolution after channel {c}")
        cls = type(conv)
        kw = {"kernel_size": conv.kernel_size, "stride": conv.stride, "padding": conv.padding,
              "dilation": conv.dilation, "padding_mode": conv.padding_mode}
        w = conv.weight.detach()
        self.first = cls(c, conv.out_channels, bias=conv.bias is not None, **kw).to(w.device, w.dtype)
        self.second = cls(conv.in_channels - c, conv.out_channels, bias=False, **kw).to(w.device, w.dtype)
        with torch.no_grad():
            self.first.weight.copy_(w[:, :c])
            self.second.weight.copy_(w[:, c:])
            if conv.bias is not None:
                self.first.bias.copy_(conv.bias.detach())

    def forward(self, pair: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        a, b = pair
        return self.first(a).add_(self.second(b))


# --- validation helpers: every family validates its keyword-only options the same way ---

def check_choice(name: str, value: Any, choices: Iterable[Any]) -> Any:
    choices = tuple(choices)
    if value not in choices:
        raise ModelError(f"{name} must be one of {', '.join(map(repr, choices))}, not {value!r}")
    return value


def check_int(name: str, value: Any, *, lo: int = 1, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < lo or (hi is not None and value > hi):
        rng = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise ModelError(f"{name} must be an integer {rng}, not {value!r}")
    return int(value)


def check_float(name: str, value: Any, *, lo: float | None = None, hi: float | None = None,
                open_lo: bool = False, open_hi: bool = False) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ModelError(f"{name} must be a number, not {value!r}") from None
    bad = (v != v) or (lo is not None and (v <= lo if open_lo else v < lo)) or \
          (hi is not None and (v >= hi if open_hi else v > hi))
    if bad:
        lo_s = "" if lo is None else f"{'>' if open_lo else '>='} {lo}"
        hi_s = "" if hi is None else f"{'<' if open_hi else '<='} {hi}"
        raise ModelError(f"{name} must be {' and '.join(s for s in (lo_s, hi_s) if s)}, not {value!r}")
    return v


def check_channels(name: str, value: Any) -> tuple[int, ...]:
    if isinstance(value, int) or not value:
        raise ModelError(f"{name} must be a non-empty sequence of positive integers, not {value!r}")
    return tuple(check_int(f"{name}[{i}]", c) for i, c in enumerate(value))


def init_weights(module: nn.Module) -> None:
    """Kaiming init for convolutions/linear layers (deterministic under torch.manual_seed).

    Parameters on the ``meta`` device (a network built only to learn its shapes) are left
    alone: they hold no values, and ``normal_`` on them imports ``torch._dynamo`` (~3-5 s).
    """
    for m in module.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d,
                          nn.ConvTranspose3d, nn.Linear)) and not m.weight.is_meta:
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def as_tensor_shape(x: torch.Tensor, spatial_dims: int, name: str) -> None:
    """Raise ModelError unless *x* is ``(batch, channels, *spatial)`` with *spatial_dims* axes."""
    if x.dim() != spatial_dims + 2:
        raise ModelError(f"{name} expects a (batch, channels{', L' if spatial_dims == 1 else ', H, W'}"
                         f"{', D' if spatial_dims == 3 else ''}) tensor, got shape {tuple(x.shape)}")
