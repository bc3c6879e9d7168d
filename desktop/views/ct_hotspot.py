"""Where a CT anomaly map is hottest: the plane a radiologist should look at first."""
from __future__ import annotations

import numpy as np

__all__ = ["hottest_slice"]


def hottest_slice(anomaly: np.ndarray | None, mask: np.ndarray | None = None) -> int | None:
    """Index of the plane holding the map's maximum (inside *mask* when given).

    Returns None when there is no map or no finite value inside the mask.

    >>> a = np.zeros((3, 2, 2)); a[2, 1, 0] = 1.5
    >>> hottest_slice(a)
    2
    """
    if anomaly is None:
        return None
    a = np.asarray(anomaly, np.float32)
    if a.ndim == 2:
        a = a[None]
    if a.size == 0:
        return None
    valid = np.isfinite(a)
    if mask is not None:
        m = np.asarray(mask, bool)
        if m.shape == a.shape[1:]:
            m = np.broadcast_to(m, a.shape)
        if m.shape == a.shape:
            valid &= m
    if not valid.any():
        return None
    per_plane = np.where(valid, a, -np.inf).reshape(a.shape[0], -1).max(axis=1)
    return int(np.argmax(per_plane))
