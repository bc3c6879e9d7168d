"""Segment scores: flagged stretches of EEG on the score track, a ranked table of segments."""
from __future__ import annotations

import numpy as np

from desktop.presenters.base import ResultTable, ScoredPresenter
from desktop.selftest.checks import check_provenance, finite, require
from engine.results import SegmentScores


class SegmentScoresPresenter(ScoredPresenter):
    result_type = SegmentScores
    selftest_sample = "text"  # the seizure scorer is made for the Bonn segments

    def count_line(self, result, data) -> str:
        return f"Segments: {len(result.score)}; flagged: {int(np.sum(result.label))}"

    def ranked_table(self, result, data, order) -> ResultTable:
        t0 = np.asarray(result.start, float)[order] / data.sfreq
        t1 = np.asarray(result.stop, float)[order] / data.sfreq
        return ResultTable(["start (s)", "stop (s)", "score", "flag"],
                           [t0, t1, np.asarray(result.score)[order], np.asarray(result.label)[order]],
                           ["{:.1f}".format, "{:.1f}".format, "{:.3f}".format, lambda v: "yes" if v else ""],
                           focus=np.stack([(t0 + t1) / 2, np.zeros_like(t0)], 1))

    def draw_signal(self, view, entry) -> None:
        r, sf = entry.result, view.signal.sfreq
        t0, t1 = np.asarray(r.start, float) / sf, np.asarray(r.stop, float) / sf
        label = np.asarray(r.label).astype(bool)
        view.scores.show_segments(t0, t1, np.asarray(r.score, float), label, r.threshold)
        view.show_hot((t0[label] + t1[label]) / 2)

    def event_sample(self, result, i) -> float:
        return (float(result.start[i]) + float(result.stop[i])) / 2

    def check(self, result, data, model, manifest) -> str:
        score = finite("segment scores", result.score)
        start, stop = np.asarray(result.start), np.asarray(result.stop)
        require(score.shape == start.shape == stop.shape, "starts, stops and scores differ in length")
        require(bool((stop > start).all()), "a segment ends before it starts")
        labels = np.asarray(result.label)
        require(bool(np.isin(labels, (0, 1)).all()), "labels are not 0/1")
        check_provenance(result, model, manifest)
        return f"{score.shape[0]} segment(s), max score {float(score.max()):.3f}, label {int(labels.max())}"
