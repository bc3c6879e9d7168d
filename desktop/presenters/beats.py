"""Beat scores: the score track under the ECG, the beats above threshold, a ranked table."""
from __future__ import annotations

import numpy as np

from desktop.presenters.base import ResultTable, ScoredPresenter
from desktop.selftest.checks import check_provenance, finite, require
from engine.results import BeatScores


class BeatScoresPresenter(ScoredPresenter):
    result_type = BeatScores

    def count_line(self, result, data) -> str:
        s = self.engine_summary(result, data)
        return f"Beats: {s['n_beats']}; above threshold: {s['n_above_threshold'] or 0}"

    def ranked_table(self, result, data, order) -> ResultTable:
        t = np.asarray(result.sample, float)[order] / data.sfreq
        sym = np.asarray(result.symbol, dtype=object)[order] if len(result.symbol) else np.full(len(order), "")
        return ResultTable(["time (s)", "label", "score"], [t, sym, np.asarray(result.score)[order]],
                           ["{:.2f}".format, str, "{:.3f}".format], focus=np.stack([t, np.zeros_like(t)], 1))

    def draw_signal(self, view, entry) -> None:
        r = entry.result
        t = np.asarray(r.sample, float) / view.signal.sfreq
        score = np.asarray(r.score, float)
        view.scores.show_beats(t, score, r.threshold)
        view.show_hot(t[score > r.threshold] if r.threshold is not None else np.zeros(0))  # as the summary counts

    def event_sample(self, result, i) -> float:
        return float(result.sample[i])

    def check(self, result, data, model, manifest) -> str:
        sample = finite("beat positions", result.sample)
        score = finite("beat scores", result.score)
        require(score.shape == sample.shape and len(result.symbol) == sample.shape[0],
                "beats, symbols and scores differ in length")
        require(bool((sample >= 0).all() and (sample < data.n_samples).all()), "a beat lies outside the recording")
        check_provenance(result, model, manifest)
        return f"{sample.shape[0]} beats, score {float(score.min()):.2f}-{float(score.max()):.2f}"
