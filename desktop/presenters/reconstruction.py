"""Reconstruct + anomaly map: the heat-map and reconstruction layers, the compare panes."""
from __future__ import annotations

import numpy as np

from desktop.presenters.base import Framing, Presenter
from desktop.selftest.checks import check_provenance, data_shape, finite, require
from engine.data import Signal
from engine.results import ReconstructionResult


class ReconstructionPresenter(Presenter):
    result_type = ReconstructionResult

    def summary(self, result, data) -> list[str]:
        """The figures of the task's own summary (``anomaly.stats``: inside the foreground mask for
        images), saying which mask they use, so the panel and the exported summary agree."""
        amap = result.anomaly
        stats = dict(amap.stats or {})
        if "fraction_above_1" not in stats:  # a result without the engine's statistics
            from engine.inference.anomaly import anomaly_stats

            stats = anomaly_stats(amap.array, amap.mask)
        modality = getattr(data, "modality", None)
        if amap.mask is not None:
            where = {"ct": "body", "histology": "tissue"}.get(modality, "foreground")
            share = float(stats.get("mask_fraction", np.mean(np.asarray(amap.mask, bool))))
            scope = f"of the {where} (mask: {100 * share:.0f}% of the image)"
        else:
            scope = "of all samples" if modality in ("ecg", "eeg") else "of all pixels"
        return [f"Anomaly: max {stats['max']:.2f}, mean {stats['mean']:.2f}, "
                f"{100 * stats['fraction_above_1']:.1f}% {scope} above 1",
                "Scale: 0 = typical, 1 = calibrated high percentile of normal data"]

    def provenance(self, result) -> tuple[str, str]:
        return super().provenance(result.reconstruction)

    def draw_ct(self, view, entry) -> None:
        r = entry.result
        stats = r.anomaly.stats or {}
        extra = f"  max {stats['max']:.2f}" if "max" in stats else ""
        view.show_reconstruction(r.reconstruction.array, r.anomaly.array, r.anomaly.mask,
                                 title=f"Original + anomaly ({entry.model}){extra}")

    def draw_slide(self, view, entry) -> None:
        view.show_reconstruction(entry.result.reconstruction.array, entry.result.anomaly.array)

    def draw_signal(self, view, entry) -> None:
        view.show_trace(np.asarray(entry.result.reconstruction.array), "reconstruction")
        view.show_anomaly(np.asarray(entry.result.anomaly.array, np.float32))

    def framing(self, result, data) -> Framing:
        """The most anomalous stretch of a signal; the most anomalous CT slice, compared."""
        a = np.asarray(result.anomaly.array)
        if isinstance(data, Signal):
            a = a.max(axis=0) if a.ndim == 2 else a
            return Framing(seconds=float(np.nanargmax(a)) * data.n_samples / max(1, a.size) / data.sfreq)
        if data.modality != "ct":
            return Framing(compare=True)
        a = a[None] if a.ndim == 2 else a
        n = data.shape[0] if len(data.shape) == 3 else 1
        i = int(np.argmax(np.nanmax(a.reshape(a.shape[0], -1), axis=1)))
        return Framing(slice=int(round(i * (n - 1) / max(1, a.shape[0] - 1))), compare=True)

    def check(self, result, data, model, manifest) -> str:
        shape = data_shape(data)
        rec, amap = result.reconstruction, result.anomaly
        arr = finite("reconstruction", rec.array)
        require(tuple(arr.shape) == shape, f"reconstruction shape {arr.shape} != input {shape}")
        amap_arr = finite("anomaly map", amap.array)
        require(bool(amap.scale), "anomaly map has no calibrated scale")
        check_provenance(rec, model, manifest)
        check_provenance(amap, model, manifest)
        return (f"recon {'x'.join(map(str, arr.shape))}, map {'x'.join(map(str, amap_arr.shape))} "
                f"max {float(np.max(amap_arr)):.2f}")
