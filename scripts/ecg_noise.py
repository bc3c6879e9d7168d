"""MIT-BIH Noise Stress Test noise: loading, train/test halves, mixing at a target SNR.

The NSTDB ``bw`` (baseline wander) and ``ma`` (muscle artefact) records hold pure
noise (two channels, 360 Hz, 30 min; their gain is "uncalibrated", so only the
shape matters: noise is always rescaled to the SNR asked for). Electrode-motion
(``em``) noise exists here only inside ``118e00``: we recover it as
``118e00 - 118`` in the digital domain over the noisy 2-minute blocks (300-420 s,
540-660 s, ...), each block made zero-mean.

Train/test disjointness: ``part="train"`` is the first half in time of ``bw``/``ma``
and the first four ``em`` blocks; ``part="test"`` is the second half and the last
three blocks. Noise segments used for testing are therefore never seen in training.

SNR convention (used by training, the benchmark and the tests)::

    SNR = 10 log10( sum(clean**2) / sum((x - clean)**2) )

where ``clean`` is the MIT-BIH record with its own baseline wander removed by
:func:`clean_reference` (the classical two-stage 200 ms / 600 ms median filter of
de Chazal et al. 2004; it leaves P, QRS and T untouched and is *not* the band-pass
baseline that the benchmark compares against), minus its mean over the segment.
A noisy input is ``clean + k * noise`` with *k* giving the exact input SNR.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> c = np.sin(np.linspace(0, 20, 1000)); n = rng.standard_normal(1000)
>>> round(snr_db(c, mix_at_snr(c, n, 6.0)), 6)
6.0
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from engine.errors import ReadError

__all__ = ["NOISE_KINDS", "load_noise", "mix_at_snr", "snr_db", "rmse", "prd", "noise_segment",
           "clean_reference", "baseline_estimate"]

NOISE_KINDS = ("bw", "ma", "em")
#: Electrode-motion noise blocks in 118e00: start second, 120 s noisy, every 240 s.
EM_FIRST_S, EM_BLOCK_S, EM_PERIOD_S = 300, 120, 240
EM_TRAIN_BLOCKS = 4
_MITDB_ADC_ZERO = 1024
_GAIN = 200.0  # ADU per (nominal) mV in both databases


def _rdrecord(path: Path, **kw):
    import wfdb

    try:
        return wfdb.rdrecord(str(path), **kw)
    except (FileNotFoundError, OSError) as exc:
        raise ReadError(path, f"cannot read NSTDB/MIT-BIH record ({exc})") from None


def _em_blocks(nstdb_dir: Path, mitdb_dir: Path | None) -> list[np.ndarray]:
    noisy = _rdrecord(nstdb_dir / "118e00", physical=False).d_signal.astype(np.int32) + _MITDB_ADC_ZERO
    mit = mitdb_dir if mitdb_dir is not None else nstdb_dir.parent / "mitdb"
    clean = _rdrecord(mit / "118", physical=False).d_signal.astype(np.int32)
    n = min(len(noisy), len(clean))
    diff = (noisy[:n] - clean[:n]).astype(np.float32) / _GAIN
    fs = 360
    blocks = []
    start = EM_FIRST_S
    while start * fs < n:
        seg = diff[start * fs : min((start + EM_BLOCK_S) * fs, n)].T
        if seg.shape[1] > fs:
            blocks.append(seg - seg.mean(axis=1, keepdims=True))
        start += EM_PERIOD_S
    return blocks


def load_noise(nstdb_dir: str | os.PathLike, kind: str, *, part: str = "all",
               mitdb_dir: str | os.PathLike | None = None) -> list[np.ndarray]:
    """Noise of *kind* as a list of contiguous ``(2, n)`` float32 arrays (arbitrary units).

    Parameters
    ----------
    nstdb_dir : path
        Folder holding ``bw``, ``ma`` and ``118e00`` (WFDB).
    kind : {"bw", "ma", "em"}
    part : {"train", "test", "all"}
        Disjoint halves in time (see the module docstring).
    mitdb_dir : path, optional
        Folder holding MIT-BIH record ``118`` (for ``em``); default ``nstdb_dir/../mitdb``.
    """
    nstdb_dir = Path(nstdb_dir)
    if kind not in NOISE_KINDS:
        raise ValueError(f"unknown noise kind {kind!r}; valid: {', '.join(NOISE_KINDS)}")
    if part not in ("train", "test", "all"):
        raise ValueError(f"part must be train, test or all, not {part!r}")
    if kind == "em":
        blocks = _em_blocks(nstdb_dir, None if mitdb_dir is None else Path(mitdb_dir))
        if part == "train":
            return blocks[:EM_TRAIN_BLOCKS]
        if part == "test":
            return blocks[EM_TRAIN_BLOCKS:]
        return blocks
    sig = _rdrecord(nstdb_dir / kind).p_signal.astype(np.float32).T
    half = sig.shape[1] // 2
    sel = {"train": sig[:, :half], "test": sig[:, half:], "all": sig}[part]
    return [np.ascontiguousarray(sel)]


def noise_segment(blocks: list[np.ndarray], n: int, rng: np.random.Generator) -> np.ndarray:
    """A random zero-mean 1-D noise segment of length *n* from one channel of one block."""
    ok = [b for b in blocks if b.shape[1] >= n]
    if not ok:
        raise ValueError(f"no noise block is {n} samples long")
    b = ok[int(rng.integers(len(ok)))]
    ch = int(rng.integers(b.shape[0]))
    s = int(rng.integers(0, b.shape[1] - n + 1))
    seg = b[ch, s : s + n].astype(np.float64)
    return seg - seg.mean()


def mix_at_snr(clean: np.ndarray, noise: np.ndarray, snr: float) -> np.ndarray:
    """``clean + k * noise`` with *k* chosen so that ``snr_db(clean, result) == snr``."""
    clean = np.asarray(clean, dtype=np.float64)
    noise = np.asarray(noise, dtype=np.float64)
    pn = float(np.sum(noise**2))
    if pn <= 0:
        raise ValueError("noise segment is all zeros")
    k = np.sqrt(float(np.sum(clean**2)) / (pn * 10 ** (snr / 10)))
    return clean + k * noise


def snr_db(clean: np.ndarray, x: np.ndarray) -> float:
    """``10 log10(sum(clean^2) / sum((x - clean)^2))`` in dB."""
    clean = np.asarray(clean, dtype=np.float64)
    err = float(np.sum((np.asarray(x, dtype=np.float64) - clean) ** 2))
    return float(10 * np.log10(np.sum(clean**2) / max(err, 1e-30)))


def rmse(clean: np.ndarray, x: np.ndarray) -> float:
    """Root-mean-square error, in the signal's units."""
    d = np.asarray(x, dtype=np.float64) - np.asarray(clean, dtype=np.float64)
    return float(np.sqrt(np.mean(d**2)))


