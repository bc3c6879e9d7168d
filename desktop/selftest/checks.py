"""The self-test's result checks: the helpers a check is written with, and :func:`check_result`,
which hands a task's result to the check of its presenter (:mod:`desktop.presenters`).

Nothing here imports Qt.
"""
from __future__ import annotations

__all__ = ["CheckFailed", "check_result", "require", "fail", "finite", "data_shape", "check_provenance"]


class CheckFailed(AssertionError):
    """A self-test check found something wrong."""


def require(cond: bool, message: str) -> None:
    if not cond:
        raise CheckFailed(message)


def fail(message: str) -> str:
    raise CheckFailed(message)


def finite(name: str, arr):
    import numpy as np

    arr = np.asarray(arr)
    require(arr.size > 0, f"{name} is empty")
    if arr.dtype.kind in "fc":
        require(bool(np.isfinite(arr).all()), f"{name} has NaN/inf values")
    return arr


def data_shape(data) -> tuple[int, ...]:
    return tuple(int(s) for s in data.shape)


def check_provenance(result, expected_model: str, manifest: dict[str, dict]) -> None:
    sha = getattr(result, "sha256", "") or ""
    require(len(sha) == 64 and all(c in "0123456789abcdef" for c in sha.lower()),
             f"result carries no sha256 of its weights ({sha!r})")
    want = manifest.get(expected_model, {}).get("sha256")
    require(want is None or sha.lower() == want.lower(),
             f"weights sha256 {sha[:12]}... is not the bundled {expected_model} ({str(want)[:12]}...)")


def check_result(task: str, data, result, model: str, manifest: dict[str, dict]) -> str:
    """Validate one task's result; return a short description, raise CheckFailed if wrong."""
    import numpy as np

    shape = data_shape(data)
    if task == "reconstruct":
        rec, amap = result.reconstruction, result.anomaly
        arr = finite("reconstruction", rec.array)
        require(tuple(arr.shape) == shape, f"reconstruction shape {arr.shape} != input {shape}")
        amap_arr = finite("anomaly map", amap.array)
        require(bool(amap.scale), "anomaly map has no calibrated scale")
        check_provenance(rec, model, manifest)
        check_provenance(amap, model, manifest)
        return (f"recon {'x'.join(map(str, arr.shape))}, map {'x'.join(map(str, amap_arr.shape))} "
                f"max {float(np.max(amap_arr)):.2f}")
    if task == "detect-nuclei":
        xy = finite("nucleus positions", result.xy)
        require(result.count > 0, "no nuclei detected on the H&E sample")
        require(xy.ndim == 2 and xy.shape[1] == 2, f"positions have shape {xy.shape}, not (N, 2)")
        rows, cols = shape[0], shape[1]
        require(bool((xy[:, 0] >= 0).all() and (xy[:, 0] < cols).all()
                      and (xy[:, 1] >= 0).all() and (xy[:, 1] < rows).all()),
                 "a detection lies outside the image")
        score = finite("scores", result.score)
        require(score.shape[0] == result.count, "one score per detection expected")
        check_provenance(result, model, manifest)
        return f"{result.count} nuclei, score {float(score.min()):.2f}-{float(score.max()):.2f}"
    if task == "denoise":
        sig = result.signal
        require(data_shape(sig) == shape, f"denoised shape {sig.shape} != input {shape}")
        require(abs(sig.sfreq - data.sfreq) < 1e-6, "denoised sampling rate differs from the input")
        n = min(sig.n_samples, 100_000)
        out, inp = finite("denoised signal", sig.read(0, n)), data.read(0, n)
        require(not np.array_equal(out, inp), "the denoised signal is identical to the input")
        check_provenance(result, model, manifest)
        rms = float(np.sqrt(np.mean((out - inp) ** 2)))
        return f"{shape[0]} ch x {shape[1]} samples, rms change {rms:.3g}"
    if task == "score-beats":
        sample = finite("beat positions", result.sample)
        score = finite("beat scores", result.score)
        require(score.shape == sample.shape and len(result.symbol) == sample.shape[0],
                 "beats, symbols and scores differ in length")
        require(bool((sample >= 0).all() and (sample < data.n_samples).all()),
                 "a beat lies outside the recording")
        check_provenance(result, model, manifest)
        return f"{sample.shape[0]} beats, score {float(score.min()):.2f}-{float(score.max()):.2f}"
    if task == "score-segments":
        score = finite("segment scores", result.score)
        start, stop = np.asarray(result.start), np.asarray(result.stop)
        require(score.shape == start.shape == stop.shape, "starts, stops and scores differ in length")
        require(bool((stop > start).all()), "a segment ends before it starts")
        labels = np.asarray(result.label)
        require(bool(np.isin(labels, (0, 1)).all()), "labels are not 0/1")
        check_provenance(result, model, manifest)
        return f"{score.shape[0]} segment(s), max score {float(score.max()):.3f}, label {int(labels.max())}"
    raise CheckFailed(f"no check written for task {task!r}")
