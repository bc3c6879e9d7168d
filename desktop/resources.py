"""Where the bundled resources live (the repository, or the installer's bundle folder)."""
from __future__ import annotations

import re
import sys
from pathlib import Path

__all__ = ["resources_dir", "list_samples"]

_SKIP = {".md", ".txt.gz", ".json", ".csv", ".dat", ".atr", ".event", ".xml", ".nrrd"}


def resources_dir() -> Path:
    base = getattr(sys, "_MEIPASS", None)
    if base and (Path(base) / "resources").is_dir():
        return Path(base) / "resources"
    return Path(__file__).resolve().parents[1] / "resources"


def _sfreq_from_readme(readme: str, name: str) -> float | None:
    for line in readme.splitlines():
        if name in line:
            m = re.search(r"([\d.]+)\s*Hz", line)
            if m:
                try:
                    return float(m.group(1))
                except ValueError:
                    return None
    return None


def list_samples() -> list[tuple[str, str, dict]]:
    """Bundled samples as (label, path, read options), one entry per openable item.

    A folder of DICOM files is one entry; WFDB records are listed by their ``.hea``;
    a headerless text signal gets the sampling rate its README row states.
    """
    root = resources_dir() / "samples"
    if not root.is_dir():
        return []
    readme_path = root / "README.md"
    readme = readme_path.read_text(encoding="utf-8", errors="replace") if readme_path.exists() else ""
    out: list[tuple[str, str, dict]] = []
    for modality_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for item in sorted(modality_dir.iterdir()):
            label = f"{modality_dir.name.upper() if len(modality_dir.name) <= 3 else modality_dir.name.capitalize()}: {item.name}"
            if item.is_dir():
                if any(f.suffix.lower() == ".dcm" or f.suffix == "" for f in item.iterdir() if f.is_file()):
                    out.append((label, str(item), {}))
                continue
            suffix = item.suffix.lower()
            if item.name.startswith(".") or suffix in _SKIP:
                continue
            opts: dict = {}
            if suffix in (".txt", ".csv", ".asc", ".tsv"):
                sf = _sfreq_from_readme(readme, item.name)
                if sf:
                    opts["sfreq"] = sf
            out.append((label, str(item), opts))
    return out