def prd(clean: np.ndarray, x: np.ndarray) -> float:
    """Percentage root-mean-square difference, ``100 sqrt(sum(err^2) / sum(clean^2))``."""
    clean = np.asarray(clean, dtype=np.float64)
    err = float(np.sum((np.asarray(x, dtype=np.float64) - clean) ** 2))
    return float(100 * np.sqrt(err / np.sum(clean**2)))


def baseline_estimate(x: np.ndarray, fs: float) -> np.ndarray:
    """Baseline wander of an ECG lead: median filter of 200 ms, then of 600 ms (last axis)."""
    from scipy.ndimage import median_filter

    x = np.asarray(x, dtype=np.float64)
    k1 = int(round(0.2 * fs)) | 1
    k2 = int(round(0.6 * fs)) | 1
    size1 = (1,) * (x.ndim - 1) + (k1,)
    size2 = (1,) * (x.ndim - 1) + (k2,)
    return median_filter(median_filter(x, size=size1, mode="nearest"), size=size2, mode="nearest")


def clean_reference(x: np.ndarray, fs: float) -> np.ndarray:
    """The "clean" ECG of the denoising benchmark: *x* minus :func:`baseline_estimate`."""
    x = np.asarray(x, dtype=np.float64)
    return x - baseline_estimate(x, fs)
