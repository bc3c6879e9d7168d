"""Containers that carry physical meaning: never a bare array.

Arrays are in ``(plane, row, col)`` order for images and ``(channels, samples)``
for signals. Units are stated on every container.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Sequence

import numpy as np

__all__ = [
    "Modality",
    "SeriesInfo",
    "Image",
    "Annotation",
    "Signal",
    "MAX_EAGER_PIXELS",
]

Modality = Literal["ct", "histology", "ecg", "eeg"]

#: Above this many pixels a histology image is not materialised as one array;
#: use :meth:`Image.read_region` instead (about 1.5 GB of RGB).
MAX_EAGER_PIXELS = 512 * 1024 * 1024


@dataclass(frozen=True)
class SeriesInfo:
    """One DICOM series found in a folder or DICOMDIR."""

    uid: str
    description: str
    modality: str
    n_instances: int
    rows: int | None = None
    cols: int | None = None
    files: tuple[str, ...] = ()


RegionReader = Callable[[int, int, int, int, int], np.ndarray]


@dataclass(frozen=True, eq=False)
class Image:
    """A CT volume or a histology image.

    Attributes
    ----------
    modality : {"ct", "histology"}
    shape : tuple of int
        CT: ``(planes, rows, cols)``. Histology: ``(rows, cols, 3)`` at level 0.
    spacing : tuple of float
        CT: ``(slice, row, col)`` spacing in **mm**. Histology: ``(row, col)``
        microns per pixel, or ``None`` when the file does not say.
    units : str
        ``"HU"`` for CT (float32 Hounsfield units), ``"RGB8"`` for histology (uint8).
    array : numpy.ndarray or None
        The pixels when they are held in memory (CT always; histology when small).
        Large histology images are read with :meth:`read_region`.
    origin : tuple of float
        CT: patient position (x, y, z) in mm of the first voxel of the first plane.
    direction : tuple of float
        CT: ImageOrientationPatient row and column direction cosines (6 values).
    levels : tuple of (rows, cols)
        Histology pyramid levels, level 0 first (CT: one level per plane size).
    downsamples : tuple of float
        Downsample factor of each level relative to level 0.
    series : tuple of SeriesInfo
        Every series found when a folder/DICOMDIR was read (the one loaded is ``series_uid``).
    metadata : dict
        Format-specific values that are useful to show (patient-free by default).
    path : str
        The file or folder that was read.
    """

    modality: str
    shape: tuple[int, ...]
    spacing: tuple[float, ...] | None
    units: str
    path: str
    dtype: str = "float32"
    array: np.ndarray | None = None
    origin: tuple[float, ...] | None = None
    direction: tuple[float, ...] | None = None
    levels: tuple[tuple[int, int], ...] = ()
    downsamples: tuple[float, ...] = ()
    series: tuple[SeriesInfo, ...] = ()
    series_uid: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    region_reader: RegionReader | None = field(default=None, repr=False)
    closer: Callable[[], None] | None = field(default=None, repr=False)

    @property
    def mpp(self) -> float | None:
        """Microns per pixel (histology, level 0), or None when unknown."""
        if self.modality != "histology" or not self.spacing:
            return None
        return float(self.spacing[-1])

    def read_region(self, level: int, x: int, y: int, w: int, h: int) -> np.ndarray:
        """Read a ``(h, w, C)`` region whose top-left is ``(x=col, y=row)`` in *level* pixels.

        Pixels outside the image are zero. For an in-memory image level 0 is the array.
        """
        if self.region_reader is not None:
            return self.region_reader(level, x, y, w, h)
        if self.array is None:
            raise ValueError("image has neither pixels nor a region reader")
        if level != 0:
            raise ValueError(f"level {level} out of range (this image has one level)")
        arr = self.array
        out = np.zeros((h, w) + arr.shape[2:], dtype=arr.dtype)
        y0, x0 = max(y, 0), max(x, 0)
        y1, x1 = min(y + h, arr.shape[0]), min(x + w, arr.shape[1])
        if y1 > y0 and x1 > x0:
            out[y0 - y : y1 - y, x0 - x : x1 - x] = arr[y0:y1, x0:x1]
        return out

    def close(self) -> None:
        if self.closer is not None:
            self.closer()


@dataclass(frozen=True)
class Annotation:
    """One event in a recording: a beat label, a rhythm change, a stimulus marker.

    ``onset`` and ``duration`` are in seconds from the start of the recording;
    ``sample`` is the index at the recording's sampling rate.
    """

    onset: float
    duration: float
    description: str
    sample: int | None = None
    channel: int | None = None
    aux: str = ""


SampleReader = Callable[[int, int], np.ndarray]


@dataclass(frozen=True, eq=False)
class Signal:
    """A multi-channel ECG or EEG recording.

    Attributes
    ----------
    modality : {"ecg", "eeg"}
    sfreq : float
        Sampling rate in Hz.
    channels : tuple of str
        Channel names (as stored in the file).
    units : tuple of str
        Unit of each channel's values: ``"mV"`` for ECG, ``"uV"`` for EEG.
    n_samples : int
        Samples per channel.
    annotations : tuple of Annotation
    path : str
    metadata : dict
    sample_reader : callable(start, stop) -> ndarray
        Returns ``(channels, stop - start)`` float32 in ``units``; lets long
        recordings be read window by window without loading them whole.
    """

    modality: str
    sfreq: float
    channels: tuple[str, ...]
    units: tuple[str, ...]
    n_samples: int
    path: str
    annotations: tuple[Annotation, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)
    sample_reader: SampleReader | None = field(default=None, repr=False)
    _data: np.ndarray | None = field(default=None, repr=False)

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self.channels), self.n_samples)

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.n_samples / self.sfreq

    def read(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Samples ``[start, stop)`` of every channel as float32 ``(channels, n)``."""
        stop = self.n_samples if stop is None else min(int(stop), self.n_samples)
        start = max(0, int(start))
        if stop <= start:
            return np.zeros((len(self.channels), 0), np.float32)
        if self._data is not None:
            return self._data[:, start:stop]
        if self.sample_reader is None:
            raise ValueError("signal has neither data nor a sample reader")
        return np.asarray(self.sample_reader(start, stop), dtype=np.float32)

    @property
    def data(self) -> np.ndarray:
        """All samples, ``(channels, samples)`` float32 in :attr:`units` (loads the whole record)."""
        return self.read(0, self.n_samples)

    @classmethod
    def from_array(
        cls,
        data: np.ndarray,
        *,
        sfreq: float,
        modality: str,
        channels: Sequence[str] | None = None,
        units: str | Sequence[str] | None = None,
        path: str = "<array>",
        annotations: Sequence[Annotation] = (),
        metadata: dict[str, Any] | None = None,
    ) -> "Signal":
        """Wrap an in-memory ``(channels, samples)`` array."""
        data = np.atleast_2d(np.asarray(data, dtype=np.float32))
        n_ch = data.shape[0]
        if channels is None:
            channels = tuple(f"ch{i + 1}" for i in range(n_ch))
        if units is None:
            units = "mV" if modality == "ecg" else "uV"
        if isinstance(units, str):
            units = (units,) * n_ch
        return cls(
            modality=modality,
            sfreq=float(sfreq),
            channels=tuple(channels),
            units=tuple(units),
            n_samples=int(data.shape[1]),
            path=path,
            annotations=tuple(annotations),
            metadata=dict(metadata or {}),
            _data=data,
        )
