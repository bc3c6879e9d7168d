"""Tiled/windowed inference equals whole-input inference away from borders; pipelines shapes."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch_helpers import one_torch_thread  # noqa: F401 (autouse fixture)

from engine import weights
from engine.data import Signal
from engine.inference.tiles import ramp, tiled_reconstruct
from engine.inference.windows import infer_signal
from engine.jobs import run_job
from engine.models import build_model


def _conv2d(seed=0, **kw):
    torch.manual_seed(seed)
    m = build_model("conv", spatial_dims=2, in_channels=1, channels=[4, 8], **kw).eval()
    for mod in m.modules():  # non-trivial BatchNorm statistics (eval mode uses them)
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.1, 0.1)
            mod.running_var.uniform_(0.5, 1.5)
    return m


def test_ramps_sum_to_one_over_overlap():
    a = ramp(64, 16, taper_lo=False, taper_hi=True)
    b = ramp(64, 16, taper_lo=True, taper_hi=False)
    np.testing.assert_allclose(a[-16:] + b[:16], 1.0, atol=1e-6)
    assert a[0] == 1 and b[-1] == 1 and a[-1] == 0 and b[0] == 0  # outer margin discarded


@pytest.mark.parametrize("skip", [False, True])
def test_tiled_equals_whole_image_away_from_borders(skip):
    rng = np.random.default_rng(0)
    img = rng.random((1, 200, 232), dtype=np.float32)
    m = _conv2d(skip_connections=skip)
    # whole image: edge-pad to the size multiple exactly as the tiler does
    pad = np.pad(img, [(0, 0), (0, (-200) % 4), (0, (-232) % 4)], mode="edge")
    with torch.inference_mode():
        whole = m(torch.from_numpy(pad)[None])[0].numpy()[:, :200, :232]
    tiled = run_job(tiled_reconstruct(m, lambda y0, x0, y1, x1: img[:, y0:y1, x0:x1], 200, 232,
                                      tile=128, overlap=64, size_multiple=m.size_multiple, batch_size=5))
    assert tiled.shape == whole.shape
    inner = (slice(None), slice(48, -48), slice(48, -48))
    # Blending gives weight 0 to the outer overlap/4 = 16 px of each inner tile edge and ramps
    # over the next 32 px; the receptive field is 33 px (half: 16), so away from the image
    # borders tiled == whole. Tolerance: 1 % of the output's spread (max), 0.01 % (mean);
    # measured 0.3 % max, where both overlapping tiles have near-zero weight.
    spread = float(whole.std())
    err = np.abs(tiled - whole)[inner]
    assert float(err.max()) < 1e-2 * spread
    assert float(err.mean()) < 1e-4 * spread
    # and a deliberately wrong blend (no overlap) is measurably worse at tile seams
    bad = run_job(tiled_reconstruct(m, lambda y0, x0, y1, x1: img[:, y0:y1, x0:x1], 200, 232,
                                    tile=128, overlap=0, size_multiple=m.size_multiple))
    assert float(np.abs(bad - whole)[inner].max()) > 10 * float(err.max())


def test_a_side_at_most_one_overlap_longer_than_a_tile_is_one_tile():
    """A 257-px CT plane (272 once padded to 16) with 256-px tiles and 64 px overlap is ONE 272-px tile
    (it was four 256-px tiles); a side longer than tile + overlap is still tiled."""
    seen = []

    class Probe(torch.nn.Module):
        def forward(self, x):
            seen.append(tuple(x.shape))
            return x * 2

    img = np.random.default_rng(1).random((1, 257, 400), dtype=np.float32)
    out = run_job(tiled_reconstruct(Probe(), lambda y0, x0, y1, x1: img[:, y0:y1, x0:x1], 257, 400,
                                    tile=256, overlap=64, size_multiple=16, batch_size=1))
    assert {s[2] for s in seen} == {272}  # rows: 257 -> 272 padded <= 256 + 64: one tile row
    assert {s[3] for s in seen} == {256} and len(seen) == 2  # columns: 400 > 320: two 256-px tiles
    np.testing.assert_allclose(out, 2 * img, rtol=1e-6)  # blended back to the image exactly


def _signal_model(tmp_path, *, sfreq=100.0, baseline="none"):
    torch.manual_seed(1)
    m = build_model("conv", spatial_dims=1, in_channels=1, channels=[4, 8], kernel_size=3).eval()
    meta = {"architecture": "conv", "hparams": m.hparams, "modality": "eeg",
            "preprocessing": {"kind": "signal", "units": "uV", "scale": 10.0, "baseline": baseline},
            "input": {"channels": 1, "channel_mode": "per_channel", "window": 128, "overlap": 64,
                      "sfreq": sfreq, "size_multiple": 4},
            "anomaly": {"error": "abs", "smooth_s": 0.05}}
    p = tmp_path / "sig.safetensors"
    weights.save(m, p, meta)
    return weights.load(p), m


def test_windowed_equals_whole_signal_away_from_ends(tmp_path):
    loaded, m = _signal_model(tmp_path)
    rng = np.random.default_rng(0)
    t = np.arange(3000) / 100.0
    x = (20 * np.sin(2 * np.pi * 3 * t) + 5 * rng.standard_normal((2, 3000))).astype(np.float32)
    sig = Signal.from_array(x, sfreq=100.0, modality="eeg")
    out = run_job(infer_signal(loaded, sig, batch_size=7, overlap=96))  # margin 24 > half receptive field
    assert out.shape == x.shape and out.dtype == np.float32
    with torch.inference_mode():
        whole = m(torch.from_numpy(x[:, None] / 10.0))[:, 0].numpy() * 10.0
    # tolerance: 1 % of the signal's spread (max), 0.1 % (mean), 40 samples from the ends
    err = np.abs(out - whole)[:, 40:-40]
    assert float(err.max()) < 0.01 * float(x.std())
    assert float(err.mean()) < 0.001 * float(x.std())


def test_signal_resampled_to_model_rate_and_back(tmp_path):
    loaded, _ = _signal_model(tmp_path, sfreq=100.0, baseline="mean")
    t = np.arange(5000) / 250.0
    x = (30 * np.sin(2 * np.pi * 2 * t))[None].astype(np.float32)
    sig = Signal.from_array(x, sfreq=250.0, modality="eeg")
    out = run_job(infer_signal(loaded, sig))
    assert out.shape == x.shape and np.isfinite(out).all()


def test_histology_pipeline_streams_regions(tmp_path, data_dir):
    from engine.inference.histology import reconstruct_histology
    from engine.io import read

    torch.manual_seed(0)
    m = build_model("conv", spatial_dims=2, in_channels=3, channels=[4, 8]).eval()
    meta = {"architecture": "conv", "hparams": m.hparams, "modality": "histology",
            "preprocessing": {"kind": "rgb", "scale": 255.0}, "input": {"channels": 3, "tile": 128, "overlap": 32,
                                                                       "size_multiple": 4},
            "anomaly": {"median_size": 3, "smooth_sigma": 1.0, "mask": "tissue"}}
    weights.save(m, tmp_path / "h.safetensors", meta)
    loaded = weights.load(tmp_path / "h.safetensors")
    img = read(str(data_dir / "histo/crchisto/img1/img1.png"))
    calls = []
    orig = img.read_region

    class Spy:  # count region reads: the pipeline must read tiles, not the whole image
        def __getattr__(self, k):
            return getattr(img, k)

        def read_region(self, level, x, y, w, h):
            calls.append((w, h))
            return orig(level, x, y, w, h)

    recon, amap, mask = run_job(reconstruct_histology(loaded, Spy(), calibrated=False))
    assert recon.shape == (3, 500, 500) and amap.shape == (500, 500) and mask.shape == (500, 500)
    assert max(w * h for w, h in calls[:-1]) <= 128 * 128
    assert np.isfinite(recon).all() and np.isfinite(amap).all()


def test_disk_backed_accumulators_and_tiled_tiff(tmp_path, monkeypatch):
    """Large inputs: accumulators on disk (memmap) and TIFFs written tile by tile give the same result."""
    import tifffile

    import engine.inference.tiles as ii
    import engine.tasks.reconstruct as infer
    from engine.data import Image
    from engine.results import AnomalyMap, Reconstruction, ReconstructionResult

    rng = np.random.default_rng(0)
    img = rng.random((1, 300, 260), dtype=np.float32)
    m = _conv2d()
    read = lambda y0, x0, y1, x1: img[:, y0:y1, x0:x1]  # noqa: E731
    ref = run_job(tiled_reconstruct(m, read, 300, 260, tile=128, overlap=64, size_multiple=4))
    monkeypatch.setattr(ii, "MEMMAP_PIXELS", 10_000)
    disk = run_job(tiled_reconstruct(m, read, 300, 260, tile=128, overlap=64, size_multiple=4))
    assert isinstance(disk, np.memmap)
    np.testing.assert_array_equal(np.asarray(disk), ref)
    monkeypatch.setattr(infer.write, "BIG_TIFF_BYTES", 1000)
    rgb = rng.random((300, 260, 3), dtype=np.float32) * 255
    data = Image(modality="histology", shape=rgb.shape, spacing=None, units="RGB8", path=str(tmp_path / "x.png"),
                 array=rgb.astype(np.uint8))
    res = ReconstructionResult(Reconstruction(rgb, "RGB", "m", "0" * 64),
                               AnomalyMap(rgb[..., 0], {}, "m", "0" * 64), {"model": {}})
    paths = infer.write_reconstruction(res, data, tmp_path / "out")
    back = tifffile.imread(paths[0])
    np.testing.assert_array_equal(back, rgb)
    with tifffile.TiffFile(paths[0]) as tf:
        assert tf.pages[0].is_tiled


@pytest.mark.gpu
def test_cuda_tiled_matches_cpu():
    """On a CUDA machine the tiled path gives the CPU result (fp32; TF32 off)."""
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    rng = np.random.default_rng(0)
    img = rng.random((1, 160, 192), dtype=np.float32)
    m = _conv2d()
    read = lambda y0, x0, y1, x1: img[:, y0:y1, x0:x1]  # noqa: E731
    cpu = run_job(tiled_reconstruct(m, read, 160, 192, tile=128, overlap=64, size_multiple=4, device="cpu"))
    gpu = run_job(tiled_reconstruct(m, read, 160, 192, tile=128, overlap=64, size_multiple=4, device="cuda"))
    np.testing.assert_allclose(gpu, cpu, atol=1e-4 * float(np.abs(cpu).max()))


def test_histology_rescaled_to_model_mpp(data_dir):
    """A 40x-like image (mpp 0.25) runs at the model's 0.5 um/px and maps back to input pixels."""
    from engine.inference.histology import _to_level0, model_scale, reconstruct_histology
    from engine.io import read

    # known answer: a linear ramp at model resolution maps to a linear ramp at level 0
    ramp_m = np.tile(np.arange(50, dtype=np.float32), (40, 1))[None]
    up = _to_level0(ramp_m, 0.5, (80, 100))
    assert up.shape == (1, 80, 100)
    np.testing.assert_allclose(up[0, :, 2:-2], np.tile((np.arange(2, 98) + 0.5) * 0.5 - 0.5, (80, 1)), atol=1e-5)

    torch.manual_seed(0)
    m = build_model("conv", spatial_dims=2, in_channels=3, channels=[4, 8]).eval()
    meta = {"architecture": "conv", "hparams": m.hparams, "modality": "histology",
            "preprocessing": {"kind": "rgb", "scale": 255.0, "expected_mpp": 0.5},
            "input": {"channels": 3, "tile": 128, "overlap": 32, "size_multiple": 4},
            "anomaly": {"median_size": 3, "smooth_sigma": 1.0, "mask": "tissue"}}
    loaded = weights.LoadedModel("t", None, "0" * 64, meta, m)
    img = read(str(data_dir / "histo/crchisto/img1/img1.png"), mpp=0.25)
    assert model_scale(img, meta["preprocessing"]) == 0.5
    assert model_scale(read(str(data_dir / "histo/crchisto/img1/img1.png")), meta["preprocessing"]) == 1.0
    recon, amap, mask = run_job(reconstruct_histology(loaded, img, calibrated=False))
    assert recon.shape == (3, 500, 500) and amap.shape == mask.shape == (500, 500)
    assert np.isfinite(recon).all() and np.isfinite(amap).all() and mask.dtype == bool
