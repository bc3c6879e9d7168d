"""The optimised inference paths (BatchNorm folded, channels_last) give the same results
as the plain network on real shared images: nuclei detections on a CRCHisto image and the
ct-dae anomaly map / reconstruction on a few LIDC-IDRI-0001 slices."""
from __future__ import annotations

import numpy as np
import pytest


def test_nuclei_detections_unchanged_on_crchisto(data_dir):
    from PIL import Image as PILImage

    from engine.inference.optimize import count_batchnorm, for_inference
    from engine.tasks.nuclei import load_detector
    from engine.tasks.nuclei.core import detect_array

    loaded = load_detector("histo-nuclei")
    det = loaded.meta["detector"]
    rgb = np.asarray(PILImage.open(data_dir / "histo/crchisto/img4/img4.png").convert("RGB"))
    fast = for_inference(loaded.module)
    assert count_batchnorm(fast) < count_batchnorm(loaded.module) or count_batchnorm(loaded.module) == 0
    kw = {"threshold": float(det["threshold"]), "min_distance": int(det["min_distance"]), "device": "cpu"}
    xy_ref, sc_ref = detect_array(loaded.module, rgb, **kw)
    xy, sc = detect_array(fast, rgb, **kw)
    assert len(xy_ref) > 50  # a real image with many nuclei
    np.testing.assert_array_equal(xy, xy_ref)  # the same detections at the same pixels
    np.testing.assert_allclose(sc, sc_ref, atol=1e-4)


def test_ct_anomaly_map_unchanged_on_lidc_slices(data_dir):
    import dataclasses

    from engine import weights
    from engine.inference.ct import ct_slice
    from engine.inference.optimize import for_inference
    from engine.io import read
    from engine.jobs import run_job

    if "ct-dae" not in {r["name"] for r in weights.list_bundled()}:
        pytest.skip("bundled ct-dae not installed")
    img = read(str(data_dir / "ct/lidc_idri/LIDC-IDRI-0001"))
    loaded = weights.load("ct-dae")
    fast = dataclasses.replace(loaded, module=for_inference(loaded.module))
    n = img.array.shape[0]
    for k in (n // 4, n // 2, (3 * n) // 4):
        rec_ref, amap_ref, mask_ref = run_job(ct_slice(loaded, img.array[k], img.spacing[1:]))
        rec, amap, mask = run_job(ct_slice(fast, img.array[k], img.spacing[1:]))
        np.testing.assert_array_equal(mask, mask_ref)
        # stated tolerance: 1e-3 on the calibrated scale (maps reach > 1), 0.5 HU on the reconstruction
        assert float(np.abs(amap - amap_ref).max()) <= 1e-3
        assert float(np.abs(rec - rec_ref).max()) <= 0.5


def _scipy_disk_closing(mask, r):
    from scipy import ndimage as ndi

    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    return ndi.binary_closing(mask, structure=(yy * yy + xx * xx) <= r * r)


@pytest.mark.parametrize("r", [1, 3, 14])
def test_disk_closing_equals_scipy_binary_closing(r):
    from engine.inference.anomaly import disk_closing

    rng = np.random.default_rng(r)
    for density in (0.02, 0.3, 0.7):
        m = rng.random((90, 70)) < density
        np.testing.assert_array_equal(disk_closing(m, r), _scipy_disk_closing(m, r))
    empty = np.zeros((20, 20), bool)
    np.testing.assert_array_equal(disk_closing(empty, r), _scipy_disk_closing(empty, r))


def test_lung_mask_unchanged_on_lidc_slices(data_dir):
    from engine.inference import anomaly
    from engine.io import read

    img = read(str(data_dir / "ct/lidc_idri/LIDC-IDRI-0001"))
    n = img.array.shape[0]
    for k in (5, n // 3, n // 2, (2 * n) // 3, n - 5):
        new = anomaly.ct_lung_mask(img.array[k], spacing_mm=0.7, closing_mm=20.0)
        try:
            saved = anomaly.disk_closing
            anomaly.disk_closing = _scipy_disk_closing
            ref = anomaly.ct_lung_mask(img.array[k], spacing_mm=0.7, closing_mm=20.0)
        finally:
            anomaly.disk_closing = saved
        assert ref.any()
        np.testing.assert_array_equal(new, ref)


def test_polygon_simplification_equals_skimage_on_real_outlines(data_dir):
    """The Python-float Douglas-Peucker keeps exactly skimage's vertices on real nucleus contours."""
    from PIL import Image as PILImage
    from scipy import ndimage as ndi
    from skimage.measure import approximate_polygon as skimage_dp
    from skimage.measure import find_contours

    from engine.tasks.nuclei.outline import approximate_polygon
    from engine.tasks.nuclei.stain import hematoxylin

    n = 0
    for name in ("img1", "img4", "img20"):
        rgb = PILImage.open(data_dir / f"histo/crchisto/{name}/{name}.png").convert("RGB")
        lab, _ = ndi.label(ndi.gaussian_filter(hematoxylin(np.asarray(rgb)), 1) > 0.08)
        for i, sl in enumerate(ndi.find_objects(lab)):
            for c in find_contours(np.pad(lab[sl] == i + 1, 1).astype(np.float32), 0.5):
                for tol in (0.5, 1.0, 2.0):
                    np.testing.assert_array_equal(approximate_polygon(c, tol), skimage_dp(c, tol))
                    n += 1
    assert n > 600  # many real contours, not a handful
    line = np.array([[0.0, 0.0], [0.2, 1.0], [0.0, 2.0], [3.0, 2.0]])
    np.testing.assert_array_equal(approximate_polygon(line, 0.5), line[[0, 2, 3]])
    np.testing.assert_array_equal(approximate_polygon(line, 0), line)


def test_outlines_of_selected_nuclei_equal_the_full_run(data_dir):
    """``select`` outlines a subset; every centre still bounds its neighbours, so the subset's
    areas and polygons equal those of the run without it."""
    from PIL import Image as PILImage

    from engine.tasks.nuclei import load_detector
    from engine.tasks.nuclei.core import detect_array
    from engine.tasks.nuclei.outline import outline_nuclei

    rgb = np.asarray(PILImage.open(data_dir / "histo/crchisto/img4/img4.png").convert("RGB"))
    xy, _ = detect_array(load_detector("histo-nuclei").module, rgb, threshold=0.35, min_distance=3)
    select = xy[:, 0] < 250  # the left half, as a tile core would own
    area, polys = outline_nuclei(rgb, xy, mpp=0.5)
    area_s, polys_s = outline_nuclei(rgb, xy, mpp=0.5, select=select)
    assert 20 < select.sum() < len(xy) and len(polys_s) == len(area_s) == select.sum()
    np.testing.assert_array_equal(area_s, area[select])
    for p, q in zip(polys_s, [p for p, s in zip(polys, select) if s]):
        np.testing.assert_array_equal(p, q)
