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
from typing import Callable, Iterable, TextIO

from desktop.selftest.checks import CheckFailed, check_result, data_shape, fail, require
from desktop.selftest.guard import start_network_guard, stop_network_guard
from desktop.selftest.samples import find_samples, opened_sample, pick_sample, resources_dir
from engine.tasks import TASKS

__all__ = ["PLAN", "NOT_SELF_TESTED", "Row", "run_checks", "run_selftest", "main"]

#: Registry pairs the self-test leaves out: EEG denoising runs eeg-cae, the model the EEG
#: reconstruction check already runs, on the same recording.
NOT_SELF_TESTED: frozenset[tuple[str, str]] = frozenset({("eeg", "denoise")})


def _plan() -> tuple[tuple[str, str], ...]:
    """Every (modality, task) the task registry offers, by modality, less :data:`NOT_SELF_TESTED`."""
    modalities = dict.fromkeys(m for spec in TASKS.values() for m in spec.modalities)
    return tuple((m, name) for m in modalities for name, spec in TASKS.items()
                 if m in spec.modalities and (m, name) not in NOT_SELF_TESTED)


#: (modality, task) pairs the self-test runs, in this order.
PLAN: tuple[tuple[str, str], ...] = _plan()


@dataclass
class Row:
    """One line of the self-test table."""

    check: str
    target: str
    status: str  # "ok" or "FAIL"
    seconds: float
    detail: str


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
    path = resources_dir() / "models" / "manifest.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def _check_models() -> str:
    from engine._shared.files import sha256_file

    manifest = _manifest()
    folder = resources_dir() / "models"
    require(bool(manifest), f"no bundled models listed in {folder / 'manifest.json'}")
    for name, entry in manifest.items():
        path = folder / entry["file"]
        require(path.exists(), f"{name}: {entry['file']} is missing")
        require(sha256_file(path) == entry["sha256"], f"{name}: sha256 does not match the manifest")
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
    require(not image.isNull() and image.width() > 0, "pyqtgraph could not render offscreen")
    with tempfile.TemporaryDirectory() as tmp:
        png = Path(tmp) / "plot.png"
        require(image.save(str(png)), "Qt could not write a PNG")
        size = png.stat().st_size
    widget.close()
    slider.close()
    return f"{app.platformName()} platform, pyqtgraph plot {image.width()}x{image.height()} -> PNG {size} B"


def _open_sample(path: Path, modality: str) -> str:
    with opened_sample(path, modality) as data:
        require(data.modality == modality, f"read as {data.modality}, expected {modality}")
        shape = "x".join(map(str, data_shape(data)))
        if hasattr(data, "sfreq"):
            return f"{modality} {shape} at {data.sfreq:g} Hz, {len(data.annotations)} annotations"
        return f"{modality} {shape} {data.units}"


def _run_task(task: str, modality: str, path: Path, manifest: dict[str, dict]) -> str:
    from engine.jobs import run_job
    from engine.tasks import default_model, get_task

    spec = get_task(task)
    model = default_model(task, modality)
    try:
        runner, writer = spec.runner(), spec.writer()
    except (ImportError, AttributeError) as exc:
        raise CheckFailed(f"task not available in this build ({exc})") from None
    with opened_sample(path, modality) as data:
        fractions: list[float] = []
        result = run_job(runner(data, model=model, device="cpu"),
                         on_progress=lambda p: fractions.append(p.fraction))
        require(bool(fractions), "the job reported no progress")
        require(all(-1e-9 <= f <= 1 + 1e-9 for f in fractions), "progress outside [0, 1]")
        detail = check_result(task, data, result, model, manifest)
        with tempfile.TemporaryDirectory(prefix="latent-selftest-") as tmp:
            written = [Path(p) for p in (writer(result, data, Path(tmp)) or [])]
            require(bool(written), "the exporter wrote no file")
            for p in written:
                require(p.exists() and p.stat().st_size > 0, f"the exporter left {p.name} empty or missing")
            detail += f"; wrote {', '.join(sorted({p.suffix or p.name for p in written}))}"
    return f"[{model}] {detail}"


def run_checks(*, out: TextIO | None = sys.stdout, qt: bool = True,
               plan: Iterable[tuple[str, str]] = PLAN) -> list[Row]:
    """Run every check; print rows to *out* as they finish; return the rows."""
    plan = tuple(plan)
    rows: list[Row] = []
    if out is not None:
        _print_header(out)
    start_network_guard()
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
                       lambda m=modality: fail(f"no bundled {m} sample in {resources_dir() / 'samples' / m}"), out)
            for path in sorted({pick_sample(t, m, paths) for m, t in plan if m == modality and paths}):
                _timed(rows, "open sample", f"{modality}/{path.name}",
                       lambda m=modality, p=path: _open_sample(p, m), out)
        for modality, task in plan:
            paths = samples.get(modality)
            if not paths:
                continue  # already reported as a missing sample
            path = pick_sample(task, modality, paths)
            _timed(rows, task, f"{modality}/{path.name}",
                   lambda t=task, m=modality, p=path: _run_task(t, m, p, manifest), out)
    finally:
        attempts = stop_network_guard()
    _timed(rows, "offline", "no network use",
           lambda: "no connection or name lookup attempted" if not attempts
           else fail(f"{len(attempts)} network attempt(s), first: {attempts[0]}"), out)
    return rows


# --------------------------------------------------------------------------- output
_COLS = (("check", 15), ("target", 28), ("status", 6), ("s", 6))


def _print_header(out: TextIO) -> None:
    out.write(f"Latent self-test: {_build_info()}\n")
    out.write(f"resources: {resources_dir()}\n")
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

