"""Multi-set nucleus training data: fixed held-out splits and patches sampled at the model's resolution."""
from __future__ import annotations

import numpy as np


def test_held_out_splits_are_fixed_and_disjoint(data_dir):
    from nuclei_sets import MICCAI_HELD_OUT, miccai_split, monuseg_train_split

    fit, tune, held = monuseg_train_split(data_dir / "histo/monuseg_train")
    assert (len(fit), len(tune), len(held)) == (9, 1, 3)
    assert not (set(fit) & set(held)) and not (set(fit) & set(tune)) and not (set(tune) & set(held))
    organ = {"21": "lung", "50": "lung", "A7": "breast", "AR": "breast", "E2": "breast", "B0": "kidney",
             "CH": "prostate", "G9": "prostate", "NH": "colon"}
    held_organs = [organ[n.split("-")[1]] for n in held]
    assert len(set(held_organs)) == 3  # one per organ
    assert set(held_organs) <= {organ[n.split("-")[1]] for n in fit}  # each held-out organ is also trained on
    test_names = {p.stem for p in (data_dir / "histo/monuseg").glob("*.png")}
    assert not (test_names & set(fit + tune + held))  # the MoNuSeg test images are never in the split
    mic_fit, mic_held = miccai_split(data_dir / "histo/miccai2015_seg")
    assert sorted(r["image"] for r in mic_held) == sorted(MICCAI_HELD_OUT)
    assert {r["magnification"] for r in mic_held} == {"20x", "40x"}
    assert len(mic_fit) == 3 and not ({r["image"] for r in mic_fit} & set(MICCAI_HELD_OUT))


def _grid_image(spacing: int, size: int = 480):
    """White image with dark 2-px-radius dots on a square grid; returns (rgb uint8, (x, y) points)."""
    rgb = np.full((size, size, 3), 240, np.uint8)
    c = np.arange(spacing // 2, size, spacing)
    pts = np.array([(x, y) for y in c for x in c], np.float64)
    yy, xx = np.mgrid[:size, :size]
    for x, y in pts:
        rgb[(xx - x) ** 2 + (yy - y) ** 2 <= 4] = 20
    return rgb, pts


def test_sample_batch_resamples_40x_items_to_model_resolution():
    from train_nuclei import sample_batch

    rgb, pts = _grid_image(32)  # "40x": 32 input px apart -> 16 px at the model's resolution
    other, opts = _grid_image(24)
    rng = np.random.default_rng(0)
    data = [[("a", other, opts, 1.0)], [("b", rgb, pts, 0.5)]]
    x, ps = sample_batch(data, 16, rng, scale_jitter=None, size=96, set_weights=[0.0, 1.0])
    assert x.shape == (16, 3, 96, 96)
    for xi, p in zip(x, ps):
        inside = p[(p >= 1).all(1) & (p <= 94).all(1)]
        assert len(inside) >= 25  # a 192-px crop of a 32-px grid: 6 x 6 dots
        d = np.sqrt(((inside[:, None] - inside[None]) ** 2).sum(-1)) + np.eye(len(inside)) * 1e9
        assert np.allclose(d.min(1), 16.0, atol=0.01)
        vals = xi.mean(0)[np.round(inside[:, 1]).astype(int), np.round(inside[:, 0]).astype(int)]
        assert (vals < 0.6).all()  # every point lands on its (darker) dot
