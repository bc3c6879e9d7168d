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
