"""Readers for every modality behind one function, :func:`read`.

>>> from engine.io import READERS
>>> sorted(READERS)
['dicom', 'histology', 'mne', 'text', 'wfdb']
"""
from __future__ import annotations

import contextlib
import logging
import os

from engine.errors import LatentError, ReadError
from engine.io.registry import READERS, find_reader, sniff

__all__ = ["read", "opened", "READERS", "find_reader", "sniff"]

logger = logging.getLogger("engine")


def read(path: str | os.PathLike, **options):
    """Read a CT series, histology image, ECG or EEG recording.

    Parameters
    ----------
    path : str or os.PathLike
        A file, a DICOM folder or DICOMDIR, or a WFDB record path (with or without ``.hea``).
    **options
        Passed to the reader: ``sfreq`` (Hz, for headerless text/NPY signals),
        ``modality`` (``"ecg"``/``"eeg"`` to override the guess), ``series_uid``
        (DICOM folder with several series), ``mpp`` (histology µm/px override).

    Returns
    -------
    Image or Signal

    Raises
    ------
    engine.errors.ReadError
        With the file name and a one-line reason, for anything that cannot be read.
    """
    spec = find_reader(path)
    reader = spec.load()
    try:
        return reader(os.fspath(path), **options)
    except LatentError:
        raise
    except MemoryError:
        raise ReadError(path, "not enough memory to read this file") from None
    except Exception as exc:  # a library's own error on a damaged file: one line, no traceback
        logger.debug("reader %s failed on %s", spec.name, path, exc_info=True)
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ReadError(path, f"cannot be read as {spec.description.split(':')[0]}: {msg}") from exc


@contextlib.contextmanager
def opened(path: str | os.PathLike, **options):
    """:func:`read` as a context manager: the result's file handles are released on exit, errors included.

    Lazy readers (tiled TIFF, OpenSlide, WFDB, MNE) keep files open and offer ``close()``;
    objects without one are yielded as they are.
    """
    data = read(path, **options)
    try:
        yield data
    finally:
        close = getattr(data, "close", None)
        if callable(close):
            close()
