"""``latent --selftest``: prove that an installed Latent works, offline, on this machine.

Opens the bundled sample of every modality, runs every analysis task on the CPU
with the bundled models, checks each result (shapes, finite values, non-empty
outputs, the sha256 of the weights that were used, the files the exporter
writes) and prints one table row per check. Exits 0 when every row is ``ok``,
1 otherwise. It also checks the bundled weights against their manifest, draws a
pyqtgraph plot offscreen (so a missing Qt plugin or library shows up here), and
records every attempt to open a network connection or resolve a host name made
from Python while it runs: any such attempt fails the self-test, because the
product must never touch the network.

Run it as ``latent --selftest`` (installed bundle) or ``python -m desktop
--selftest`` (source tree). In the bundle, ``--selftest-report FILE`` also writes
the rows as JSON, which is how CI reads the result of the windowed Windows
executable. (Owned by the installer work; ``desktop/app.py`` calls
:func:`run_selftest`.)
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, TextIO

__all__ = ["PLAN", "Row", "run_checks", "run_selftest", "main", "find_samples", "check_result"]

#: (modality, task) pairs the self-test runs: every task on the modalities the issue names.
PLAN: tuple[tuple[str, str], ...] = (
    ("ct", "reconstruct"),
    ("histology", "reconstruct"),
    ("histology", "detect-nuclei"),
    ("ecg", "reconstruct"),
    ("ecg", "denoise"),
    ("ecg", "score-beats"),
    ("eeg", "reconstruct"),
    ("eeg", "score-segments"),
)

#: Sampling rate (Hz) of the headerless Bonn-style EEG segments bundled as text
#: (resources/samples/README.md: 4097 samples at 173.61 Hz).
BONN_SFREQ_HZ = 173.61

_SIGNAL_TEXT = (".txt", ".csv", ".tsv", ".asc", ".npy")
_SKIP_NAMES = {"readme", "readme.md", "license", "licence", "attribution.md"}
_SIDECARS = (".dat", ".atr", ".json", ".md", ".xml", ".py")


@dataclass
class Row:
    """One line of the self-test table."""

    check: str
    target: str
    status: str  # "ok" or "FAIL"
    seconds: float
    detail: str


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
    from engine.utils import resources_dir

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


def _read(path: Path, modality: str):
    import engine.io

    options: dict[str, Any] = {"modality": modality}
    if path.suffix.lower() in _SIGNAL_TEXT:
        options["sfreq"] = BONN_SFREQ_HZ
    return engine.io.read(path, **options)


def _close(data) -> None:
    close = getattr(data, "close", None)
    if callable(close):
        close()


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


# --------------------------------------------------------------------------- checks
def _timed(rows: list[Row], check: str, target: str, fn: Callable[[], str], out: TextIO | None) -> bool:
    t0 = time.perf_counter()
    try:
        detail, status = fn(), "ok"
    except Exception as exc:  # every failure becomes a FAIL row; the test goes on
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        detail, status = f"{type(exc).__name__}: {first}", "FAIL"
    row = Row(check, target, status, time.perf_counter() - t0, detail)
    rows.append(row)
    if out is not None:
        _print_row(row, out)
    return status == "ok"


def _manifest() -> dict[str, dict]:
    path = _resources_dir() / "models" / "manifest.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def _check_models() -> str:
    from engine.utils import sha256_file

    manifest = _manifest()
    folder = _resources_dir() / "models"
    _require(bool(manifest), f"no bundled models listed in {folder / 'manifest.json'}")
    for name, entry in manifest.items():
        path = folder / entry["file"]
        _require(path.exists(), f"{name}: {entry['file']} is missing")
        _require(sha256_file(path) == entry["sha256"], f"{name}: sha256 does not match the manifest")
    return f"{len(manifest)} models, sha256 verified"


def _check_qt() -> str:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import numpy as np
    import pyqtgraph as pg
    import superqt
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(["latent-selftest"])
    widget = pg.PlotWidget()
    widget.resize(320, 200)
    widget.plot(np.sin(np.linspace(0, 20, 2000)))
    slider = superqt.QLabeledRangeSlider()
    slider.setRange(0, 100)
    app.processEvents()
    image = widget.grab().toImage()
    _require(not image.isNull() and image.width() > 0, "pyqtgraph could not render offscreen")
    with tempfile.TemporaryDirectory() as tmp:
        png = Path(tmp) / "plot.png"
        _require(image.save(str(png)), "Qt could not write a PNG")
        size = png.stat().st_size
    widget.close()
    slider.close()
    return f"{app.platformName()} platform, pyqtgraph plot {image.width()}x{image.height()} -> PNG {size} B"


def _open_sample(path: Path, modality: str) -> str:
    data = _read(path, modality)
    try:
        _require(data.modality == modality, f"read as {data.modality}, expected {modality}")
        shape = "x".join(map(str, _data_shape(data)))
        if hasattr(data, "sfreq"):
            return f"{modality} {shape} at {data.sfreq:g} Hz, {len(data.annotations)} annotations"
        return f"{modality} {shape} {data.units}"
    finally:
        _close(data)


def _run_task(task: str, modality: str, path: Path, manifest: dict[str, dict]) -> str:
    from engine.jobs import run_job
    from engine.tasks import default_model, get_task

    spec = get_task(task)
    model = default_model(task, modality)
    try:
        runner, writer = spec.runner(), spec.writer()
    except (ImportError, AttributeError) as exc:
        raise CheckFailed(f"task not available in this build ({exc})") from None
    data = _read(path, modality)
    try:
        fractions: list[float] = []
        result = run_job(runner(data, model=model, device="cpu"),
                         on_progress=lambda p: fractions.append(p.fraction))
        _require(bool(fractions), "the job reported no progress")
        _require(all(-1e-9 <= f <= 1 + 1e-9 for f in fractions), "progress outside [0, 1]")
        detail = check_result(task, data, result, model, manifest)
        with tempfile.TemporaryDirectory(prefix="latent-selftest-") as tmp:
            written = [Path(p) for p in (writer(result, data, Path(tmp)) or [])]
            _require(bool(written), "the exporter wrote no file")
            for p in written:
                _require(p.exists() and p.stat().st_size > 0, f"the exporter left {p.name} empty or missing")
            detail += f"; wrote {', '.join(sorted({p.suffix or p.name for p in written}))}"
    finally:
        _close(data)
    return f"[{model}] {detail}"


def run_checks(*, out: TextIO | None = sys.stdout, qt: bool = True,
               plan: Iterable[tuple[str, str]] = PLAN) -> list[Row]:
    """Run every check; print rows to *out* as they finish; return the rows."""
    plan = tuple(plan)
    rows: list[Row] = []
    if out is not None:
        _print_header(out)
    _start_network_guard()
    try:
        import torch

        torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
        _timed(rows, "bundled models", "resources/models", _check_models, out)
        if qt:
            _timed(rows, "gui", "Qt + pyqtgraph", _check_qt, out)
        samples = find_samples()
        manifest = _manifest()
        for modality in sorted({m for m, _ in plan}):
            paths = samples.get(modality, [])
            if not paths:
                _timed(rows, "open sample", f"{modality}/-",
                       lambda m=modality: _fail(f"no bundled {m} sample in {_resources_dir() / 'samples' / m}"), out)
            for path in sorted({_pick(t, m, paths) for m, t in plan if m == modality and paths}):
                _timed(rows, "open sample", f"{modality}/{path.name}",
                       lambda m=modality, p=path: _open_sample(p, m), out)
        for modality, task in plan:
            paths = samples.get(modality)
            if not paths:
                continue  # already reported as a missing sample
            path = _pick(task, modality, paths)
            _timed(rows, task, f"{modality}/{path.name}",
                   lambda t=task, m=modality, p=path: _run_task(t, m, p, manifest), out)
    finally:
        attempts = _stop_network_guard()
    _timed(rows, "offline", "no network use",
           lambda: "no connection or name lookup attempted" if not attempts
           else _fail(f"{len(attempts)} network attempt(s), first: {attempts[0]}"), out)
    return rows


# --------------------------------------------------------------------------- output
_COLS = (("check", 15), ("target", 28), ("status", 6), ("s", 6))


def _print_header(out: TextIO) -> None:
    out.write(f"Latent self-test: {_build_info()}\n")
    out.write(f"resources: {_resources_dir()}\n")
    out.write("  ".join(f"{name:<{w}}" for name, w in _COLS) + "  detail\n")
    out.write("  ".join("-" * w for _, w in _COLS) + "  " + "-" * 40 + "\n")
    out.flush()


def _print_row(row: Row, out: TextIO) -> None:
    cells = (row.check, row.target, row.status, f"{row.seconds:.1f}")
    out.write("  ".join(f"{c:<{w}}" for c, (_, w) in zip(cells, _COLS)) + f"  {row.detail}\n")
    out.flush()


def _build_info() -> str:
    parts = []
    bundle = getattr(sys, "_MEIPASS", None)
    info = Path(bundle) / "BUILD-INFO.json" if bundle else None
    if info is not None and info.exists():
        meta = json.loads(info.read_text(encoding="utf-8"))
        parts.append(f"installed bundle {meta.get('version')} ({meta.get('variant')} variant, "
                     f"built {meta.get('built')}, git {meta.get('git')})")
    else:
        parts.append("bundle" if bundle else "source tree")
    try:
        import torch

        cuda = torch.version.cuda
        build = f"CUDA {cuda} build" if cuda else "CPU build"
        if cuda:
            gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA GPU found"
            build += f", {gpu}"
        parts.append(f"torch {torch.__version__} ({build}); the checks run on the CPU")
    except ImportError:
        parts.append("torch missing")
    parts.append(f"Python {platform.python_version()} on {platform.system()} {platform.machine()}")
    return "; ".join(parts)


def _attach_console() -> None:
    """A windowed Windows executable has no stdout: borrow the parent console if any."""
    if sys.platform != "win32" or sys.stdout is not None:
        return
    try:
        import ctypes

        if ctypes.windll.kernel32.AttachConsole(-1):  # ATTACH_PARENT_PROCESS
            sys.stdout = sys.stderr = open("CONOUT$", "w", encoding="utf-8", errors="replace")
    except Exception:  # no console to attach to: the JSON report still has the result
        pass


def main(argv: list[str] | None = None) -> int:
    """Entry point for ``--selftest``; returns the process exit code (0 = all checks ok)."""
    parser = argparse.ArgumentParser(prog="latent --selftest", add_help=False)
    parser.add_argument("--selftest", action="store_true")
    parser.add_argument("--selftest-report", metavar="FILE", help="also write the rows as JSON")
    parser.add_argument("--selftest-no-gui", action="store_true", help="skip the Qt check")
    args, _unknown = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    _attach_console()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    out = sys.stdout
    rows = run_checks(out=out, qt=not args.selftest_no_gui)
    failed = [r for r in rows if r.status != "ok"]
    summary = f"{len(rows) - len(failed)} checks ok, {len(failed)} failed"
    if out is not None:
        out.write(("SELFTEST PASSED" if not failed else "SELFTEST FAILED") + f" ({summary})\n")
        out.flush()
    if args.selftest_report:
        Path(args.selftest_report).write_text(
            json.dumps({"ok": not failed, "summary": summary, "rows": [asdict(r) for r in rows]}, indent=2),
            encoding="utf-8")
    return 0 if not failed else 1


def run_selftest(argv: list[str] | None = None) -> int:
    """What ``python -m desktop --selftest`` calls (desktop/app.py); same as :func:`main`."""
    return main(argv)


if __name__ == "__main__":
    sys.exit(main())
