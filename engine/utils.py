"""Small shared helpers: atomic output, device choice, hashing, system information."""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterator

__all__ = ["atomic_path", "write_json_atomic", "sha256_file", "choose_device", "device_name",
           "sys_info", "stem_of", "resources_dir"]


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike, *, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to *dest*; on success rename it onto *dest*.

    A crash or an exception leaves *dest* untouched (the previous file, or nothing).
    Write libraries that insist on an extension get the same suffix as *dest*.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    sfx = dest.suffix if suffix is None else suffix
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.stem}.", suffix=".part" + sfx, dir=dest.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    # mkstemp makes the file private (0600); outputs get the usual permissions under the umask
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)
    try:
        yield tmp_path
        os.replace(tmp_path, dest)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_json_atomic(dest: str | os.PathLike, obj: Any) -> Path:
    """Write *obj* as indented JSON to *dest* atomically."""
    with atomic_path(dest) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, default=_json_default) + "\n", encoding="utf-8")
    return Path(dest)


def _json_default(o: Any):
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def sha256_file(path: str | os.PathLike, *, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def stem_of(path: str | os.PathLike) -> str:
    """The input's file or folder name without extension (``a/b/scan.ome.tif`` -> ``scan``)."""
    name = Path(os.fspath(path).rstrip("/\\")).name
    for double in (".ome.tiff", ".ome.tif", ".fif.gz", ".nii.gz"):
        if name.lower().endswith(double):
            return name[: -len(double)]
    return Path(name).stem if "." in name else name


def choose_device(requested: str | None = None):
    """Pick the torch device: *requested* if given, else CUDA, then MPS, then CPU.

    Raises :class:`engine.errors.ModelError` when a requested device is absent.
    """
    import torch

    from engine.errors import ModelError

    if requested and requested != "auto":
        dev = torch.device(requested)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ModelError("CUDA was requested but no CUDA GPU is available; use --device cpu")
        if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise ModelError("MPS was requested but is not available; use --device cpu")
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def device_name(device) -> str:
    """Human-readable device name: the GPU's name, or 'CPU'."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return "Apple GPU (MPS)"
    return f"CPU ({os.cpu_count()} cores)"


def sys_info() -> str:
    """Versions of Python and the libraries Latent uses, and the compute device."""
    import importlib.metadata as md

    lines = [
        f"latent: {_version('latent')}",
        f"python: {sys.version.split()[0]} ({platform.platform()})",
    ]
    for dist in ("numpy", "scipy", "torch", "torchvision", "safetensors", "pydicom", "pylibjpeg",
                 "tifffile", "zarr", "openslide-python", "openslide-bin", "wfdb", "mne",
                 "scikit-image", "scikit-learn", "PySide6-Essentials", "pyqtgraph", "superqt"):
        try:
            lines.append(f"{dist}: {md.version(dist)}")
        except md.PackageNotFoundError:
            lines.append(f"{dist}: not installed")
    try:
        import torch

        lines.append(f"torch threads: {torch.get_num_threads()}")
        if torch.cuda.is_available():
            lines.append(f"CUDA: {torch.version.cuda}, device: {torch.cuda.get_device_name(0)}")
        else:
            lines.append("CUDA: not available (CPU only)")
    except ImportError:
        lines.append("torch: not importable")
    return "\n".join(lines)


def _version(dist: str) -> str:
    import importlib.metadata as md

    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return "unknown"


def resources_dir() -> Path:
    """The folder with bundled models and samples.

    ``$LATENT_RESOURCES`` if set; inside a PyInstaller bundle ``<bundle>/resources``;
    otherwise ``resources/`` at the top of the source tree.
    """
    env = os.environ.get("LATENT_RESOURCES")
    if env:
        return Path(env)
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        return Path(bundle) / "resources"
    return Path(__file__).resolve().parents[1] / "resources"
