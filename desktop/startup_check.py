"""Before the window: are the system libraries of Qt's platform plugin installed?

On Linux a missing X11 library makes Qt abort with a misleading message (it names
``libxcb-cursor0`` whatever is really missing). :func:`check_platform` runs ``ldd`` on the
platform plugin Qt will load (and on its Qt dependency), maps every missing soname to its
Debian package and returns the exact ``apt-get install`` line. Nothing here imports Qt's GUI
modules, so the check runs before a QApplication exists; it costs a few ``ldd`` calls.
"""
from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PlatformReport", "check_platform", "debian_package", "apt_line", "missing_sonames",
           "platform_plugin", "PLUGIN_FILES"]

#: platform name -> the plugin file Qt loads for it (the ones that need system X11/Wayland libraries)
PLUGIN_FILES = {"xcb": "libqxcb.so", "wayland": "libqwayland.so"}
#: platforms that need no display libraries (automation, tests): no check
NO_CHECK = ("offscreen", "minimal", "vnc", "eglfs", "linuxfb", "vkkhrdisplay", "minimalegl")
#: sonames whose Debian package does not follow the naming rule
PACKAGE_EXCEPTIONS = {
    "libglib-2.0.so.0": "libglib2.0-0", "libgthread-2.0.so.0": "libglib2.0-0",
    "libgobject-2.0.so.0": "libglib2.0-0", "libgio-2.0.so.0": "libglib2.0-0",
    "libgmodule-2.0.so.0": "libglib2.0-0",
}
_NOT_FOUND = re.compile(r"^\s*(\S+)\s*=>\s*not found", re.MULTILINE)


def debian_package(soname: str) -> str:
    """The Debian package that ships *soname* by Debian's naming rule (``libxcb-icccm.so.4`` ->
    ``libxcb-icccm4``, ``libxkbcommon-x11.so.0`` -> ``libxkbcommon-x11-0``, ``libEGL.so.1`` ->
    ``libegl1``); ``""`` for a name that is not ``lib*.so.N``."""
    if soname in PACKAGE_EXCEPTIONS:
        return PACKAGE_EXCEPTIONS[soname]
    m = re.fullmatch(r"(lib[\w.+-]+?)\.so\.(\d+)(?:\.[\d.]+)?", soname)
    if not m:
        return ""
    name, major = m.group(1).lower(), m.group(2)
    return f"{name}-{major}" if name[-1].isdigit() else f"{name}{major}"


def apt_line(sonames) -> str:
    """``sudo apt-get install <packages>`` for the missing *sonames* (sorted, each package once)."""
    packages = sorted({debian_package(s) or s for s in sonames})
    return "sudo apt-get install " + " ".join(packages)


def missing_sonames(ldd_output: str) -> list[str]:
    """The libraries ``ldd`` reports as ``not found``, in order, each once."""
    seen: dict[str, None] = {}
    for name in _NOT_FOUND.findall(ldd_output):
        seen.setdefault(name, None)
    return list(seen)


def _plugins_dir() -> Path | None:
    spec = importlib.util.find_spec("PySide6")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0]) / "Qt" / "plugins"
    return folder if folder.is_dir() else None


def platform_plugin(env=None) -> tuple[str, Path | None]:
    """The platform Qt will use (``QT_QPA_PLATFORM``, else xcb) and its plugin file, if it needs a check."""
    env = os.environ if env is None else env
    name = (env.get("QT_QPA_PLATFORM") or "xcb").split(";")[0].split(":")[0].strip().lower()
    if name in NO_CHECK or name not in PLUGIN_FILES:
        return name, None
    plugins = _plugins_dir()
    path = plugins / "platforms" / PLUGIN_FILES[name] if plugins else None
    return name, path if path is not None and path.is_file() else None


def _ldd(path: Path) -> str:
    try:
        return subprocess.run(["ldd", str(path)], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def _qt_dependencies(ldd_output: str) -> list[Path]:
    """The Qt libraries of PySide6 the plugin links (``libQt6XcbQpa.so.6``): checked too."""
    out = []
    for line in ldd_output.splitlines():
        parts = line.split("=>")
        if len(parts) == 2 and parts[0].strip().startswith("libQt6"):
            target = parts[1].strip().split(" (")[0]
            if target and target != "not found" and os.path.isfile(target):
                out.append(Path(target))
    return out


@dataclass(frozen=True)
class PlatformReport:
    platform: str
    plugin: str | None
    missing: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.missing

    def message(self) -> str:
        """What to print instead of Qt's message: which libraries, and the line that installs them."""
        return (f"Latent cannot open its window: the Qt '{self.platform}' platform plugin needs system "
                f"libraries that are not installed: {', '.join(self.missing)}.\n"
                f"Install them with:\n\n    {apt_line(self.missing)}\n\n"
                "(or run unattended with QT_QPA_PLATFORM=offscreen)")


def check_platform(env=None, ldd=_ldd) -> PlatformReport:
    """``ldd`` the platform plugin and its Qt dependencies; the sonames that do not resolve.

    Only on Linux with ``ldd``; elsewhere, and for platforms without system display libraries
    (offscreen, minimal), the report is empty (ok).
    """
    if not sys.platform.startswith("linux") or (ldd is _ldd and shutil.which("ldd") is None):
        return PlatformReport("", None)
    name, plugin = platform_plugin(env)
    if plugin is None:
        return PlatformReport(name, None)
    first = ldd(plugin)
    outputs = [first] + [ldd(dep) for dep in _qt_dependencies(first)]
    missing = missing_sonames("\n".join(outputs))
    return PlatformReport(name, str(plugin), tuple(missing))


def blocks_start(report: PlatformReport, env=None) -> bool:
    """A missing library stops the start when Qt has no other platform to fall back on: xcb asked
    for explicitly, or the default (xcb) outside a Wayland session."""
    env = os.environ if env is None else env
    if report.ok:
        return False
    return bool(env.get("QT_QPA_PLATFORM")) or not env.get("WAYLAND_DISPLAY")
