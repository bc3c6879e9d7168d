"""``python -m desktop --selftest``: a quick installation check (the installer builds on it).

Imports the engine and Qt, opens every bundled sample through the engine readers and
prints one line per check; exits 0 when all pass.
"""
from __future__ import annotations

import sys
import time

__all__ = ["run_selftest"]


def run_selftest() -> int:
    failures = 0
    t0 = time.perf_counter()
    try:
        from PySide6.QtWidgets import QApplication  # noqa: F401

        import engine
        from engine.io import read

        print(f"ok   engine {engine.__version__}, PySide6 importable")
    except Exception as exc:  # noqa: BLE001
        print(f"FAIL imports: {exc}")
        return 1
    from desktop.resources import list_samples

    samples = list_samples()
    if not samples:
        print("warn no bundled samples found")
    for label, path, opts in samples:
        try:
            data = read(path, **opts)
            print(f"ok   {label}: {getattr(data, 'modality', '?')}")
            if hasattr(data, "close"):
                data.close()
        except Exception as exc:  # noqa: BLE001
            failures += 1
            print(f"FAIL {label}: {exc}")
    print(f"{'passed' if not failures else f'{failures} failed'} in {time.perf_counter() - t0:.1f} s")
    return 0 if not failures else 1
