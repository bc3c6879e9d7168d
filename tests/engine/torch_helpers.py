"""Shared by the torch-heavy engine tests (infer, train, reconstruct CLI)."""
from __future__ import annotations

import numpy as np
import pytest


def sines(n, length, *, f_max, seed=0):
    """*n* random sines of *length* samples as (n, 1, length) float32: 2 to *f_max* cycles, random phase."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, length, dtype=np.float32)
    f = rng.uniform(2, f_max, n)[:, None]
    ph = rng.uniform(0, 6, n)[:, None]
    return np.sin(2 * np.pi * f * t + ph)[:, None].astype(np.float32)


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Autouse in every test module that imports it: one torch thread, restored afterwards."""
    # Small models: one thread is ~5x faster than two on this shared 2-core machine (no spin-waiting).
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
