"""Out of device memory during inference: the batch is halved (same outputs), and on a GPU a single input
that still does not fit continues on the CPU, with a message. The GPU case needs CUDA (skipped without)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.inference.tiles import SplitForward, tiled_reconstruct
from engine.jobs import Progress

OOM = getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError


class Limited(torch.nn.Module):
    """A real convolution that raises the allocator's error for batches above *limit* (or on *refuse*)."""

    def __init__(self, limit: int = 10**9, refuse: str | None = None):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(1, 1, 3, padding=1)
        self.limit, self.refuse, self.calls = limit, refuse, []

    def forward(self, x):
        self.calls.append((x.shape[0], x.device.type))
        if x.shape[0] > self.limit or x.device.type == self.refuse:
            raise OOM("CUDA out of memory. Tried to allocate 2.00 GiB (simulated by the test module)")
        return self.conv(x)


def _run(module, img, device="cpu", batch_size=8):
    msgs = []
    job = tiled_reconstruct(module, lambda y0, x0, y1, x1: img[:, y0:y1, x0:x1], img.shape[1], img.shape[2],
                            tile=64, overlap=16, batch_size=batch_size, device=device, workers=1)
    try:
        while True:
            p = next(job)
            if isinstance(p, Progress):
                msgs.append(p.message)
    except StopIteration as stop:
        return stop.value, msgs


def test_batch_halved_on_out_of_memory_gives_the_same_output():
    img = np.random.default_rng(0).random((1, 300, 300), dtype=np.float32)
    ref, _ = _run(Limited(), img)
    lim = Limited(limit=2)
    out, msgs = _run(lim, img)
    np.testing.assert_array_equal(out, ref)
    assert max(n for n, _ in lim.calls if n <= 2) == 2 and any(n > 2 for n, _ in lim.calls)  # tried, then halved
    assert any("cpu out of memory on a batch of" in m and "halving it" in m for m in msgs)


def test_cpu_out_of_memory_on_one_input_is_raised():
    img = np.zeros((1, 64, 64), np.float32)
    with SplitForward(Limited(limit=0), "cpu", workers=1) as fwd, pytest.raises(OOM):
        fwd(img[None])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_out_of_memory_on_one_input_continues_on_the_cpu():
    img = np.random.default_rng(1).random((1, 200, 200), dtype=np.float32)
    ref, _ = _run(Limited(), img)
    mod = Limited(refuse="cuda")
    out, msgs = _run(mod, img, device="cuda")
    np.testing.assert_allclose(out, ref, atol=1e-5)
    assert ("cpu" in {d for _, d in mod.calls}) and any("continuing on the CPU" in m for m in msgs)
