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
    from engine.models.blocks import PairConv

    assert sum(isinstance(m, PairConv) for m in fast.module.modules()) == 4  # one per decoder level
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


# --- the previous (plain scipy) CT mask and error code, kept here as the reference -----------------

def _ref_body_mask(hu, threshold=-500.0):
    from scipy import ndimage as ndi

    fg = ndi.binary_opening(hu > threshold, iterations=2)
    lab, n = ndi.label(fg)
    if n == 0:
        return np.zeros(hu.shape, bool)
    sizes = ndi.sum(fg, lab, index=np.arange(1, n + 1))
    return ndi.binary_fill_holes(lab == (1 + int(np.argmax(sizes))))


def _ref_lung_mask(hu, *, threshold=-400.0, closing_mm=10.0, spacing_mm=0.7):
    from scipy import ndimage as ndi

    body = _ref_body_mask(hu)
    air = (hu < threshold) & ndi.binary_erosion(body, iterations=3)
    lab, n = ndi.label(air)
    if n == 0:
        return np.zeros(hu.shape, bool)
    sizes = ndi.sum(air, lab, index=np.arange(1, n + 1))
    keep = np.isin(lab, 1 + np.flatnonzero(sizes >= max(500.0, 0.02 * air.sum())))
    r = max(1, int(round(closing_mm / spacing_mm / 2)))
    closed = _scipy_disk_closing(np.pad(keep, r), r)[r:-r, r:-r]
    filled = np.zeros_like(closed)
    lab2, n2 = ndi.label(closed)
    for i in range(1, n2 + 1):
        filled |= ndi.binary_fill_holes(lab2 == i)
    return filled & body


def _ref_postprocess(err, *, median_size, smooth_sigma, mask):
    from scipy import ndimage as ndi

    out = ndi.median_filter(err * mask, size=median_size, mode="reflect")
    out = ndi.gaussian_filter(out, smooth_sigma, mode="reflect")
    w = ndi.gaussian_filter(mask.astype(np.float32), smooth_sigma, mode="reflect")
    return (out / np.maximum(w, 1e-3) * mask).astype(np.float32)


def test_fill_holes_equals_scipy():
    from scipy import ndimage as ndi

    from engine.inference.anomaly import fill_holes

    rng = np.random.default_rng(7)
    for shape in ((60, 80), (15, 20, 25)):
        for density in (0.3, 0.55, 0.8):
            m = rng.random(shape) < density
            filled = fill_holes(m)
            assert (filled & ~m).any() or density < 0.5  # dense random masks do have holes
            np.testing.assert_array_equal(filled, ndi.binary_fill_holes(m))
    for m in (np.zeros((9, 9), bool), np.ones((9, 9), bool)):
        np.testing.assert_array_equal(fill_holes(m), ndi.binary_fill_holes(m))


def test_body_and_lung_masks_equal_previous_code_on_every_lidc_slice(data_dir):
    from engine.inference import anomaly
    from engine.io import read

    img = read(str(data_dir / "ct/lidc_idri/LIDC-IDRI-0001"))
    n_lung = 0
    for k in range(img.array.shape[0]):
        hu = img.array[k]
        np.testing.assert_array_equal(anomaly.ct_body_mask(hu), _ref_body_mask(hu))
        new = anomaly.ct_lung_mask(hu, spacing_mm=0.7, closing_mm=20.0)
        np.testing.assert_array_equal(new, _ref_lung_mask(hu, spacing_mm=0.7, closing_mm=20.0))
        n_lung += bool(new.any())
    assert n_lung > img.array.shape[0] // 2  # the series is a chest CT: most slices have lung


