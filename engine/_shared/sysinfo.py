"""Versions, device and CUDA details for bug reports."""
from __future__ import annotations

import os
import platform
import sys

__all__ = ["sys_info"]


def sys_info() -> str:
    """Versions of Python and the libraries Latent uses, and the compute device."""
    import importlib.metadata as md

    lines = [
        f"latent: {_version('latent')}",
        f"python: {sys.version.split()[0]} ({platform.platform()})",
    ]
    for dist in ("numpy", "scipy", "torch", "torchvision", "safetensors", "pydicom", "pylibjpeg",
                 "tifffile", "zarr", "openslide-python", "openslide-bin", "wfdb", "mne",
                 "scikit-image", "scikit-learn", "opencv-python-headless", "PySide6-Essentials", "pyqtgraph",
                 "superqt"):
        try:
            lines.append(f"{dist}: {md.version(dist)}")
        except md.PackageNotFoundError:
            lines.append(f"{dist}: not installed")
    try:
        import torch

        from engine._shared.threads import concurrent_calls, default_threads, usable_cores

        cores = usable_cores()
        lines.append(f"torch threads: {torch.get_num_threads()} (policy default {default_threads(cores)} "
                     f"for {cores} usable cores; OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')})")
        lines.append(f"concurrent network calls: {concurrent_calls(default_threads(cores))} at the policy default "
                     f"(batches split over that many threads; nucleus outlines and CT post-processing beside the "
                     f"network when it is 2)")
        from engine._shared.memory import malloc_policy

        mp = malloc_policy()
        lines.append(f"malloc policy: {mp.describe() if mp else 'not applied in this process'}")
        if torch.cuda.is_available():
            lines.append(f"CUDA: {torch.version.cuda}, device: {torch.cuda.get_device_name(0)}")
        else:
            lines.append("CUDA: not available (CPU only)")
    except ImportError:
        lines.append("torch: not importable")
    return "\n".join(lines)


def _version(dist: str) -> str:
    import importlib.metadata as md

    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return "unknown"
