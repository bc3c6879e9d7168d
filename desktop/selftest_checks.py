"""The self-test's building blocks: the network guard, the bundled samples and the result checks.

:mod:`desktop.selftest` runs them and prints the table; they live here so that each file has one
role. Nothing here imports Qt.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

__all__ = ["BONN_SFREQ_HZ", "CheckFailed", "find_samples", "check_result"]

#: Sampling rate (Hz) of the headerless Bonn-style EEG segments bundled as text
#: (resources/samples/README.md: 4097 samples at 173.61 Hz).
BONN_SFREQ_HZ = 173.61

_SIGNAL_TEXT = (".txt", ".csv", ".tsv", ".asc", ".npy")
_SKIP_NAMES = {"readme", "readme.md", "license", "licence", "attribution.md"}
_SIDECARS = (".dat", ".atr", ".json", ".md", ".xml", ".py")


class CheckFailed(AssertionError):
    """A self-test check found something wrong."""


# --------------------------------------------------------------------------- network guard
_NET_EVENTS = ("socket.connect", "socket.getaddrinfo", "socket.gethostbyname",
               "socket.gethostbyaddr", "urllib.Request")
_net_attempts: list[str] = []
_net_recording = False
_hook_installed = False


def _audit(event: str, args: tuple) -> None:
    if not _net_recording or event not in _NET_EVENTS:
        return
    if event == "socket.connect":
        address = args[1] if len(args) > 1 else None
        if not isinstance(address, tuple):  # AF_UNIX (D-Bus, X11) is local, not network
            return
        _net_attempts.append(f"{event} {address!r}")
    else:
        _net_attempts.append(f"{event} {args[:2]!r}")


def _start_network_guard() -> None:
    global _net_recording, _hook_installed
    if not _hook_installed:  # audit hooks cannot be removed: install once, switch on and off
        sys.addaudithook(_audit)
        _hook_installed = True
    _net_attempts.clear()
    _net_recording = True


def _stop_network_guard() -> list[str]:
    global _net_recording
    _net_recording = False
    return list(_net_attempts)


# --------------------------------------------------------------------------- samples
def _resources_dir() -> Path:
    from engine._shared.resources import resources_dir

    return resources_dir()


def find_samples(root: Path | None = None) -> dict[str, list[Path]]:
    """Bundled samples by modality: the entries of ``resources/samples/<modality>/``.

    A folder is a DICOM series; a WFDB record is named by its ``.hea``; sidecar
    files (``.dat``, ``.atr``, READMEs) are not samples of their own.
    """
    root = root or _resources_dir() / "samples"
    found: dict[str, list[Path]] = {}
    if not root.is_dir():
        return found
    for mod_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        items = [p for p in sorted(mod_dir.iterdir())
                 if p.name.lower() not in _SKIP_NAMES and not p.name.startswith(".")
                 and p.suffix.lower() not in _SIDECARS]
        if items:
            found[mod_dir.name] = items
    return found


def _pick(task: str, modality: str, paths: list[Path]) -> Path:
    """Bonn-style text segments for score-segments, recordings for everything else."""
    texts = [p for p in paths if p.suffix.lower() in _SIGNAL_TEXT]
    others = [p for p in paths if p not in texts]
    if task == "score-segments" and texts:
        return texts[0]
    return (others or paths)[0]


def _opened(path: Path, modality: str):
    """The sample read as *modality* (Bonn text at its rate), closed again when the ``with`` ends."""
    import engine.io

    options: dict[str, Any] = {"modality": modality}
    if path.suffix.lower() in _SIGNAL_TEXT:
        options["sfreq"] = BONN_SFREQ_HZ
    return engine.io.opened(path, **options)


# --------------------------------------------------------------------------- result checks
def _require(cond: bool, message: str) -> None:
    if not cond:
        raise CheckFailed(message)


def _fail(message: str) -> str:
    raise CheckFailed(message)


def _finite(name: str, arr):
    import numpy as np

    arr = np.asarray(arr)
    _require(arr.size > 0, f"{name} is empty")
    if arr.dtype.kind in "fc":
        _require(bool(np.isfinite(arr).all()), f"{name} has NaN/inf values")
    return arr


def _data_shape(data) -> tuple[int, ...]:
    return tuple(int(s) for s in data.shape)


def _check_provenance(result, expected_model: str, manifest: dict[str, dict]) -> None:
    sha = getattr(result, "sha256", "") or ""
    _require(len(sha) == 64 and all(c in "0123456789abcdef" for c in sha.lower()),
             f"result carries no sha256 of its weights ({sha!r})")
    want = manifest.get(expected_model, {}).get("sha256")
    _require(want is None or sha.lower() == want.lower(),
             f"weights sha256 {sha[:12]}... is not the bundled {expected_model} ({str(want)[:12]}...)")


def check_result(task: str, data, result, model: str, manifest: dict[str, dict]) -> str:
    """Validate one task's result; return a short description, raise CheckFailed if wrong."""
    import numpy as np

    shape = _data_shape(data)
    if task == "reconstruct":
        rec, amap = result.reconstruction, result.anomaly
        arr = _finite("reconstruction", rec.array)
        _require(tuple(arr.shape) == shape, f"reconstruction shape {arr.shape} != input {shape}")
        amap_arr = _finite("anomaly map", amap.array)
        _require(bool(amap.scale), "anomaly map has no calibrated scale")
        _check_provenance(rec, model, manifest)
        _check_provenance(amap, model, manifest)
        return (f"recon {'x'.join(map(str, arr.shape))}, map {'x'.join(map(str, amap_arr.shape))} "
                f"max {float(np.max(amap_arr)):.2f}")
    if task == "detect-nuclei":
        xy = _finite("nucleus positions", result.xy)
        _require(result.count > 0, "no nuclei detected on the H&E sample")
        _require(xy.ndim == 2 and xy.shape[1] == 2, f"positions have shape {xy.shape}, not (N, 2)")
        rows, cols = shape[0], shape[1]
        _require(bool((xy[:, 0] >= 0).all() and (xy[:, 0] < cols).all()
                      and (xy[:, 1] >= 0).all() and (xy[:, 1] < rows).all()),
                 "a detection lies outside the image")
        score = _finite("scores", result.score)
        _require(score.shape[0] == result.count, "one score per detection expected")
        _check_provenance(result, model, manifest)
        return f"{result.count} nuclei, score {float(score.min()):.2f}-{float(score.max()):.2f}"
    if task == "denoise":
        sig = result.signal
        _require(_data_shape(sig) == shape, f"denoised shape {sig.shape} != input {shape}")
        _require(abs(sig.sfreq - data.sfreq) < 1e-6, "denoised sampling rate differs from the input")
        n = min(sig.n_samples, 100_000)
        out, inp = _finite("denoised signal", sig.read(0, n)), data.read(0, n)
        _require(not np.array_equal(out, inp), "the denoised signal is identical to the input")
        _check_provenance(result, model, manifest)
        rms = float(np.sqrt(np.mean((out - inp) ** 2)))
        return f"{shape[0]} ch x {shape[1]} samples, rms change {rms:.3g}"
    if task == "score-beats":
        sample = _finite("beat positions", result.sample)
        score = _finite("beat scores", result.score)
        _require(score.shape == sample.shape and len(result.symbol) == sample.shape[0],
                 "beats, symbols and scores differ in length")
        _require(bool((sample >= 0).all() and (sample < data.n_samples).all()),
                 "a beat lies outside the recording")
        _check_provenance(result, model, manifest)
        return f"{sample.shape[0]} beats, score {float(score.min()):.2f}-{float(score.max()):.2f}"
    if task == "score-segments":
        score = _finite("segment scores", result.score)
        start, stop = np.asarray(result.start), np.asarray(result.stop)
        _require(score.shape == start.shape == stop.shape, "starts, stops and scores differ in length")
        _require(bool((stop > start).all()), "a segment ends before it starts")
        labels = np.asarray(result.label)
        _require(bool(np.isin(labels, (0, 1)).all()), "labels are not 0/1")
        _check_provenance(result, model, manifest)
        return f"{score.shape[0]} segment(s), max score {float(score.max()):.3f}, label {int(labels.max())}"
    raise CheckFailed(f"no check written for task {task!r}")
