"""The import contracts in pyproject.toml hold, and they can fail: breaking one on purpose is caught."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _lint(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root)}
    code = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"
    return subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True,
                          timeout=300)


def test_contracts_hold_on_this_tree():
    proc = _lint(REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout


def test_a_broken_contract_is_reported(tmp_path):
    for name in ("engine", "desktop"):
        shutil.copytree(REPO / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    # a reader that imports the models: the "io imports neither models nor torch" contract must break
    text = tmp_path / "engine" / "io" / "text.py"
    text.write_text(text.read_text() + "\nimport engine.models  # noqa: E402,F401 (broken on purpose)\n")
    # and one task that imports another
    beats = tmp_path / "engine" / "tasks" / "score_beats" / "beats.py"
    beats.write_text(beats.read_text() + "\nimport engine.tasks.denoise  # noqa: E402,F401\n")
    proc = _lint(tmp_path)
    assert proc.returncode != 0
    out = " ".join(proc.stdout.split())
    assert "Readers import neither models nor torch BROKEN" in out
    assert "Tasks do not import each other BROKEN" in out
    assert "engine.io.text -> engine.models" in out
    assert "The engine never imports the desktop or Qt KEPT" in out
