"""Reference nucleus centres of the public data sets (CRCHistoPhenotypes, MoNuSeg, MICCAI 2015)
and the CRCHisto fit/tune/validation split; used by the training script and the benchmarks."""
from __future__ import annotations

import csv
import gzip
import logging
import os
from pathlib import Path

import numpy as np

__all__ = ["crchisto_truth", "monuseg_truth", "miccai_truth", "crchisto_split"]


logger = logging.getLogger("engine")


def crchisto_truth(mat_path: str | os.PathLike) -> np.ndarray:
    """0-based ``(x, y)`` centres from a CRCHistoPhenotypes ``imgN_detection.mat`` (MATLAB 1-based)."""
    import scipy.io as sio

    det = np.asarray(sio.loadmat(str(mat_path))["detection"], dtype=np.float64).reshape(-1, 2)
    return det - 1.0


def monuseg_truth(xml_gz_path: str | os.PathLike, shape: tuple[int, int]) -> np.ndarray:
    """Mask centroids ``(x, y)`` of the polygons in a MoNuSeg Aperio XML (``.xml`` or ``.xml.gz``)."""
    import xml.etree.ElementTree as ET

    from skimage.draw import polygon

    path = str(xml_gz_path)
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as fh:
        root = ET.fromstring(fh.read())
    out = []
    for region in root.iter("Region"):
        v = np.array([(float(p.get("X")), float(p.get("Y"))) for p in region.iter("Vertex")])
        if len(v) < 3:
            continue
        rr, cc = polygon(v[:, 1], v[:, 0], shape=shape)
        if len(rr):
            out.append((cc.mean(), rr.mean()))
        else:  # degenerate polygon: fall back to the vertex mean
            out.append((v[:, 0].mean(), v[:, 1].mean()))
    return np.asarray(out, dtype=np.float64).reshape(-1, 2)


def miccai_truth(mask_gz_path: str | os.PathLike) -> np.ndarray:
    """Instance centroids ``(x, y)`` from a MICCAI 2015 ASCII label mask (``w h`` then labels)."""
    from scipy import ndimage

    with gzip.open(str(mask_gz_path), "rt") as fh:
        t = fh.read().split()
    w, h = int(t[0]), int(t[1])
    labels = np.asarray(t[2:], dtype=np.int32).reshape(h, w)
    ids = np.unique(labels)
    ids = ids[ids > 0]
    com = ndimage.center_of_mass(np.ones_like(labels), labels, ids)
    return np.asarray([(c, r) for r, c in com], dtype=np.float64).reshape(-1, 2)


def crchisto_split(folder: str | os.PathLike) -> tuple[list[str], list[str], list[str]]:
    """``(fit, tune, validation)`` image names of a CRCHistoPhenotypes folder with ``split.csv``.

    validation = the SFCN-OPI "validation" images (report set, never trained or tuned on);
    tune = every 7th "train" image by number (threshold / baseline tuning); fit = the rest.
    """
    folder = Path(folder)
    with open(folder / "split.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    key = lambda s: int("".join(ch for ch in s if ch.isdigit()) or 0)  # noqa: E731
    train = sorted((r["image"] for r in rows if r["sfcn_opi_split"] == "train"), key=key)
    val = sorted((r["image"] for r in rows if r["sfcn_opi_split"] == "validation"), key=key)
    tune = train[::7]
    fit = [n for n in train if n not in tune]
    return fit, tune, val
