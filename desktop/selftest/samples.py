"""The bundled samples the self-test opens: where they are, which one a task uses, how to read it.

Nothing here imports Qt.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["BONN_SFREQ_HZ", "find_samples", "pick_sample", "opened_sample", "resources_dir"]

#: Sampling rate (Hz) of the headerless Bonn-style EEG segments bundled as text
#: (resources/samples/README.md: 4097 samples at 173.61 Hz).
BONN_SFREQ_HZ = 173.61

_SIGNAL_TEXT = (".txt", ".csv", ".tsv", ".asc", ".npy")
_SKIP_NAMES = {"readme", "readme.md", "license", "licence", "attribution.md"}
_SIDECARS = (".dat", ".atr", ".json", ".md", ".xml", ".py")


def resources_dir() -> Path:
    """The bundled resources folder (``resources/`` of the checkout, or of the installed bundle)."""
    from engine._shared import resources

    return resources.resources_dir()


def find_samples(root: Path | None = None) -> dict[str, list[Path]]:
    """Bundled samples by modality: the entries of ``resources/samples/<modality>/``.

    A folder is a DICOM series; a WFDB record is named by its ``.hea``; sidecar
    files (``.dat``, ``.atr``, READMEs) are not samples of their own.
    """
    root = root or resources_dir() / "samples"
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


def pick_sample(task: str, modality: str, paths: list[Path]) -> Path:
    """The sample *task* runs on: a headerless text segment where its presenter asks for one
    (the Bonn EEG segments the seizure scorer is made for), otherwise a recording."""
    from desktop.presenters import presenter_for_task

    texts = [p for p in paths if p.suffix.lower() in _SIGNAL_TEXT]
    others = [p for p in paths if p not in texts]
    if presenter_for_task(task).selftest_sample == "text" and texts:
        return texts[0]
    return (others or paths)[0]


def opened_sample(path: Path, modality: str):
    """The sample read as *modality* (Bonn text at its rate), closed again when the ``with`` ends."""
    import engine.io

    options: dict[str, Any] = {"modality": modality}
    if path.suffix.lower() in _SIGNAL_TEXT:
        options["sfreq"] = BONN_SFREQ_HZ
    return engine.io.opened(path, **options)
