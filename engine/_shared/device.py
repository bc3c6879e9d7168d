"""Device choice (CUDA, then MPS, then CPU) and a readable device name."""
from __future__ import annotations

import os

__all__ = ["choose_device", "device_name"]


def choose_device(requested: str | None = None):
    """Pick the torch device: *requested* if given, else CUDA, then MPS, then CPU.

    Raises :class:`engine.errors.ModelError` when a requested device is absent.
    """
    import torch

    from engine.errors import ModelError

    if requested and requested != "auto":
        dev = torch.device(requested)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ModelError("CUDA was requested but no CUDA GPU is available; use --device cpu")
        if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise ModelError("MPS was requested but is not available; use --device cpu")
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def device_name(device) -> str:
    """Human-readable device name: the GPU's name, or 'CPU'."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return "Apple GPU (MPS)"
    return f"CPU ({os.cpu_count()} cores)"