def test_masked_error_postprocessing_equals_whole_array_filters(data_dir):
    """The median computed only near the mask keeps every value inside it (real LIDC errors)."""
    from engine import weights
    from engine.inference.anomaly import ct_lung_mask, postprocess_image_error
    from engine.inference.ct import _resize
    from engine.inference.preprocess import ct_to_model, resample_slice
    from engine.inference.tiles import tiled_reconstruct
    from engine.io import read
    from engine.jobs import run_job

    if "ct-dae" not in {r["name"] for r in weights.list_bundled()}:
        pytest.skip("bundled ct-dae not installed")
    loaded = weights.load("ct-dae")
    prep, inp = loaded.meta["preprocessing"], loaded.meta["input"]
    img = read(str(data_dir / "ct/lidc_idri/LIDC-IDRI-0001"))
    n = img.array.shape[0]
    for k in (2, n // 2, n - 3):
        hu = img.array[k]
        x = resample_slice(ct_to_model(hu, prep), img.spacing[1:], prep["target_spacing_mm"])
        rec = run_job(tiled_reconstruct(loaded.module, lambda y0, x0, y1, x1: x[None, y0:y1, x0:x1],
                                        *x.shape, tile=int(inp["tile"]), overlap=int(inp["overlap"]),
                                        size_multiple=int(inp["size_multiple"])))
        err = np.abs(x - rec[0])
        lung = _resize(ct_lung_mask(hu, spacing_mm=0.7, closing_mm=20.0).astype(np.float32), x.shape) > 0.5
        for m in (lung, np.zeros_like(lung), np.pad(np.ones((5, 5), bool), [(0, x.shape[0] - 5), (x.shape[1] - 5, 0)])):
            got = postprocess_image_error(err, median_size=9, smooth_sigma=2.0, mask=m)
            np.testing.assert_allclose(got, _ref_postprocess(err, median_size=9, smooth_sigma=2.0, mask=m),
                                       rtol=0, atol=1e-6)
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


def _raster(poly: np.ndarray, lo: np.ndarray, shape, up: int = 4) -> np.ndarray:
    from skimage.draw import polygon2mask

    return polygon2mask(shape, ((poly - lo) * up)[:, ::-1])


def test_opencv_simplified_outlines_agree_with_the_skimage_reference(data_dir):
    """The cv2.approxPolyDP outlines keep the areas of the unsimplified run, pick only vertices of the
    traced contour, stay within the tolerance of it (the Douglas-Peucker bound) and agree with the
    skimage Douglas-Peucker outline (the previous path) on a real image: per-nucleus IoU mean >= 0.95."""
    from PIL import Image as PILImage
    from skimage.measure import approximate_polygon as skimage_dp

    from engine.tasks.nuclei import load_detector
    from engine.tasks.nuclei.core import detect_array
    from engine.tasks.nuclei.outline import outline_nuclei

    rgb = np.asarray(PILImage.open(data_dir / "histo/crchisto/img4/img4.png").convert("RGB"))
    xy, _ = detect_array(load_detector("histo-nuclei").module, rgb, threshold=0.35, min_distance=3)
    area, polys = outline_nuclei(rgb, xy, mpp=0.5)
    area_raw, raws = outline_nuclei(rgb, xy, mpp=0.5, simplify=0.0)  # the traced contours themselves
    assert len(xy) > 100 and len(polys) == len(raws) == len(xy)
    np.testing.assert_array_equal(area, area_raw)
    ious = []
    for p, raw in zip(polys, raws):
        assert len(p) >= 3 and np.isfinite(p).all()
        if len(raw) < 4:
            continue
        assert {tuple(v) for v in p.tolist()} <= {tuple(v) for v in raw.tolist()}
        a, b = p, np.roll(p, -1, axis=0)  # every traced vertex lies within 0.5 px of the closed polygon
        ab = b - a
        t = np.clip(((raw[:, None] - a) * ab).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-12), 0, 1)
        d = np.linalg.norm(raw[:, None] - (a + t[..., None] * ab), axis=-1).min(1)
        assert d.max() <= 0.5 + 1e-6
        ref = skimage_dp(np.vstack([raw, raw[:1]]), 0.5)[:-1]
        lo = np.floor(np.minimum(p.min(0), ref.min(0))) - 2
        shape = tuple(int(v) * 4 for v in (np.ceil(np.maximum(p.max(0), ref.max(0))) + 2 - lo)[::-1])
        m1, m2 = _raster(p, lo, shape), _raster(ref, lo, shape)
        ious.append((m1 & m2).sum() / max((m1 | m2).sum(), 1))
    assert len(ious) > 100 and np.mean(ious) >= 0.95 and np.percentile(ious, 1) >= 0.7


def test_split_batches_over_threads_give_the_same_denoised_record(data_dir):
    """Two threads forwarding halves of each batch (a 2-core machine) give bit-identical output."""
    import engine.io
    from engine.data import Signal
    from engine.inference.windows import infer_signal
    from engine.jobs import run_job
    from engine.tasks._models import resolve_model

    sig = engine.io.read(str(data_dir / "ecg/mitdb/119.hea"))
    part = Signal.from_array(sig.read(0, int(120 * sig.sfreq)), sfreq=sig.sfreq, modality="ecg",
                             channels=sig.channels, units=sig.units)
    lm = resolve_model("ecg-dae", "denoise", "ecg")
    one = run_job(infer_signal(lm, part, batch_size=8, workers=1))
    two = run_job(infer_signal(lm, part, batch_size=8, workers=2))
    assert one.shape == (2, part.n_samples) and np.isfinite(one).all()
    assert np.array_equal(one, two)


