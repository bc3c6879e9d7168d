"""Training data from the readers: CT slices, H&E tiles, signal windows (plain arrays).

Everything returns float32 arrays shaped ``(n, channels, *spatial)`` in *model units*
(see :mod:`engine.inference.preprocess`), ready for :func:`engine.training.loop.train`, plus the random
crop/flip augmentation used for the bundled image models."""
from __future__ import annotations

import logging
from typing import Iterable, Sequence

import numpy as np

from engine.inference.preprocess import ct_to_model, resample_slice, signal_to_model

__all__ = ["ct_slices_model", "image_tiles", "signal_windows", "RandomCropFlip"]


logger = logging.getLogger("engine")


def ct_slices_model(image, prep: dict, *, planes: Iterable[int] | None = None) -> list[np.ndarray]:
    """HU planes of a CT :class:`~engine.data.Image` -> list of ``(1, h, w)`` model-unit slices."""
    vol = image.array
    planes = range(vol.shape[0]) if planes is None else planes
    out = []
    for k in planes:
        s = resample_slice(ct_to_model(vol[k], prep), image.spacing[1:], prep.get("target_spacing_mm"))
        out.append(s[None])
    return out


def image_tiles(arrays: Sequence[np.ndarray], tile: int, n: int, *, seed: int = 0) -> np.ndarray:
    """*n* random ``(C, tile, tile)`` crops from a list of ``(C, H, W)`` arrays (uniform over images)."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, arrays[0].shape[0], tile, tile), np.float32)
    for i in range(n):
        a = arrays[int(rng.integers(len(arrays)))]
        y = int(rng.integers(0, a.shape[1] - tile + 1))
        x = int(rng.integers(0, a.shape[2] - tile + 1))
        out[i] = a[:, y:y + tile, x:x + tile]
    return out


def signal_windows(signal, prep: dict, *, window: int, step: int, channels: Sequence[int] | None = None,
                   per_channel: bool = True, start: int = 0, stop: int | None = None) -> np.ndarray:
    """Windows of a :class:`~engine.data.Signal` in model units, read with ``Signal.read``.

    ``per_channel=True`` -> ``(n, 1, window)`` (every channel a sample);
    otherwise ``(n, channels, window)``. The signal must already be at the model's rate.
    """
    stop = signal.n_samples if stop is None else min(stop, signal.n_samples)
    chans = list(range(len(signal.channels))) if channels is None else list(channels)
    out = []
    for s in range(start, stop - window + 1, step):
        w = signal.read(s, s + window)[chans]
        x, _ = signal_to_model(w, prep)
        out.append(x[:, None] if per_channel else x[None])
    if not out:
        return np.zeros((0, 1 if per_channel else len(chans), window), np.float32)
    return np.concatenate(out).astype(np.float32)


class RandomCropFlip:
    """Augmentation for :func:`engine.training.loop.train`: random crop to *size* and random flips.

    Works on ``(batch, C, *spatial)`` tensors with 1 or 2 spatial axes; uses the trainer's
    seeded generator, so runs are reproducible.
    """

    def __init__(self, size: int | None, *, flips: Sequence[int] = (-1,)):
        self.size, self.flips = size, tuple(flips)

    def __call__(self, batch, gen):
        import torch

        if self.size is not None:
            sl = [slice(None), slice(None)]
            for n in batch.shape[2:]:
                o = int(torch.randint(0, n - self.size + 1, (), generator=gen))
                sl.append(slice(o, o + self.size))
            batch = batch[tuple(sl)]
        for ax in self.flips:
            if bool(torch.rand((), generator=gen) < 0.5):
                batch = batch.flip(ax)
        return batch.contiguous()
