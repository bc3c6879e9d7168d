"""Point-detection evaluation (precision, recall, F1 of matched centres).

Matching follows Sirinukunwattana et al. (IEEE TMI 2016): a detection is a true
positive when it is paired with a ground-truth centre no farther than ``radius``
pixels; pairs are chosen by an optimal one-to-one assignment (Hungarian algorithm,
:func:`scipy.optimize.linear_sum_assignment`) that maximises the number of matches
and then minimises the summed distance. Coordinates are ``(x = column, y = row)``,
0-based, in pixels."""
from __future__ import annotations

import csv
import logging
import os
from pathlib import Path

import numpy as np

from engine.errors import ReadError

__all__ = ["match_points", "precision_recall_f1", "read_points_csv", "image_names_csv"]


logger = logging.getLogger("engine")


def match_points(pred: np.ndarray, truth: np.ndarray, radius: float) -> np.ndarray:
    """Optimal one-to-one pairs ``(K, 2)`` of indices ``(pred_i, truth_j)`` within *radius*.

    The radius graph is split into connected components and each component is solved
    with the Hungarian algorithm, so large point sets stay cheap.

    >>> match_points(np.array([[0., 0], [10, 0]]), np.array([[1., 0], [30, 0]]), 3).tolist()
    [[0, 0]]
    """
    from scipy.optimize import linear_sum_assignment
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    pred = np.asarray(pred, dtype=np.float64).reshape(-1, 2)
    truth = np.asarray(truth, dtype=np.float64).reshape(-1, 2)
    if len(pred) == 0 or len(truth) == 0:
        return np.zeros((0, 2), dtype=np.int64)
    dist = cKDTree(pred).sparse_distance_matrix(cKDTree(truth), float(radius), output_type="coo_matrix")
    if dist.nnz == 0:
        return np.zeros((0, 2), dtype=np.int64)
    n_p, n_t = len(pred), len(truth)
    rows, cols = dist.row, dist.col
    graph = coo_matrix((np.ones(len(rows)), (rows, cols + n_p)), shape=(n_p + n_t, n_p + n_t))
    _, label = connected_components(graph, directed=False)
    pairs = []
    comp_of_edge = label[rows]
    order = np.argsort(comp_of_edge, kind="stable")
    bounds = np.flatnonzero(np.diff(comp_of_edge[order])) + 1
    for idx in np.split(order, bounds):
        r, c, d = rows[idx], cols[idx], dist.data[idx]
        ur, ri = np.unique(r, return_inverse=True)
        uc, ci = np.unique(c, return_inverse=True)
        # Non-edges cost more than any set of real edges, so the matching count is maximal.
        big = 1e6
        cost = np.full((len(ur), len(uc)), big)
        cost[ri, ci] = d
        a, b = linear_sum_assignment(cost)
        keep = cost[a, b] < big
        pairs.append(np.stack([ur[a[keep]], uc[b[keep]]], 1))
    return np.concatenate(pairs).astype(np.int64)


def precision_recall_f1(pred: np.ndarray, truth: np.ndarray, radius: float) -> dict[str, float]:
    """Precision, recall, F1, TP, FP, FN of *pred* against *truth* within *radius* pixels.

    >>> r = precision_recall_f1(np.array([[0., 0], [5, 5], [9, 9]]), np.array([[0., 1], [5, 5]]), 2)
    >>> (r["tp"], r["fp"], r["fn"], round(r["f1"], 4))
    (2, 1, 0, 0.8)
    """
    pred = np.asarray(pred, dtype=np.float64).reshape(-1, 2)
    truth = np.asarray(truth, dtype=np.float64).reshape(-1, 2)
    tp = len(match_points(pred, truth, radius))
    fp, fn = len(pred) - tp, len(truth) - tp
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": p, "recall": r, "f1": f1, "tp": tp, "fp": fp, "fn": fn,
            "n_pred": len(pred), "n_truth": len(truth), "radius": float(radius)}


def read_points_csv(path: str | os.PathLike, *, image: str | None = None) -> np.ndarray:
    """``(N, 2)`` float x, y from a CSV with ``x`` and ``y`` columns (extra columns are ignored).

    When the CSV has an ``image`` column (one table for several images, as the shared
    data sets' ``centroids.csv``), only the rows of *image* are returned; *image* is then
    required if the column holds more than one name (:class:`ReadError` lists them), so
    points of other images are never mixed in silently. The image name matches with or
    without its extension. ``x_*`` / ``y_*`` columns (e.g. ``x_mean_vertex``) are used
    when there is no plain ``x`` / ``y``.
    """
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            names = list(reader.fieldnames or [])
            fields = [f.strip().lower() for f in names]
            kx, ky = _column(names, fields, "x"), _column(names, fields, "y")
            if kx is None or ky is None:
                raise ReadError(str(path), f"needs 'x' and 'y' columns, found {fields or 'no header'}")
            kimg = names[fields.index("image")] if "image" in fields else None
            rows = list(reader)
            if kimg is not None:
                present = sorted({_stem(r[kimg]) for r in rows})
                if image is None and len(present) > 1:
                    raise ReadError(str(path), f"holds points of {len(present)} images; choose one with "
                                               f"--image NAME (one of {', '.join(present[:8])}"
                                               f"{' ...' if len(present) > 8 else ''})")
                if image is not None:
                    want = _stem(image)
                    rows = [r for r in rows if _stem(r[kimg]) == want]
                    if not rows:
                        raise ReadError(str(path), f"has no rows for image {image!r} (images: "
                                                   f"{', '.join(present[:8])}{' ...' if len(present) > 8 else ''})")
            pts = [(float(row[kx]), float(row[ky])) for row in rows]
    except OSError as exc:
        raise ReadError(str(path), exc.strerror or str(exc)) from None
    except (ValueError, TypeError) as exc:
        raise ReadError(str(path), f"a non-numeric x/y value ({exc})") from None
    return np.asarray(pts, dtype=np.float64).reshape(-1, 2)


def image_names_csv(path: str | os.PathLike) -> list[str]:
    """The distinct ``image`` names of a points CSV (``[]`` without an ``image`` column)."""
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        fields = [f.strip().lower() for f in (reader.fieldnames or [])]
        if "image" not in fields:
            return []
        key = reader.fieldnames[fields.index("image")]
        return sorted({_stem(r[key]) for r in reader})


def _column(names, fields, axis: str):
    if axis in fields:
        return names[fields.index(axis)]
    for name, f in zip(names, fields):
        if f.startswith(axis + "_"):
            return name
    return None


def _stem(name: str) -> str:
    """An image name without folders and image extensions (``a/b.png`` -> ``b``)."""
    base = str(name).strip().replace("\\", "/").rsplit("/", 1)[-1]
    for ext in (".nuclei.csv", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".svs", ".ndpi"):
        if base.lower().endswith(ext):
            return base[: -len(ext)]
    return base
