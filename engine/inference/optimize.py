"""Inference-only rewrites of a trained network that leave its outputs unchanged.

:func:`fold_batchnorm` folds every eval-mode BatchNorm that directly follows a
convolution (inside an ``nn.Sequential``, which is how every network in
:mod:`engine.models` is built) into that convolution's weight and bias, and puts an
``nn.Identity`` in its place. The result computes the same function (to float
rounding) with one pass over the activations fewer per block. Training code must
keep the unfolded network: the folded copy has no running statistics to update.

:func:`split_skip_convs` replaces the first convolution after each skip connection of a
:class:`~engine.models.conv.ConvAE` by a :class:`~engine.models.blocks.PairConv`, so the
decoder never copies ``torch.cat([up, skip])`` (it was ~10% of ct-dae's forward pass on CPU).

:func:`planar_signal_convs` gives a 1-D :class:`~engine.models.signal_nets.SignalUNetDAE` (ecg-dae)
2-D ``(1, k)`` convolutions on channels_last ``(batch, channels, 1, samples)`` activations: the same
function to float rounding, 1.8x faster on CPU (oneDNN's 1-D path copies every layer's output).

:class:`Bf16Autocast` runs a network under bfloat16 autocast (float32 in, float32 out).
That is *not* the same function to float rounding, so a task turns it on only where its
accuracy benchmark showed no loss, and only on CPUs that compute bf16 natively
(:func:`cpu_has_bf16`: AVX512-BF16 or AMX); elsewhere autocast is emulated and slower.
"""
from __future__ import annotations

import copy
import itertools
import sys
from functools import lru_cache
from pathlib import Path

from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

__all__ = ["Bf16Autocast", "count_batchnorm", "cpu_has_bf16", "fold_batchnorm", "split_skip_convs", "for_inference",
           "optimized", "planar_signal_convs", "resolve_bf16"]

#: /proc/cpuinfo flags that mean the CPU computes bf16 dot products natively.
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def fold_batchnorm(module: nn.Module, *, inplace: bool = False) -> nn.Module:
    """Return *module* (a copy unless *inplace*) in eval mode with Conv→BN pairs folded.

    Only a BatchNorm that tracks running statistics and follows a plain convolution
    in the same ``nn.Sequential`` is folded; anything else is left as it is.
    """
    net = module if inplace else copy.deepcopy(module)
    net.eval()
    for seq in [m for m in net.modules() if isinstance(m, nn.Sequential)]:
        names = list(seq._modules.keys())
        for first, second in itertools.pairwise(names):
            conv, norm = seq._modules[first], seq._modules[second]
            if (isinstance(conv, _CONVS) and isinstance(norm, _NORMS)
                    and norm.track_running_stats and norm.running_mean is not None
                    and conv.out_channels == norm.num_features):
                seq._modules[first] = fuse_conv_bn_eval(conv, norm)
                seq._modules[second] = nn.Identity()
    return net


def split_skip_convs(module: nn.Module) -> nn.Module:
    """Give every skip-connected 2-D ConvAE decoder level of *module* (in place) a PairConv first convolution.

    2-D only: that is where it was measured (ct-dae forward 0.106 -> 0.094 s for 4 tiles of 256 px,
    1 thread); 1-D signal networks keep their concatenation.
    """
    from engine.models.blocks import PairConv
    from engine.models.conv import ConvAE

    for net in [m for m in module.modules() if isinstance(m, ConvAE) and m.skip_connections
                and m.hparams["spatial_dims"] == 2]:
        for up, dec in zip(net.up, net.dec):
            block = dec[0]
            if isinstance(block, nn.Sequential) and isinstance(block[0], _CONVS):
                block[0] = PairConv(block[0], first_channels=up.out_channels)
    return module


def _conv_as_2d(conv: nn.Module) -> nn.Module:
    """A ``Conv2d``/``ConvTranspose2d`` with a ``(1, k)`` kernel computing what 1-D *conv* computes on
    ``(batch, channels, 1, samples)``; other modules are returned as they are."""
    import torch

    if type(conv) is nn.Conv1d:
        new = nn.Conv2d(conv.in_channels, conv.out_channels, (1, conv.kernel_size[0]), stride=(1, conv.stride[0]),
                        padding=(0, conv.padding[0]), dilation=(1, conv.dilation[0]), groups=conv.groups,
                        bias=conv.bias is not None, padding_mode=conv.padding_mode)
    elif type(conv) is nn.ConvTranspose1d:
        new = nn.ConvTranspose2d(conv.in_channels, conv.out_channels, (1, conv.kernel_size[0]),
                                 stride=(1, conv.stride[0]), padding=(0, conv.padding[0]),
                                 output_padding=(0, conv.output_padding[0]), groups=conv.groups,
                                 bias=conv.bias is not None, dilation=(1, conv.dilation[0]))
    else:
        return conv
    with torch.no_grad():
        new.weight.copy_(conv.weight.unsqueeze(2))
        if conv.bias is not None:
            new.bias.copy_(conv.bias)
    return new.to(conv.weight.device, conv.weight.dtype)


