"""Multi-planar reformat of a CT volume: the three view planes, their geometry in mm and
patient coordinates (no Qt).

The volume is ``(plane, row, col)`` as the DICOM reader returns it. A view plane is named by
the volume axis it holds fixed: axis 0 shows ``vol[k]`` (the acquired slices), axis 1 shows
``vol[:, i, :]`` and axis 2 ``vol[:, :, j]``. Each view is drawn in mm, so its aspect
follows from the spacing (2.5 mm slices are 2.5 mm tall in a coronal view).
"""
from __future__ import annotations

import numpy as np

__all__ = ["orientation_labels", "DEFAULT_NAMES", "plane_names", "take", "take_scaled", "extent_mm", "voxel_at",
           "plane_cosines", "slice_position"]

#: Plane names by fixed axis for an axial acquisition (used when the geometry is unknown).
DEFAULT_NAMES = ("Axial", "Coronal", "Sagittal")
_BY_PATIENT_AXIS = {0: "Sagittal", 1: "Coronal", 2: "Axial"}  # LPS x, y, z normal


def _axis_letters(v) -> str:
    # DICOM patient axes (LPS): +x = Left, +y = Posterior, +z = Head.
    pos, neg = ("L", "P", "H"), ("R", "A", "F")
    v = np.asarray(v, float)
    out = ""
    for i in np.argsort(-np.abs(v)):
        if abs(v[i]) < 0.25 or len(out) >= 2:
            break
        out += pos[i] if v[i] > 0 else neg[i]
    return out


def orientation_labels(direction) -> dict[str, str]:
    """Edge labels of an image from its ImageOrientationPatient (row then column cosines).

    >>> orientation_labels((1, 0, 0, 0, 1, 0))
    {'left': 'R', 'right': 'L', 'top': 'A', 'bottom': 'P'}
    """
    if direction is None or len(direction) < 6:
        return {}
    row, col = np.asarray(direction[:3], float), np.asarray(direction[3:6], float)
    return {"left": _axis_letters(-row), "right": _axis_letters(row),
            "top": _axis_letters(-col), "bottom": _axis_letters(col)}


def _cosines(direction) -> tuple[np.ndarray, np.ndarray] | None:
    if direction is None or len(direction) < 6:
        return None
    return np.asarray(direction[:3], float), np.asarray(direction[3:6], float)


def _normals(direction, slice_dir=None) -> list[np.ndarray] | None:
    """The unit normal of each view plane (axis 0, 1, 2), or None without a direction."""
    cos = _cosines(direction)
    if cos is None:
        return None
    row, col = cos
    n0 = np.asarray(slice_dir, float) if slice_dir is not None else np.cross(row, col)
    return [n0 / (np.linalg.norm(n0) or 1.0), col, row]


def plane_names(direction, slice_dir=None) -> tuple[str, str, str]:
    """The anatomical name of each view plane from the normal's main patient axis.

    >>> plane_names((1, 0, 0, 0, 1, 0))
    ('Axial', 'Coronal', 'Sagittal')
    >>> plane_names((0, 1, 0, 0, 0, -1))  # a sagittal acquisition
    ('Sagittal', 'Axial', 'Coronal')
    """
    normals = _normals(direction, slice_dir)
    if normals is None:
        return DEFAULT_NAMES
    names = tuple(_BY_PATIENT_AXIS[int(np.argmax(np.abs(n)))] for n in normals)
    return names if len(set(names)) == 3 else DEFAULT_NAMES


def take(vol: np.ndarray, axis: int, index: int) -> np.ndarray:
    """The 2-D view of *vol* (plane, row, col) with *axis* fixed at *index*."""
    return vol[(slice(None),) * axis + (int(index),)]


def take_scaled(arr: np.ndarray, shape, axis: int, index: int) -> np.ndarray:
    """The view of *arr* (a layer of any size over a volume of *shape*) at the volume's *index*."""
    n, m = shape[axis], arr.shape[axis]
    i = int(round(index * (m - 1) / max(1, n - 1)))
    return take(arr, axis, int(np.clip(i, 0, m - 1)))


def extent_mm(shape, spacing, axis: int) -> tuple[float, float]:
    """(width, height) in mm of the view of a volume of *shape* with *axis* fixed."""
    (h, sh), (w, sw) = [(shape[a], spacing[a]) for a in range(3) if a != axis]
    return w * sw, h * sh


def voxel_at(axis: int, index: int, x_mm: float, y_mm: float, spacing) -> tuple[int, int, int]:
    """The (plane, row, col) voxel under view point (*x_mm*, *y_mm*) of the view with *axis* at *index*."""
    v, u = [a for a in range(3) if a != axis]
    out = [0, 0, 0]
    out[axis] = int(index)
    out[v] = int(np.floor(y_mm / spacing[v]))
    out[u] = int(np.floor(x_mm / spacing[u]))
    return out[0], out[1], out[2]


def plane_cosines(direction, slice_dir, axis: int) -> tuple[float, ...] | None:
    """The six cosines (view row, then view column direction) of a view, for its edge labels."""
    cos = _cosines(direction)
    if cos is None:
        return None
    row, col = cos
    sdir = np.asarray(slice_dir, float) if slice_dir is not None else -np.cross(row, col)
    right, down = {0: (row, col), 1: (row, sdir), 2: (col, sdir)}[axis]
    return tuple(float(x) for x in right) + tuple(float(x) for x in down)


def slice_position(image, axis: int, index: int) -> str:
    """The view plane's position in patient coordinates, e.g. ``'z -127.5 mm'``.

    The ImagePositionPatient of the plane projected on the plane's normal, with the normal
    turned towards its main LPS axis (so an axial slice shows its z). Without a position
    the distance from the first plane is shown (``'+95.0 mm from first'``).
    """
    meta = getattr(image, "metadata", None) or {}
    spacing = tuple(image.spacing)
    step = float(spacing[axis]) if len(spacing) == 3 else 1.0
    normals = _normals(image.direction, meta.get("slice_direction"))
    positions = meta.get("plane_positions")
    origin = image.origin
    if normals is None or origin is None or len(origin) < 3:
        return f"{index * step:+.1f} mm from first"
    n = normals[axis]
    main = int(np.argmax(np.abs(n)))
    n = n if n[main] > 0 else -n
    if axis == 0 and positions is not None and index < len(positions):
        p = np.asarray(positions[index], float)
    else:
        p = np.asarray(origin, float) + index * step * normals[axis]
    return f"{'xyz'[main]} {round(float(p @ n), 1) + 0.0:.1f} mm"  # + 0.0: no "-0.0"
