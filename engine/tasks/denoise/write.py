"""Write a denoised recording (its native format + ``.npy`` + summary) as one output set."""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable

import numpy as np

from engine.data import Signal
from engine.results import DenoisedSignal

__all__ = ["write_denoised", "estimate_denoised_bytes"]

#: Bytes of a summary JSON, an upper bound (it lists parameters and output names: ~2 KB).
SUMMARY_BYTES = 16 << 10
#: Bytes of a WFDB header: the record line plus one line per channel (upper bounds).
_HEA_BYTES, _HEA_CHANNEL_BYTES = 256, 160
#: Bytes per annotation in a WFDB .atr (2-byte code + up to 4 skip bytes + aux) or an EDF+ TAL entry.
_ANN_BYTES = 8


def _native_format(data: Signal) -> str:
    fmt = str(data.metadata.get("format", "")).upper()
    return "WFDB" if fmt.startswith("WFDB") else fmt if fmt in ("EDF", "BDF") else ""


def estimate_denoised_bytes(result: DenoisedSignal, data: Signal) -> int:
    """Bytes :func:`write_denoised` writes for *result*: from its channel count, length and annotations.

    WFDB: ``.dat`` 2 bytes per sample (format 16) + header + ``.atr``; EDF/BDF: 2/3 bytes per
    sample (whole data records) + header + annotations; always the float32 ``.npy`` and the summary.
    """
    sig = result.signal
    n_ch, n = len(sig.channels), int(sig.n_samples)
    n_ann = len(sig.annotations or ())
    total = 128 + 4 * n_ch * n + SUMMARY_BYTES  # .npy header + float32 samples
    fmt = _native_format(data)
    if fmt == "WFDB":
        total += 2 * n_ch * n + _HEA_BYTES + _HEA_CHANNEL_BYTES * n_ch + _ANN_BYTES * n_ann + 2
    elif fmt in ("EDF", "BDF"):
        from engine.export.signals import _record_layout

        _, spr = _record_layout(float(sig.sfreq), n)
        n_total = -(-n // spr) * spr
        per = 3 if fmt == "BDF" else 2
        total += per * n_ch * n_total + 256 * (n_ch + 2) + 64 * n_ann + per * (n_total // spr) * 64
    return int(total)


def _write_npy(path: Path, sig: Signal) -> None:
    """Stream ``(channels, samples)`` float32 to a C-order ``.npy`` (no memory map: bounded RSS)."""
    from engine._shared.files import atomic_path

    step = 1 << 20
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.lib.format.write_array_header_1_0(
                fh, {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)), "fortran_order": False,
                     "shape": tuple(int(v) for v in sig.shape)})
            for c in range(len(sig.channels)):
                for a in range(0, sig.n_samples, step):
                    fh.write(np.ascontiguousarray(sig.read(a, a + step)[c], dtype="<f4").tobytes())


def _refuse_non_finite(sig: Signal, source) -> None:
    """Refuse to write a denoised signal holding NaN/Inf (names the input and the first such channel)."""
    from engine.errors import CorruptFileError

    step = 1 << 20
    for a in range(0, sig.n_samples, step):
        block = np.asarray(sig.read(a, a + step))
        bad = ~np.isfinite(block).all(axis=1)
        if bad.any():
            ch = sig.channels[int(np.argmax(bad))]
            raise CorruptFileError(source, f"channel {ch!r} gives non-finite values (NaN/Inf) through denoise "
                                           "(non-finite samples or an absurd physical range in the input); "
                                           "nothing was written")


def write_denoised(result: DenoisedSignal, data: Signal, out_dir: str | os.PathLike, *,
                   free_bytes: Callable[[Path], int] | None = None) -> list[Path]:
    """Write the denoised recording in the input's format, as ``.npy``, and a summary JSON.

    WFDB input -> the WFDB record ``out_dir/<record>_denoised`` (format 16, same channel
    names, rate, length and units, with the input's annotations); EDF/BDF input -> ``.edf``
    /``.bdf``; other inputs -> ``.npy`` only. Always ``<stem>_denoised.npy``
    (channels x samples, float32, in the input's units) and ``<stem>_denoised.summary.json``.

    The files are one output set (:func:`engine._shared.output_set.output_set`): a kill at any
    moment leaves the previous run's complete set or this one's, never a new ``.dat`` beside an
    old ``.hea``. The free space is checked first (:func:`estimate_denoised_bytes`;
    *free_bytes* replaces :func:`shutil.disk_usage` as the source of the free bytes).
    """
    from engine._shared.files import stem_of, write_json_atomic
    from engine._shared.output_set import output_set
    from engine.export.signals import write_edf, write_wfdb
    from engine.tasks.denoise import summarize

    t0 = time.perf_counter()
    _refuse_non_finite(result.signal, data.path)  # before any file, so no NaN set with finite summaries
    stem = stem_of(data.path)
    name = f"{stem}_denoised"
    fmt = _native_format(data)
    native = {"WFDB": ("hea", "dat", "atr"), "EDF": ("edf",), "BDF": ("bdf",)}.get(fmt, ())
    family = [f"{name}.summary.json", *(f"{name}.{e}" for e in native), f"{name}.npy"]
    with output_set(out_dir, name, index=family[:2], family=family,
                    estimate=estimate_denoised_bytes(result, data), free_bytes=free_bytes) as staged:
        d = staged.dir
        written: list[Path] = []
        if fmt == "WFDB":
            hea = write_wfdb(result.signal, d, name, fmt="16")
            written += [hea, hea.with_suffix(".dat")]
            if hea.with_suffix(".atr").exists():
                written.append(hea.with_suffix(".atr"))
        elif fmt in ("EDF", "BDF"):
            written.append(write_edf(result.signal, d / f"{name}.{fmt.lower()}"))
        npy = d / f"{name}.npy"
        _write_npy(npy, result.signal)
        written.append(npy)
        summary = summarize(result, data, outputs=written)
        summary["timings_s"]["write"] = round(time.perf_counter() - t0, 3)
        written.append(write_json_atomic(d / f"{name}.summary.json", summary))
    return staged.finals(written)
