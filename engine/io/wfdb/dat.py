"""Fast window reads of common WFDB signal files (formats 8, 16, 24, 32, 61, 80, 160, 212).

``wfdb.rdrecord`` parses the header again on every call (about 5 ms), which adds up
over the thousands of windows of a 24-hour Holter. For the usual layout (one signal
file, one sample per frame, no skew) this reads the bytes of a window directly and
converts them exactly as wfdb does: ``(digital - baseline) / gain``, with the format's
invalid-sample value mapped to NaN. Anything else returns ``None`` and the caller uses
wfdb itself.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["DatReader"]

# format -> (numpy dtype of one sample, bytes per sample, offset to subtract, invalid value)
_SIMPLE = {
    "8": None,  # first differences: not a simple layout, left to wfdb
    "16": ("<i2", 2, 0, -(2**15)),
    "61": (">i2", 2, 0, -(2**15)),
    "80": ("<u1", 1, 128, -(2**7)),
    "160": ("<u2", 2, 32768, -(2**15)),
    "32": ("<i4", 4, 0, -(2**31)),
}


class DatReader:
    """Reads ``(channels, stop - start)`` physical float32 windows from one signal file."""

    def __init__(self, path: Path, fmt: str, n_sig: int, offset: int, gain, baseline):
        self.path, self.fmt, self.n_sig, self.offset = path, fmt, n_sig, offset
        self.gain = np.asarray(gain, np.float64)
        self.baseline = np.asarray(baseline, np.float64)

    @classmethod
    def from_header(cls, folder: Path, header) -> "DatReader | None":
        n = header.n_sig
        fmts = {str(f) for f in header.fmt}
        files = set(header.file_name)
        if len(fmts) != 1 or len(files) != 1:
            return None
        fmt, fname = fmts.pop(), files.pop()
        if fmt not in ("16", "61", "80", "160", "32", "212", "24") or fname == "-":
            return None
        if any((s or 1) != 1 for s in (header.samps_per_frame or [1] * n)):
            return None
        if any(s for s in (header.skew or [None] * n)):
            return None
        offsets = {o or 0 for o in (header.byte_offset or [0] * n)}
        if len(offsets) != 1:
            return None
        gain = [g if g else 200.0 for g in header.adc_gain]  # wfdb's default for "uncalibrated"
        return cls(folder / fname, fmt, n, offsets.pop(), gain, header.baseline)

    def _digital(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """Digital samples ``(frames, n_sig)`` as int64 and the invalid-sample mask."""
        n_sig, count = self.n_sig, (stop - start) * self.n_sig
        first = start * n_sig
        with open(self.path, "rb") as fh:
            if self.fmt == "212":
                s0 = first - first % 2
                nbytes = ((first + count - s0 + 1) // 2) * 3
                fh.seek(self.offset + (s0 // 2) * 3)
                raw = np.frombuffer(fh.read(nbytes), np.uint8)
                if len(raw) % 3:  # an odd final sample may be stored in 2 bytes
                    raw = np.concatenate([raw, np.zeros(3 - len(raw) % 3, np.uint8)])
                raw = raw.reshape(-1, 3).astype(np.int64)
                flat = np.empty(raw.shape[0] * 2, np.int64)
                flat[0::2] = raw[:, 0] | ((raw[:, 1] & 0x0F) << 8)
                flat[1::2] = raw[:, 2] | ((raw[:, 1] & 0xF0) << 4)
                flat[flat > 2047] -= 4096
                flat = flat[first - s0 : first - s0 + count]
                invalid = flat == -2048
            elif self.fmt == "24":
                fh.seek(self.offset + first * 3)
                raw = np.frombuffer(fh.read(count * 3), np.uint8).reshape(-1, 3).astype(np.int64)
                flat = raw[:, 0] | (raw[:, 1] << 8) | (raw[:, 2] << 16)
                flat[flat >= 2**23] -= 2**24
                invalid = flat == -(2**23)
            else:
                dtype, width, shift, bad = _SIMPLE[self.fmt]
                fh.seek(self.offset + first * width)
                flat = np.frombuffer(fh.read(count * width), dtype).astype(np.int64) - shift
                invalid = flat == bad
        if flat.size != count:
            raise EOFError(f"{self.path.name}: expected {count} samples from {start}, got {flat.size}")
        return flat.reshape(-1, n_sig), invalid.reshape(-1, n_sig)

    def read(self, start: int, stop: int) -> np.ndarray:
        d, invalid = self._digital(int(start), int(stop))
        p = (d - self.baseline) / self.gain
        p[invalid] = np.nan
        with np.errstate(over="ignore"):  # an absurd gain overflows float32: the caller refuses inf
            return np.ascontiguousarray(p.T, dtype=np.float32)
