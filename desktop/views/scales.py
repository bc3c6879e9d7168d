"""Round lengths for the viewers' scale bars (µm bars on slides, amplitude bars on signal lanes)."""
from __future__ import annotations

import math

__all__ = ["nice_length"]


def nice_length(target: float) -> float:
    """The 1/2/5 x 10^k value closest below *target* (for scale bars)."""
    if not target > 0 or not math.isfinite(target):
        return 0.0
    exp = math.floor(math.log10(target))
    for m in (5, 2, 1):
        if m * 10 ** exp <= target:
            return m * 10 ** exp
    return 10 ** exp
