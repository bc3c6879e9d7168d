"""Reference nucleus centres of the public data sets (CRCHistoPhenotypes, MoNuSeg, MICCAI 2015)
and the CRCHisto fit/tune/validation split, and the training sets loaded at the model's scale; used by the
training script and the benchmarks."""
from __future__ import annotations

import csv
import gzip
import logging
import os
from pathlib import Path

import numpy as np

__all__ = ["crchisto_truth", "monuseg_truth", "miccai_truth", "crchisto_split", "monuseg_train_split",
           "miccai_split", "MONUSEG_TRAIN_HELD_OUT", "MONUSEG_TRAIN_TUNE", "MICCAI_HELD_OUT", "MODEL_MPP",
           "load_rgb", "load_sets"]


logger = logging.getLogger("engine")

MODEL_MPP = 0.5  # the detector's scale: CRCHistoPhenotypes, 20x

# Fixed held-out images, never trained or tuned on (one per organ where the organ has >= 2 images;
# TCGA tissue-source codes: 21/50 lung, A7/AR/E2 breast, B0 kidney, CH/G9 prostate, NH colon).
MONUSEG_TRAIN_HELD_OUT = ("TCGA-50-5931-01Z-00-DX1", "TCGA-E2-A1B5-01Z-00-DX1", "TCGA-B0-5711-01Z-00-DX1")
# One further image (prostate) joins the CRCHisto tune images for the peak threshold; not trained on.
MONUSEG_TRAIN_TUNE = ("TCGA-G9-6362-01Z-00-DX1",)
# MICCAI 2015: one 20x and one 40x image held out.
MICCAI_HELD_OUT = ("image06.png", "image14.png")


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


def monuseg_train_split(folder: str | os.PathLike) -> tuple[list[str], list[str], list[str]]:
    """``(fit, tune, held_out)`` image stems of the 13 MoNuSeg *training* images in *folder*.

    held_out = :data:`MONUSEG_TRAIN_HELD_OUT` (lung, breast, kidney), tune = :data:`MONUSEG_TRAIN_TUNE`
    (prostate), fit = the other 9 (both lung/breast/kidney/prostate organs and the colon image).
    """
    stems = sorted(p.name[:-len(".png")] for p in Path(folder).glob("*.png"))
    held = [s for s in stems if s in MONUSEG_TRAIN_HELD_OUT]
    tune = [s for s in stems if s in MONUSEG_TRAIN_TUNE]
    fit = [s for s in stems if s not in held and s not in tune]
    return fit, tune, held


def miccai_split(folder: str | os.PathLike) -> tuple[list[dict], list[dict]]:
    """``(fit, held_out)`` rows of the MICCAI 2015 ``pairs.csv``; held_out = :data:`MICCAI_HELD_OUT`."""
    with open(Path(folder) / "pairs.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [r for r in rows if r["image"] not in MICCAI_HELD_OUT], [r for r in rows if r["image"] in MICCAI_HELD_OUT]


def load_rgb(path) -> np.ndarray:
    from PIL import Image as PILImage

    return np.asarray(PILImage.open(path).convert("RGB"))


def load_crchisto(root: Path, names):
    """``(name, rgb, xy, scale)`` items; *scale* = input mpp / model mpp (1 at 20x)."""
    return [(n, load_rgb(root / n / f"{n}.png"), crchisto_truth(root / n / f"{n}_detection.mat"), 1.0)
            for n in names]


def load_monuseg(folder: Path, stems):
    out = []
    for n in stems:
        rgb = load_rgb(folder / f"{n}.png")
        out.append((n, rgb, monuseg_truth(folder / f"{n}.xml.gz", rgb.shape[:2]), 0.25 / MODEL_MPP))
    return out


def load_miccai(folder: Path, rows):
    return [(r["image"], load_rgb(folder / r["image"]), miccai_truth(folder / r["mask_file"]),
             0.25 / MODEL_MPP if r["magnification"].startswith("40") else 1.0) for r in rows]


def load_sets(data_root: Path, sets):
    """``{set: (fit, tune, held_out)}`` item lists of the requested training sets."""
    histo = data_root / "histo"
    out = {}
    if "crchisto" in sets:
        out["crchisto"] = tuple(load_crchisto(histo / "crchisto", n) for n in crchisto_split(histo / "crchisto"))
    if "monuseg_train" in sets:
        out["monuseg_train"] = tuple(load_monuseg(histo / "monuseg_train", n)
                                     for n in monuseg_train_split(histo / "monuseg_train"))
    if "miccai" in sets:
        fit, held = miccai_split(histo / "miccai2015_seg")
        out["miccai"] = (load_miccai(histo / "miccai2015_seg", fit), [], load_miccai(histo / "miccai2015_seg", held))
    return out