def test_split_batches_over_threads_give_the_same_ct_reconstruction(data_dir):
    """2-D tiles of a real LIDC slice through the shipped ct-dae: batches split over two threads
    give the same reconstruction, bit for bit."""
    from engine import weights
    from engine.inference.optimize import for_inference
    from engine.inference.preprocess import ct_to_model
    from engine.inference.tiles import tiled_reconstruct
    from engine.io import read
    from engine.jobs import run_job

    if "ct-dae" not in {r["name"] for r in weights.list_bundled()}:
        pytest.skip("bundled ct-dae not installed")
    img = read(str(data_dir / "ct/lidc_idri/LIDC-IDRI-0001"))
    loaded = weights.load("ct-dae")
    module = for_inference(loaded.module)
    inp = loaded.meta["input"]
    x = ct_to_model(img.array[img.array.shape[0] // 2], loaded.meta["preprocessing"])
    outs = [run_job(tiled_reconstruct(module, lambda y0, x0, y1, x1: x[None, y0:y1, x0:x1], x.shape[0], x.shape[1],
                                      tile=int(inp["tile"]), overlap=int(inp.get("overlap", 32)),
                                      size_multiple=int(inp.get("size_multiple", 1)), batch_size=4, workers=w))
            for w in (1, 2)]
    assert outs[0].shape == (1,) + x.shape and np.isfinite(outs[0]).all()
    assert np.array_equal(outs[0], outs[1])


def test_pipelined_ct_post_processing_gives_the_same_volumes(data_dir):
    """Post-processing plane j in a worker thread while the network runs on plane j + 1 changes nothing."""
    from engine import weights
    from engine.inference.ct import reconstruct_ct
    from engine.io import read
    from engine.jobs import run_job

    if "ct-dae" not in {r["name"] for r in weights.list_bundled()}:
        pytest.skip("bundled ct-dae not installed")
    img = read(str(data_dir / "ct/lidc_idri/LIDC-IDRI-0001"))
    loaded = weights.load("ct-dae")
    planes = [10, 40, 41, 70]
    serial = run_job(reconstruct_ct(loaded, img, planes=planes, pipeline=False))
    piped = run_job(reconstruct_ct(loaded, img, planes=planes, pipeline=True))
    for a, b in zip(serial, piped):
        assert a.shape[0] == len(planes) and np.array_equal(a, b)
    assert float(serial[1].max()) > 0  # the maps are not empty


def test_fast_running_median_equals_the_unfolded_torch_median(data_dir):
    """The ecg-dae baseline (73- then 217-sample running medians, edges replicated) by bottleneck's
    moving median gives exactly the values of the unfolded torch median on real ECG, so denoise is unchanged."""
    import torch
    from torch.nn import functional as F

    import engine.io
    from engine.models.signal_nets import running_median_cpu

    sig = engine.io.read(str(data_dir / "ecg/mitdb/207.hea"))
    x = torch.from_numpy(sig.read(0, 8 * 8192).reshape(2, 8, 8192).transpose(1, 0, 2).copy())  # (8, 2, 8192)
    ref = x.reshape(-1, 1, 8192)
    for m in (73, 217):
        ref = F.pad(ref, (m // 2, m // 2), mode="replicate").unfold(-1, m, 1).median(dim=-1).values
    got = running_median_cpu(x, (73, 217))
    assert got.shape == x.shape and got.dtype == x.dtype
    assert torch.equal(got, ref.reshape(x.shape))
    assert not torch.equal(got, x)  # the baseline is not the signal


def test_planar_signal_unet_equals_the_1d_network_on_real_ecg(data_dir):
    """On CPU ecg-dae's convolutions run as (1, k) 2-D ones on channels_last activations: the same
    denoised windows as the folded 1-D network to float rounding on record 207 (ventricular beats)."""
    import torch

    import engine.io
    from engine.inference.optimize import fold_batchnorm, for_inference, planar_signal_convs
    from engine.weights import load

    lm = load("ecg-dae")
    sig = engine.io.read(str(data_dir / "ecg/mitdb/207.hea"))
    x = torch.from_numpy(sig.read(0, 4 * 8192).reshape(2, 4, 8192).transpose(1, 0, 2).copy()).reshape(-1, 1, 8192)
    with torch.inference_mode():
        one_d = fold_batchnorm(lm.module)
        ref = one_d(x)
        net = for_inference(lm.module, "cpu")
        assert net.planar and isinstance(net.stem[0], torch.nn.Conv2d)
        assert isinstance(net.up[0], torch.nn.ConvTranspose2d)
        got = net(x)
        odd = net(x[:3, :, :5000])  # a length that is not a multiple of 16 (replicate-padded inside)
        odd_ref = one_d(x[:3, :, :5000])
    assert got.shape == x.shape and odd.shape == (3, 1, 5000)
    assert torch.allclose(got, ref, atol=1e-5, rtol=0)
    assert torch.allclose(odd, odd_ref, atol=1e-5, rtol=0)
    assert not torch.allclose(got, x, atol=1e-3)  # the network changes its input (a real denoiser ran)
    assert not getattr(one_d, "planar", False) and not getattr(lm.module, "planar", False)  # copies only
    unfolded = lm.module
    assert planar_signal_convs(unfolded) is unfolded and not getattr(unfolded, "planar", False)  # BN left: skipped