def _planar_tree(module: nn.Module) -> nn.Module:
    module = _conv_as_2d(module)
    for name, child in list(module._modules.items()):
        if child is not None:
            module._modules[name] = _planar_tree(child)
    return module


def planar_signal_convs(module: nn.Module) -> nn.Module:
    """Make every :class:`~engine.models.signal_nets.SignalUNetDAE` in *module* (in place) run its
    convolutions as 2-D ``(1, k)`` ones on channels_last activations (its ``planar`` flag).

    Only that network, whose forward knows the flag; only after :func:`fold_batchnorm` (a BatchNorm1d
    left between the convolutions would see 4-D input and refuse). On CPU, 32 windows of 8192 samples
    (one thread, ecg-dae core): float32 0.278 -> 0.158 s, bf16 autocast 0.120 -> 0.067 s; the 1-D
    path spends ~22 % copying each convolution's output out of oneDNN's layout.
    """
    from engine.models.signal_nets import SignalUNetDAE

    for net in [m for m in module.modules() if isinstance(m, SignalUNetDAE)]:
        if any(isinstance(m, _NORMS) for m in net.modules()):
            continue
        for name in ("stem", "down", "enc", "up", "dec", "head"):
            net._modules[name] = _planar_tree(net._modules[name])
        net.planar = True
    return module


def count_batchnorm(module: nn.Module) -> int:
    """How many BatchNorm layers *module* still has (0 once everything folded)."""
    return sum(isinstance(m, _NORMS) for m in module.modules())


@lru_cache(maxsize=1)
def cpu_has_bf16() -> bool:
    """Whether this CPU has native bf16 arithmetic (Linux: the /proc/cpuinfo flags; else False)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        with Path("/proc/cpuinfo").open() as fh:
            for line in fh:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return any(f in flags for f in BF16_CPU_FLAGS)
    except OSError:
        pass
    return False


def resolve_bf16(requested: bool | None, device) -> bool:
    """*requested* when given; otherwise (``None``, a task's "auto") True on a CPU with native bf16.

    CUDA stays float32 unless asked: the accuracy checks behind "auto" ran on CPU.
    """
    if requested is not None:
        return bool(requested)
    return getattr(device, "type", str(device or "cpu")).startswith("cpu") and cpu_has_bf16()


class Bf16Autocast(nn.Module):
    """*inner* under bfloat16 autocast on its device; float32 in, float32 out.

    Attributes the tasks read from a network (``stride``, ``gate_level`` ...) are the inner's.
    """

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def __getattr__(self, name):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self._modules["inner"], name)

    def forward(self, x):
        import torch

        with torch.autocast(x.device.type, dtype=torch.bfloat16):
            out = self.inner(x)
        return out.float()


def for_inference(module: nn.Module, device=None, *, bf16: bool = False) -> nn.Module:
    """A folded copy of *module* (skip convolutions split; on CPU a signal U-Net's convolutions planar)
    on *device*, in channels_last when it holds 2-D convolutions, under bf16 autocast when *bf16*
    (see :class:`Bf16Autocast`).

    The original network is left untouched (training code may still use it). Without *bf16*
    outputs equal the original's to float rounding (tested on real CRCHisto and LIDC images).
    """
    import torch

    net = split_skip_convs(fold_batchnorm(module))
    if getattr(device, "type", str(device or "cpu")).startswith("cpu"):  # measured on CPU only
        net = planar_signal_convs(net)
    if any(isinstance(m, nn.Conv2d) for m in net.modules()):
        net = net.to(device or "cpu", memory_format=torch.channels_last)
    else:
        net = net.to(device or "cpu")
    return Bf16Autocast(net).eval() if bf16 else net


def optimized(loaded, *, bf16: bool = False, device=None):
    """*loaded* (an :class:`engine.weights.LoadedModel`) with its network replaced by
    :func:`for_inference`'s copy; the cached model keeps its original network."""
    import dataclasses

    return dataclasses.replace(loaded, module=for_inference(loaded.module, device, bf16=bf16))
