"""A denoised recording: drawn in red over the original traces."""
from __future__ import annotations

import numpy as np

from desktop.presenters.base import Presenter
from desktop.selftest.checks import check_provenance, data_shape, finite, require
from engine.results import DenoisedSignal


class DenoisedSignalPresenter(Presenter):
    result_type = DenoisedSignal

    def summary(self, result, data) -> list[str]:
        return [f"Denoised {len(result.signal.channels)} channel(s), {result.signal.duration:.1f} s"]

    def draw_signal(self, view, entry) -> None:
        view.show_trace(entry.result.signal, "denoised")

    def check(self, result, data, model, manifest) -> str:
        shape, sig = data_shape(data), result.signal
        require(data_shape(sig) == shape, f"denoised shape {sig.shape} != input {shape}")
        require(abs(sig.sfreq - data.sfreq) < 1e-6, "denoised sampling rate differs from the input")
        n = min(sig.n_samples, 100_000)
        out, inp = finite("denoised signal", sig.read(0, n)), data.read(0, n)
        require(not np.array_equal(out, inp), "the denoised signal is identical to the input")
        check_provenance(result, model, manifest)
        rms = float(np.sqrt(np.mean((out - inp) ** 2)))
        return f"{shape[0]} ch x {shape[1]} samples, rms change {rms:.3g}"
