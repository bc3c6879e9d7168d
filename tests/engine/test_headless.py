"""The engine installs, imports and runs with Qt absent (CONVENTIONS: engine never imports Qt)."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

BLOCKER = textwrap.dedent(
    """
    import importlib.abc, sys
    BLOCKED = ("PySide6", "PyQt5", "PyQt6", "shiboken6", "pyqtgraph", "superqt", "qtpy", "desktop")
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"{name} is blocked: the engine must not import Qt")
            return None
    sys.meta_path.insert(0, Block())
    """
)


def test_every_engine_module_imports_without_qt(tmp_path):
    code = BLOCKER + textwrap.dedent(
        """
        import importlib, pkgutil, engine
        names = [m.name for m in pkgutil.walk_packages(engine.__path__, "engine.")]
        names = [n for n in names if n != "engine.__main__"]
        for n in names:
            importlib.import_module(n)
        assert not any(k.split(".")[0] in ("PySide6", "pyqtgraph", "superqt", "desktop") for k in sys.modules)
        print(len(names), "modules")
        """
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert int(r.stdout.split()[0]) >= 10


def test_engine_import_is_light():
    """`import engine` and `engine.io` must not pull in torch (fast start for CLI and GUI)."""
    code = "import sys, engine, engine.io, engine.cli; print('torch' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"


def test_engine_tests_run_with_qt_blocked(tmp_path):
    plugin = tmp_path / "block_qt.py"
    plugin.write_text(BLOCKER)
    env = dict(os.environ, PYTHONPATH=f"{tmp_path}{os.pathsep}{REPO}")
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "block_qt", "-p", "no:pytest-qt", "-p", "no:cacheprovider",
         "tests/engine/test_io_common.py", "-k", "not subprocess"],
        capture_output=True, text=True, cwd=REPO, env=env, timeout=900,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert " passed" in r.stdout
