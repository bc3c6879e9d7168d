"""What every installer build step shares: the repository root, logging and running commands."""
from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: The .deb control file template (its Depends line is also what the audit accepts as system libraries).
DEB_CONTROL_TEMPLATE = ROOT / "installer" / "linux" / "control.in"


def log(msg: str) -> None:
    print(f"[build] {msg}", flush=True)


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    log("$ " + " ".join(map(str, cmd)))
    return subprocess.run([str(c) for c in cmd], check=True, **kw)
