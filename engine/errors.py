"""Errors a user can cause, with messages that say what was wrong and what to do.

Every exception the engine raises on purpose derives from :class:`LatentError`.
The CLI prints ``error: <message>`` and exits 2; the desktop shows the message in
a dialog and keeps running.
"""
from __future__ import annotations

import os

__all__ = [
    "LatentError",
    "ReadError",
    "UnsupportedFormatError",
    "CorruptFileError",
    "ModelError",
    "WeightsError",
    "ModalityMismatchError",
    "CancelledError",
    "OutputError",
    "DiskFullError",
]


class LatentError(Exception):
    """Base class of every error the engine raises for a user to act on."""


class ReadError(LatentError):
    """A file could not be read as a medical image or signal.

    Parameters
    ----------
    path : str or os.PathLike
        The file (or folder) that failed.
    reason : str
        One line saying what is wrong with it.
    """

    def __init__(self, path: str | os.PathLike | None, reason: str):
        self.path = None if path is None else os.fspath(path)
        self.reason = " ".join(str(reason).split())  # one line, always
        super().__init__(f"{self.path}: {self.reason}" if self.path else self.reason)


class UnsupportedFormatError(ReadError):
    """The file is not one of the formats Latent reads (or the format is known but unsupported)."""


class CorruptFileError(ReadError):
    """The file claims a supported format but its content is truncated or damaged."""


class ModelError(LatentError):
    """A model cannot be used: unknown name, bad hyper-parameters, or wrong input."""


class WeightsError(ModelError):
    """A weights file is missing, damaged, not safetensors, or fails its sha256 check."""


class ModalityMismatchError(ModelError):
    """The model was trained for another modality than the data it was given."""


class CancelledError(LatentError):
    """A long job was cancelled by the user."""


class OutputError(LatentError):
    """The outputs cannot be written where asked (no room, no permission...).

    Parameters
    ----------
    folder : str or os.PathLike
        The output folder.
    reason : str
        One line saying what is wrong.
    """

    def __init__(self, folder: str | os.PathLike, reason: str):
        self.folder = os.fspath(folder)
        self.reason = " ".join(str(reason).split())
        super().__init__(f"{self.folder}: {self.reason}")


class DiskFullError(OutputError):
    """Not enough free disk space for a task's outputs (checked before anything is written)."""

    def __init__(self, folder: str | os.PathLike, *, needed: int | None, free: int, estimate: int | None = None):
        self.needed, self.free, self.estimate = needed, int(free), estimate
        est = f" ({_mb(estimate)} of outputs plus a safety margin)" if estimate is not None else ""
        what = f"about {_mb(needed)} needed{est}, " if needed is not None else "the disk filled up while writing, "
        super().__init__(folder, f"not enough free disk space for the outputs: {what}{_mb(free)} free; nothing "
                                 "was replaced; free some space or write to another folder (--out)")


def _mb(n: int) -> str:
    return f"{n / 1e6:,.1f} MB"
