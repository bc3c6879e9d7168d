"""Seed files of every reader family, from the real files in the shared data folder.

Families with a real file in ``shared/data`` use it as it is (DICOM, PNG, WFDB, EDF,
Bonn text). JPEG, TIFF, BDF, FIF and CSV are not in the shared data, so they are
generated once from the shared PNG / EDF into a cache folder (deterministically).
A seed is a list of files that make one input (a DICOM folder is three slices, a WFDB
record is ``.hea`` + ``.dat`` + ``.atr``); :func:`hashes` fingerprints every file so the
runner can prove that no seed changed.
"""
from __future__ import annotations

import hashlib
import os
import struct
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DATA", "FAMILIES", "Seed", "build_seeds", "hashes"]

DATA = Path(os.environ.get("LATENT_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))

#: Every family the harness fuzzes, in table order.
FAMILIES = ("dicom", "dicom-folder", "png", "jpeg", "tiff", "svs", "wfdb", "edf", "bdf", "fif", "text")

#: ImageDescription that makes OpenSlide read a tiled JPEG TIFF as an Aperio slide.
APERIO_DESCRIPTION = ("Aperio Image Library v11.2.1 \r\n500x500 [0,0 500x500] (128x128) JPEG/RGB Q=70"
                      "|AppMag = 20|MPP = 0.4990")

_PNGS = ("histo/crchisto/img1/img1.png", "histo/crchisto/img10/img10.png")
_EDF = "eeg/eegmmidb/S001R04.edf"


@dataclass(frozen=True)
class Seed:
    """One input: ``files`` (name -> source path), the one to open, and reader options."""

    family: str
    name: str
    files: dict[str, str]
    open: str  # the name among files (or "." for the folder itself) passed to engine.io.read
    options: dict


def _png_to(kind: str, src: Path, out: Path) -> None:
    import numpy as np
    from PIL import Image

    arr = np.asarray(Image.open(src).convert("RGB"))
    if kind == "jpeg":
        Image.fromarray(arr).save(out, "JPEG", quality=90)
    elif kind == "jpeg-progressive":
        Image.fromarray(arr).save(out, "JPEG", quality=85, progressive=True)
    else:
        import tifffile

        if kind == "tiff-tiled":
            tifffile.imwrite(out, arr, tile=(128, 128), photometric="rgb", metadata=None)
        elif kind == "tiff-strips":
            tifffile.imwrite(out, arr, rowsperstrip=32, photometric="rgb", metadata=None)
        elif kind == "svs":
            tifffile.imwrite(out, arr, tile=(128, 128), photometric="rgb", compression="jpeg",
                             description=APERIO_DESCRIPTION, metadata=None)
        elif kind == "tiff-zlib":
            tifffile.imwrite(out, arr, tile=(128, 128), photometric="rgb", compression="zlib",
                             metadata=None)
        else:
            raise ValueError(kind)


def _edf_to_bdf(src: Path, out: Path, records: int = 20) -> None:
    """A BDF (24-bit) with the EDF's header, channels and first *records* data records."""
    raw = src.read_bytes()
    ns = int(raw[252:256])
    hdr = 256 + 256 * ns
    spr = [int(raw[256 + ns * 216 + 8 * i:256 + ns * 216 + 8 * i + 8]) for i in range(ns)]
    rec_bytes = 2 * sum(spr)
    head = bytearray(raw[:hdr])
    head[0:8] = b"\xffBIOSEMI"
    head[192:236] = b"24BIT".ljust(44)
    head[236:244] = str(records).encode().ljust(8)
    body = bytearray()
    for r in range(records):
        rec = raw[hdr + r * rec_bytes:hdr + (r + 1) * rec_bytes]
        for (v,) in struct.iter_unpack("<h", rec):
            body += struct.pack("<i", v)[:3]  # same digital values in 24 bits
    out.write_bytes(bytes(head + body))


def _edf_to_fif(src: Path, out: Path) -> None:
    import mne

    raw = mne.io.read_raw_edf(src, preload=True, verbose="error")
    raw.crop(0, 4.0).pick(list(range(8)))
    raw.save(out, overwrite=True, verbose="error")


def _edf_to_csv(src: Path, out: Path) -> None:
    import mne

    raw = mne.io.read_raw_edf(src, preload=True, verbose="error")
    data = raw.get_data(picks=list(range(4)), start=0, stop=640) * 1e6
    lines = [",".join(n.strip(".") for n in raw.ch_names[:4])]
    lines += [",".join(f"{v:.2f}" for v in col) for col in data.T]
    out.write_text("\n".join(lines) + "\n")


def _generated(cache: Path) -> dict[str, Path]:
    cache.mkdir(parents=True, exist_ok=True)
    jobs = {
        "img1.jpg": lambda o: _png_to("jpeg", DATA / _PNGS[0], o),
        "img10-progressive.jpg": lambda o: _png_to("jpeg-progressive", DATA / _PNGS[1], o),
        "img1-tiled.tif": lambda o: _png_to("tiff-tiled", DATA / _PNGS[0], o),
        "img10-strips.tif": lambda o: _png_to("tiff-strips", DATA / _PNGS[1], o),
        "img1-zlib.tif": lambda o: _png_to("tiff-zlib", DATA / _PNGS[0], o),
        "img10-aperio.svs": lambda o: _png_to("svs", DATA / _PNGS[1], o),
        "S001R04.bdf": lambda o: _edf_to_bdf(DATA / _EDF, o),
        "S001R04_raw.fif": lambda o: _edf_to_fif(DATA / _EDF, o),
        "S001R04.csv": lambda o: _edf_to_csv(DATA / _EDF, o),
    }
    out = {}
    for name, make in jobs.items():
        p = cache / name
        if not p.is_file():
            tmp = p.with_name(p.stem + ".part" + p.suffix)  # keep the suffix: MNE checks it
            make(tmp)
            os.replace(tmp, p)
        out[name] = p
    return out


def build_seeds(cache: str | os.PathLike) -> dict[str, list[Seed]]:
    """Every family's seeds; generated seeds are written into *cache* once."""
    g = _generated(Path(cache))
    d = DATA
    liver = {f"{k:02d}.dcm": str(d / f"ct/dcmqi_liver_ct3/{k:02d}.dcm") for k in (1, 2, 3)}
    wfdb = {f"100.{e}": str(d / f"ecg/mitdb/100.{e}") for e in ("hea", "dat", "atr")}
    return {
        "dicom": [Seed("dicom", "CT_small", {"CT_small.dcm": str(d / "ct/single/CT_small.dcm")},
                       "CT_small.dcm", {}),
                  Seed("dicom", "eCT_Supplemental",
                       {"eCT_Supplemental.dcm": str(d / "ct/single/eCT_Supplemental.dcm")},
                       "eCT_Supplemental.dcm", {})],
        "dicom-folder": [Seed("dicom-folder", "liver_ct3", liver, ".", {})],
        "png": [Seed("png", Path(p).stem, {Path(p).name: str(d / p)}, Path(p).name, {}) for p in _PNGS],
        "jpeg": [Seed("jpeg", n, {n: str(g[n])}, n, {}) for n in ("img1.jpg", "img10-progressive.jpg")],
        "tiff": [Seed("tiff", n, {n: str(g[n])}, n, {})
                 for n in ("img1-tiled.tif", "img10-strips.tif", "img1-zlib.tif")],
        "svs": [Seed("svs", "img10-aperio", {"img10-aperio.svs": str(g["img10-aperio.svs"])}, "img10-aperio.svs",
                     {})],
        "wfdb": [Seed("wfdb", "mitdb-100", wfdb, "100.hea", {})],
        "edf": [Seed("edf", "S001R04", {"S001R04.edf": str(d / _EDF)}, "S001R04.edf", {})],
        "bdf": [Seed("bdf", "S001R04", {"S001R04.bdf": str(g["S001R04.bdf"])}, "S001R04.bdf", {})],
        "fif": [Seed("fif", "S001R04", {"S001R04_raw.fif": str(g["S001R04_raw.fif"])},
                     "S001R04_raw.fif", {})],
        "text": [Seed("text", "bonn-O001", {"O001.txt": str(d / "eeg/bonn/B_O/O001.txt")}, "O001.txt",
                      {"sfreq": 173.61}),
                 Seed("text", "S001R04-csv", {"S001R04.csv": str(g["S001R04.csv"])}, "S001R04.csv",
                      {"sfreq": 160.0})],
    }


def hashes(seeds: dict[str, list[Seed]]) -> dict[str, str]:
    """sha256 of every seed file (to check that no input ever changes)."""
    out = {}
    for family in seeds.values():
        for seed in family:
            for src in seed.files.values():
                if src not in out:
                    out[src] = hashlib.sha256(Path(src).read_bytes()).hexdigest()
    return out
