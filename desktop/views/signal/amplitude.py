"""How tall each lane's trace is drawn: one common µV/division for the EEG lanes, as EDFbrowser
and paper EEG do, with per-channel overrides; lanes in other units are fitted to their lane.

A *division* is the distance between two lanes (one plot unit): at 100 µV/div a 100 µV deflection
spans from one lane's baseline to the next. ECG recordings keep one fitted scale per lane (their
calibration bars say how many mV each lane shows).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["SENSITIVITIES_UV", "LaneScale", "fit_sensitivity", "step_sensitivity"]

#: The µV/division choices (tool-bar box, +/- steps).
SENSITIVITIES_UV = (1.0, 2.0, 3.0, 5.0, 7.0, 10.0, 15.0, 20.0, 30.0, 50.0, 70.0, 100.0, 150.0, 200.0,
                    300.0, 500.0, 700.0, 1000.0, 2000.0, 5000.0)
#: A fitted lane shows its 1st-99th percentile range on this fraction of a division.
FIT_FRACTION = 0.5


def fit_sensitivity(ranges_uv: np.ndarray) -> float:
    """The smallest listed µV/div at or above the median 1st-99th percentile range of the lanes."""
    r = np.asarray(ranges_uv, float)
    r = r[np.isfinite(r) & (r > 0)]
    target = float(np.median(r)) if r.size else 100.0
    return next((s for s in SENSITIVITIES_UV if s >= target), SENSITIVITIES_UV[-1])


def step_sensitivity(value: float, *, finer: bool) -> float:
    """The next listed µV/div: smaller (*finer*, more gain) or larger."""
    i = int(np.argmin([abs(s - value) for s in SENSITIVITIES_UV]))
    i = max(0, i - 1) if finer else min(len(SENSITIVITIES_UV) - 1, i + 1)
    return SENSITIVITIES_UV[i]


@dataclass
class LaneScale:
    """The scale of every channel of one recording.

    ``common`` is the µV/div of the µV channels of an EEG (None: every lane is fitted);
    ``override`` maps a channel to its own µV/div; ``ranges`` are the channels' 1st-99th
    percentile ranges (in their units) used to fit lanes; ``gain`` multiplies fitted lanes.
    """

    units: tuple[str, ...]
    ranges: np.ndarray
    common: float | None = None
    override: dict[int, float] = field(default_factory=dict)
    gain: np.ndarray | None = None
    global_gain: float = 1.0

    def __post_init__(self):
        if self.gain is None:
            self.gain = np.ones(len(self.units), np.float32)

    @classmethod
    def for_signal(cls, signal, ranges: np.ndarray) -> "LaneScale":
        units = tuple(signal.units)
        uv = [r for r, u in zip(ranges, units) if u == "uV"]
        common = fit_sensitivity(np.asarray(uv)) if signal.modality == "eeg" and uv else None
        return cls(units=units, ranges=np.asarray(ranges, np.float32), common=common)

    def on_common(self, ch: int) -> bool:
        """Whether channel *ch* is drawn at the common µV/div (not fitted, not overridden)."""
        return self.common is not None and self.units[ch] == "uV" and ch not in self.override

    def sensitivity(self, ch: int) -> float | None:
        """The µV/div channel *ch* is drawn at, or None for a fitted lane."""
        if self.common is None or self.units[ch] != "uV":
            return None
        return self.override.get(ch, self.common)

    def factors(self) -> np.ndarray:
        """Plot units per signal unit of every channel."""
        out = FIT_FRACTION * self.global_gain * self.gain / self.ranges
        for ch in range(len(self.units)):
            s = self.sensitivity(ch)
            if s is not None:
                out[ch] = 1.0 / s
        return out.astype(np.float32)

    def change(self, factor: float, rows: list[int]) -> None:
        """Raise (*factor* > 1) or lower the gain of *rows*, or of every lane when *rows* is empty.

        A µV lane steps through :data:`SENSITIVITIES_UV` (a row gets its own override); a fitted
        lane is multiplied by *factor*.
        """
        finer = factor > 1
        if not rows:
            if self.common is not None:
                self.common = step_sensitivity(self.common, finer=finer)
            self.global_gain *= factor
            return
        for ch in rows:
            s = self.sensitivity(ch)
            if s is None:
                self.gain[ch] *= factor
            else:
                new = step_sensitivity(s, finer=finer)
                if new == self.common:
                    self.override.pop(ch, None)
                else:
                    self.override[ch] = new
