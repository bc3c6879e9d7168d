"""Signal-viewer speed: EEG paging in the app's own SignalView vs plain pyqtgraph on the same data,
and the desktop's time to its first window.

The record is the 64-channel EDF+ of ``eeg/eegmmidb`` (S001R03, 160 Hz, 125 s). Both sides page
forward through 10-s pages in a window of the same size and are forced to render every page the
same way (``processEvents()`` then ``grab()`` of the trace plot):

- **ours**: the main window as ``python -m desktop`` builds it (1366x768), the file opened through
  File › Open, calibration bars on, paging as the Right key does (``SignalView.set_start``);
- **plain**: one ``pg.PlotWidget`` of the same pixel size with 64 ``PlotDataItem`` lanes, each
  page read from the same Signal, centred, scaled and pushed with ``setData``, the same y range.

First window: wall seconds from starting ``python -m desktop --quit`` (no file: it exits as soon
as the main window has been shown and painted) to its exit, median of the runs.

Run: ``QT_QPA_PLATFORM=offscreen python benchmarks/bench_viewer.py [--pages 12 --repeats 5
--starts 5] [--profile]``. Medians and ratios come from one run (the machine is shared and noisy).
Targets: paging >= 0.6x plain pyqtgraph fps; first window <= 1.5 s.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("LATENT_SHARED_DATA", REPO.parent / "shared" / "data"))
EEG = DATA / "eeg" / "eegmmidb" / "S001R03.edf"
PAGE_S = 10.0
SIZE = (1366, 768)
FPS_TARGET = 0.6
FIRST_WINDOW_TARGET_S = 1.5

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(REPO))  # this checkout's desktop/engine, not an installed copy


def _app():
    from PySide6.QtWidgets import QApplication

    return QApplication.instance() or QApplication(sys.argv[:1])


def _render(app, plot) -> None:
    app.processEvents()
    plot.grab()


def open_ours(path: Path = EEG):
    """The main window with *path* open, as the app builds it; returns ``(window, signal_view, seconds)``,
    *seconds* from File › Open to the first page painted (the viewers are built on the first open)."""
    app = _app()
    from desktop.main_window import MainWindow

    win = MainWindow()
    win.resize(*SIZE)
    win.show()
    app.processEvents()
    t0 = time.perf_counter()
    win.open_path(str(path))
    while win.opener.busy or win.session.data is None:
        app.processEvents()
        time.sleep(0.005)
        if time.perf_counter() - t0 > 120:
            raise RuntimeError(f"{path} did not open in 120 s")
    view = win.signal_view
    _render(app, view.plot)
    opened = time.perf_counter() - t0
    for _ in range(5):
        app.processEvents()
    if view.signal is None or len(view.curves) != 64:
        raise RuntimeError(f"{path}: the signal view shows {len(view.curves)} channels, expected 64")
    return win, view, opened


def page_ours(view, pages: int) -> float:
    """Pages per second of *view* paging forward *pages* pages (wrapping to the start)."""
    app = _app()
    view.set_start(0.0)
    _render(app, view.plot)
    t0 = time.perf_counter()
    for _ in range(pages):
        nxt = view.start + view.window
        view.set_start(0.0 if nxt + view.window > view.signal.duration + 1e-9 else nxt)
        _render(app, view.plot)
    return pages / (time.perf_counter() - t0)


class PlainPager:
    """64 PlotDataItems in a PlotWidget of *size* px with the y range *yrange*, updated with setData."""

    def __init__(self, signal, size, yrange, factor):
        import pyqtgraph as pg

        self.signal, self.factor = signal, factor
        self.plot = pg.PlotWidget(background="w")
        self.plot.resize(*size)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.setYRange(*yrange, padding=0)
        self.curves = [self.plot.plot(pen=pg.mkPen((20, 20, 20), width=1)) for _ in signal.channels]
        self.plot.show()
        self.start = 0.0

    def show_page(self, start: float) -> None:
        import numpy as np

        sf = self.signal.sfreq
        s0 = int(round(start * sf))
        s1 = min(self.signal.n_samples, s0 + int(round(PAGE_S * sf)))
        page = np.asarray(self.signal.read(s0, s1), np.float32)
        y = (page - np.median(page, axis=1, keepdims=True)) * self.factor
        t = np.arange(s0, s1) / sf
        for k, c in enumerate(self.curves):
            c.setData(t, y[k] - k)
        self.plot.setXRange(start, start + PAGE_S, padding=0)
        self.start = start

    def page(self, pages: int) -> float:
        app = _app()
        self.show_page(0.0)
        _render(app, self.plot)
        t0 = time.perf_counter()
        for _ in range(pages):
            nxt = self.start + PAGE_S
            self.show_page(0.0 if nxt + PAGE_S > self.signal.duration + 1e-9 else nxt)
            _render(app, self.plot)
        return pages / (time.perf_counter() - t0)


def first_window_s(runs: int) -> list[float]:
    """Wall seconds of ``python -m desktop --quit`` (start, first window shown and painted, exit)."""
    out = []
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", LATENT_SETTINGS_DIR=tempfile.mkdtemp(prefix="bench-viewer-"))
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "desktop", "--quit"], check=True, cwd=REPO, env=env,
                       capture_output=True, timeout=120)
        out.append(time.perf_counter() - t0)
    return out


def heavy_modules_at_start() -> list[str]:
    """Which heavy optional modules the empty main window imports (run in a fresh process)."""
    code = ("import sys; from desktop.app import main; main(['--quit']); "
            "print(' '.join(m for m in ('torch', 'cuda', 'cupy', 'numba', 'scipy', 'pyqtgraph') if m in sys.modules))")
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", LATENT_SETTINGS_DIR=tempfile.mkdtemp(prefix="bench-viewer-"))
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    return r.stdout.split()


def profile_step(view, pages: int = 30, top: int = 15) -> None:
    """cProfile of *pages* page turns of *view* (render included), top entries by cumulative time."""
    import cProfile
    import pstats

    prof = cProfile.Profile()
    prof.enable()
    page_ours(view, pages)
    prof.disable()
    pstats.Stats(prof).sort_stats("cumulative").print_stats(top)
    pstats.Stats(prof).sort_stats("tottime").print_stats(top)


def measure(pages: int = 12, repeats: int = 5, starts: int = 5, profile: bool = False) -> dict:
    """Interleaved paging fps (ours, plain), first-window seconds and the heavy start-up modules."""
    os.environ.setdefault("LATENT_SETTINGS_DIR", tempfile.mkdtemp(prefix="bench-viewer-"))
    app = _app()
    win, view, opened = open_ours(EEG)
    vb = view.plot.getPlotItem().getViewBox()
    size = (view.plot.width(), view.plot.height())
    yrange = tuple(vb.viewRange()[1])
    plain = PlainPager(view.signal, size, yrange, float(view.lanes.factors()[0]))
    ours_fps, plain_fps = [], []
    for _ in range(repeats):  # interleaved: both sides see the same machine load
        ours_fps.append(page_ours(view, pages))
        plain_fps.append(plain.page(pages))
    if profile:
        profile_step(view)
    bars = sum(hasattr(it, "amplitude") for it in view.calibration)
    plain.plot.close()
    win.shutdown()
    win.close()
    app.processEvents()
    starts = first_window_s(starts)
    heavy = heavy_modules_at_start()

    return {"ours_fps": ours_fps, "plain_fps": plain_fps, "starts": starts, "heavy": heavy, "bars": bars,
            "opened": opened, "size": size}


def run_all_rows(quick: bool = True, repeats: int | None = None) -> list[dict]:
    """Rows for ``benchmarks/run_all.py``: paging fps vs plain pyqtgraph, first window."""
    if not EEG.exists():
        raise FileNotFoundError(f"{EEG} not found (the shared data set, eeg/eegmmidb)")
    r = measure(pages=12, repeats=repeats or (3 if quick else 5), starts=3 if quick else 5)
    mo, mp = statistics.median(r["ours_fps"]), statistics.median(r["plain_fps"])
    fw = statistics.median(r["starts"])
    return [
        {"figure": "EEG paging 64 ch, 10-s pages (fps)", "value": round(mo, 1), "unit": "fps",
         "reference": f"plain pyqtgraph {mp:.1f} fps", "ratio": round(mo / mp, 2), "target": f">= {FPS_TARGET}x"},
        {"figure": "desktop first window (python -m desktop --quit)", "value": round(fw, 2), "unit": "s",
         "reference": f"{FIRST_WINDOW_TARGET_S} s", "ratio": round(fw / FIRST_WINDOW_TARGET_S, 2),
         "target": f"<= {FIRST_WINDOW_TARGET_S:g} s", "pass": fw <= FIRST_WINDOW_TARGET_S},
    ]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pages", type=int, default=12, help="page turns per repeat")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--starts", type=int, default=5, help="runs of python -m desktop --quit")
    p.add_argument("--profile", action="store_true", help="also print a cProfile of our paging")
    args = p.parse_args(argv)
    if not EEG.exists():
        print(f"error: {EEG} not found (the shared data set, eeg/eegmmidb)", file=sys.stderr)
        return 2
    r = measure(args.pages, args.repeats, args.starts, args.profile)
    ours_fps, plain_fps, starts, heavy = r["ours_fps"], r["plain_fps"], r["starts"], r["heavy"]
    bars, opened, size = r["bars"], r["opened"], r["size"]
    mo, mp = statistics.median(ours_fps), statistics.median(plain_fps)
    fw = statistics.median(starts)
    print(f"\nSignal viewer ({EEG.name}: 64 channels, {PAGE_S:g}-s pages, {size[0]}x{size[1]} px trace plot, "
          f"{args.pages} pages x {args.repeats} repeats; {os.cpu_count()} CPUs; {time.strftime('%Y-%m-%d')})")
    print(f"{'measure':44s} {'median':>9s} {'runs':>30s}")
    print(f"{'paging fps, ours (SignalView, ' + str(bars) + ' cal. bar)':44s} {mo:9.1f} "
          f"{' '.join(f'{v:.1f}' for v in ours_fps):>30s}")
    print(f"{'paging fps, plain pyqtgraph':44s} {mp:9.1f} {' '.join(f'{v:.1f}' for v in plain_fps):>30s}")
    print(f"{'ratio ours / plain (target >= 0.6)':44s} {mo / mp:9.2f} "
          f"{' '.join(f'{a / b:.2f}' for a, b in zip(ours_fps, plain_fps)):>30s}")
    print(f"{'first window s, python -m desktop --quit':44s} {fw:9.2f} {' '.join(f'{v:.2f}' for v in starts):>30s}")
    print(f"{'first window / 1.5 s target':44s} {fw / FIRST_WINDOW_TARGET_S:9.2f}")
    print(f"{'File > Open EDF to first page painted, s':44s} {opened:9.2f} {'(1 run, in process)':>30s}")
    print(f"heavy modules imported by the empty window: {' '.join(heavy) or 'none'}")
    ok = mo / mp >= FPS_TARGET and fw <= FIRST_WINDOW_TARGET_S
    print("targets met" if ok else "targets NOT met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
