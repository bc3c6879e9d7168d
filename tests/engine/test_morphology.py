"""engine.inference.morphology: OpenCV's erosion, opening, labelling and bilinear resize give scipy's
results on real CT planes (every plane of LIDC-IDRI-0001) and on random masks with pixels on the border."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from engine.inference import morphology as mo


@pytest.fixture(scope="module")
def lidc(data_dir):
    from engine.io import read

    return read(str(data_dir / "ct/lidc_idri/LIDC-IDRI-0001")).array


def test_ct_masks_equal_scipy_on_every_lidc_plane(lidc):
    assert lidc.shape[0] >= 50
    for k, hu in enumerate(lidc):
        fg, air = hu > -500, hu < -400
        assert np.array_equal(mo.binary_opening(fg, 2), ndi.binary_opening(fg, iterations=2)), k
        assert np.array_equal(mo.binary_erosion(fg, 3), ndi.binary_erosion(fg, iterations=3)), k
        for m in (fg, air, ~fg):
            a, na = mo.label(m)
            b, nb = ndi.label(m)
            assert na == nb and np.array_equal(a, b), k
    assert ndi.label(lidc[40] < -400)[1] > 1  # several air components: the numbering was compared


def test_random_masks_touching_the_border_equal_scipy():
    rng = np.random.default_rng(0)
    for _ in range(300):
        m = rng.random((int(rng.integers(1, 40)), int(rng.integers(1, 40)))) > rng.random()
        for it in (1, 2, 3):
            assert np.array_equal(mo.binary_erosion(m, it), ndi.binary_erosion(m, iterations=it))
            assert np.array_equal(mo.binary_opening(m, it), ndi.binary_opening(m, iterations=it))
        a, na = mo.label(m)
        b, nb = ndi.label(m)
        assert na == nb and np.array_equal(a, b)
    vol = rng.random((4, 9, 9)) > 0.5  # not 2-D: scipy itself
    assert np.array_equal(mo.binary_erosion(vol, 1), ndi.binary_erosion(vol))


def test_resize_linear_equals_scipy_zoom_on_ct(lidc):
    def zoom(x, shape):
        f = (shape[0] / x.shape[0], shape[1] / x.shape[1])
        return ndi.zoom(x, f, order=1, mode="nearest", grid_mode=True)[: shape[0], : shape[1]]

    for k in range(0, lidc.shape[0], 7):
        hu = lidc[k].astype(np.float32)
        for shape in ((257, 257), (300, 190), (512, 512), (700, 1024)):
            got = mo.resize_linear(hu, shape)
            assert got.shape == shape and got.dtype == np.float32
            np.testing.assert_allclose(got, zoom(hu, shape), atol=2e-3, rtol=0)  # HU, values up to ~3000
        small = mo.resize_linear(hu, (257, 257))
        np.testing.assert_allclose(mo.resize_linear(small, (512, 512)), zoom(small, (512, 512)), atol=2e-3, rtol=0)
    assert not np.allclose(mo.resize_linear(lidc[0].astype(np.float32), (257, 257))[:, :128],
                           mo.resize_linear(lidc[0].astype(np.float32), (257, 257))[:, 129:])  # not a constant


def test_squared_distance_equals_scipy():
    rng = np.random.default_rng(3)
    for _ in range(300):
        m = rng.random((int(rng.integers(2, 90)), int(rng.integers(2, 90)))) > rng.uniform(0.3, 0.999)
        np.testing.assert_array_equal(mo.squared_distance(m), np.rint(ndi.distance_transform_edt(m) ** 2))
    far = np.ones((600, 700), bool)
    far[0, 0] = False  # distances up to the diagonal (d^2 = 848,201)
    np.testing.assert_array_equal(mo.squared_distance(far), np.rint(ndi.distance_transform_edt(far) ** 2))
    assert mo.squared_distance(far).max() == 599 ** 2 + 699 ** 2
    none = np.ones((5, 5), bool)  # no zero pixel at all: scipy's own answer
    np.testing.assert_array_equal(mo.squared_distance(none), np.rint(ndi.distance_transform_edt(none) ** 2))


def test_ct_lung_masks_equal_the_scipy_construction(lidc):
    """The whole lung mask (body, erosion, labels, 20 mm disk closing, per-lung hole filling) equals the
    same construction with scipy's functions on every plane."""
    from engine.inference.anomaly import ct_lung_mask

    def scipy_lung(hu, spacing_mm=0.7, closing_mm=20.0):
        fg = ndi.binary_opening(hu > -500, iterations=2)
        lab, n = ndi.label(fg)
        body = ndi.binary_fill_holes(lab == 1 + int(np.argmax(np.bincount(lab.ravel())[1:])))
        air = (hu < -400) & ndi.binary_erosion(body, iterations=3)
        lab, n = ndi.label(air)
        if n == 0:
            return np.zeros(hu.shape, bool)
        sizes = np.bincount(lab.ravel(), minlength=n + 1)
        big = sizes >= max(500.0, 0.02 * float(sizes[1:].sum()))
        big[0] = False
        r = max(1, int(round(closing_mm / spacing_mm / 2)))
        yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
        disk = yy * yy + xx * xx <= r * r
        p = 2 * r + 2
        closed = ndi.binary_closing(np.pad(big[lab], p), structure=disk)[p:-p, p:-p]
        lab2, n2 = ndi.label(closed)
        filled = np.zeros_like(closed)
        for i in range(1, n2 + 1):
            filled |= ndi.binary_fill_holes(lab2 == i)
        return filled & body

    for k in range(0, lidc.shape[0], 11):
        hu = lidc[k].astype(np.float32)
        want = scipy_lung(hu)
        assert np.array_equal(ct_lung_mask(hu, spacing_mm=0.7, closing_mm=20.0), want), k
    assert want.sum() > 1000  # lungs were found


def test_resample_slice_keeps_scipys_grid(lidc):
    """CT planes resampled to the model's spacing: scipy's output shape and values (now by OpenCV)."""
    from engine.inference.preprocess import resample_slice

    hu = lidc[30].astype(np.float32)
    for spacing in ((0.703125, 0.703125), (0.6, 0.9), (2.5, 2.5)):
        f = (spacing[0] / 1.4, spacing[1] / 1.4)
        want = ndi.zoom(hu, f, order=1, mode="nearest", grid_mode=True)
        got = resample_slice(hu, spacing, 1.4)
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, atol=2e-3, rtol=0)
    assert resample_slice(hu, (0.7, 0.7), 1.4, order=3).shape == (256, 256)  # other orders: scipy itself
