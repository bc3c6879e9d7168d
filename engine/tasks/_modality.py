"""Which modality a scoring task asks the reader for.

Formats that say what they hold (WFDB, EDF/BDF, FIF, ... : channel types, names, units)
are read with the reader's own guess, so ``score-beats`` on an EEG recording or
``score-segments`` on an ECG record is refused by the task with
:class:`~engine.errors.ModalityMismatchError` instead of being relabelled. Only headerless
text/NumPy signals, which carry no modality, get the task's modality (or the user's
explicit ``--modality``).
"""
from __future__ import annotations

import os
from pathlib import Path

from engine.io import READERS

__all__ = ["MODALITY_FREE_SUFFIXES", "reader_modality"]

#: Signal files with no modality information: the text/NumPy reader's extensions.
MODALITY_FREE_SUFFIXES = READERS["text"].extensions


def reader_modality(path: str | os.PathLike, needed: str, requested: str | None = None) -> str | None:
    """The ``modality`` reader option for *path*: *requested* if given, *needed* for headerless
    text/NumPy files, else ``None`` (the reader guesses from the file)."""
    if requested is not None:
        return requested
    return needed if Path(path).suffix.lower() in MODALITY_FREE_SUFFIXES else None
