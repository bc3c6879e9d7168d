"""Shared pieces of the export tests: dciodvfy, a synthetic anomaly map on a real CT series."""
from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from engine.results import AnomalyMap

DCIODVFY = shutil.which("dciodvfy")
needs_dciodvfy = pytest.mark.skipif(DCIODVFY is None, reason="dciodvfy (Debian package dicom3tools) is not on "
                                                              "PATH; install it to validate the DICOM exports")
SHA = "0123456789abcdef" * 4


def dciodvfy_errors(path) -> tuple[list[str], str]:
    """The "Error" lines dciodvfy prints for *path*, and its whole output."""
    r = subprocess.run([DCIODVFY, str(path)], capture_output=True, text=True, timeout=60)
    out = r.stdout + r.stderr
    return [ln for ln in out.splitlines() if ln.startswith("Error")], out


def hot_map(shape, *, plane: int = 1) -> AnomalyMap:
    """Anomaly 0.25 everywhere and a 2.5 box on *plane*; values are known for round trips."""
    a = np.full(shape, 0.25, np.float32)
    a[plane, 100:180, 200:260] = 2.5
    return AnomalyMap(array=a, scale={"p99": 0.02}, model="ct-dae", sha256=SHA)
