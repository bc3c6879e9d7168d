"""The CT anomaly recipe keys of issue 15: masked filtering, error clipping above soft tissue, and
the shipped ct-dae map on LIDC-IDRI-0001 (a development plane, not a held-out test)."""
from __future__ import annotations

import numpy as np
import pytest

from engine.inference.anomaly import postprocess_image_error
from engine.inference.ct import ct_error
from engine.inference.preprocess import ct_to_model

PREP = {"kind": "ct_window", "hu_min": -1000.0, "hu_max": 500.0, "target_spacing_mm": 1.4}


def test_masked_filtering_keeps_outside_errors_out():
    err = np.zeros((40, 40), np.float32)
    err[:, :10] = 10.0  # strong error just outside the mask (a mediastinal edge)
    mask = np.zeros_like(err, bool)
    mask[:, 10:] = True
    plain = postprocess_image_error(err, median_size=3, smooth_sigma=2.0)
    masked = postprocess_image_error(err, median_size=3, smooth_sigma=2.0, mask=mask)
    assert plain[:, 10:14].max() > 1.0  # bleeds in without the mask
    assert masked.max() == 0.0
    flat = postprocess_image_error(np.ones_like(err), median_size=0, smooth_sigma=3.0, mask=mask)
    np.testing.assert_allclose(flat[mask], 1.0, atol=1e-4)  # normalised: no dip at the mask edge
    assert (flat[~mask] == 0).all()
    with pytest.raises(ValueError, match="mask shape"):
        postprocess_image_error(err, mask=mask[:-1])


def test_error_clip_hu_ignores_dense_structures_only():
    hu_in = np.array([[400.0, 0.0, -800.0]], np.float32)   # contrast vessel, nodule, lung
    hu_rec = np.array([[150.0, -800.0, -800.0]], np.float32)
    x, r = ct_to_model(hu_in, PREP)[None], ct_to_model(hu_rec, PREP)[None]
    m = np.ones(hu_in.shape, bool)
    base = {"error": "abs", "median_size": 0, "smooth_sigma": 0.0}
    e0 = ct_error(x, r, m, base, PREP)
    e1 = ct_error(x, r, m, {**base, "error_clip_hu": 100.0}, PREP)
    np.testing.assert_allclose(e0[0], [250 / 1500, 800 / 1500, 0], atol=1e-6)
    np.testing.assert_allclose(e1[0], [0, 800 / 1500, 0], atol=1e-6)  # both above 100 HU: no score


def test_shipped_ct_dae_peak_is_on_the_lidc_nodule(data_dir):
    """Regression pin of the shipped recipe on the nodule's central plane (recipe chosen on this patient)."""
    import sys
    from pathlib import Path

    from scipy import ndimage as ndi

    from engine import weights
    from engine.inference.ct import ct_slice
    from engine.io import read
    from engine.jobs import run_job

    if "ct-dae" not in {r["name"] for r in weights.list_bundled()}:
        pytest.skip("bundled ct-dae not installed")
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    from eval_ct_anomaly import lidc_consensus

    case = data_dir / "ct/lidc_idri/LIDC-IDRI-0001"
    img = read(str(case))
    les = lidc_consensus(case, img)
    ks = [k for k in range(les.shape[0]) if les[k].any()]
    k = ks[len(ks) // 2]
    loaded = weights.load("ct-dae")
    assert loaded.meta["anomaly"]["mask"] == "ct_lung"
    _, amap, mask = run_job(ct_slice(loaded, img.array[k], img.spacing[1:]))
    y, x = np.unravel_index(np.argmax(amap), amap.shape)
    assert ndi.distance_transform_edt(~les[k])[y, x] <= 5
    assert amap[les[k]].max() > 1.0 and (amap[~mask] == 0).all()
