"""Shared by the torch-heavy engine tests (infer, train, reconstruct CLI)."""
from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Autouse in every test module that imports it: one torch thread, restored afterwards."""
    # Small models: one thread is ~5x faster than two on this shared 2-core machine (no spin-waiting).
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
