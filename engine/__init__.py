"""Latent engine: readers and autoencoders for CT, H&E histology, ECG and EEG.

Plain Python + PyTorch; never imports Qt. Torch itself is imported only by the
modules that need it, so ``import engine`` and reading files stay fast.
"""
from __future__ import annotations

import logging
import os

# Idle OpenMP threads must sleep, not spin, on small shared machines: these are read when
# torch/OpenMP initialise, so they are set here, before any engine module imports torch.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("KMP_BLOCKTIME", "0")

__version__ = "0.1.0"
__all__ = ["__version__", "read", "sys_info"]

logging.getLogger("engine").addHandler(logging.NullHandler())


def read(path, **options):
    """Read any supported file; see :func:`engine.io.read`."""
    from engine.io import read as _read

    return _read(path, **options)


def sys_info() -> str:
    """Versions, device and CUDA details for bug reports; see :func:`engine._shared.sysinfo.sys_info`."""
    from engine._shared.sysinfo import sys_info as _sys_info

    return _sys_info()
