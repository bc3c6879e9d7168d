"""Step 4 of ``installer/build.py``: the finished PyInstaller folder packaged as a portable
``.tar.gz`` and a ``.deb`` (Linux) or an Inno Setup installer (Windows)."""
from __future__ import annotations

import os
import platform
import shutil
from pathlib import Path

from build_common import DEB_CONTROL_TEMPLATE, ROOT, log, run

__all__ = ["package_tar", "package_deb", "package_windows"]


def _copy_tree(src: Path, dst: Path) -> None:
    """Hard-link copy where possible (same file system: instant, no extra space)."""
    if dst.exists():
        shutil.rmtree(dst)

    def link(s, d):
        try:
            os.link(s, d)
        except OSError:
            shutil.copy2(s, d)
    shutil.copytree(src, dst, symlinks=True, copy_function=link)


def _tar_gz(src_dir: Path, out: Path) -> None:
    comp = ["--use-compress-program=pigz"] if shutil.which("pigz") else ["-z"]
    run(["tar", *comp, "-cf", out, "--owner=0", "--group=0", "--numeric-owner",
         "-C", src_dir.parent, src_dir.name])


def package_tar(bundle: Path, variant: str, version: str) -> Path:
    name = f"latent-{version}-linux-{platform.machine()}-{variant}"
    stage = ROOT / "build" / f"stage-tar-{variant}" / name
    if stage.parent.exists():
        shutil.rmtree(stage.parent)
    stage.mkdir(parents=True)
    _copy_tree(bundle, stage / "app")
    shutil.copy(ROOT / "installer" / "linux" / "latent.sh", stage / "latent")
    (stage / "latent").chmod(0o755)
    share = stage / "share"
    share.mkdir()
    shutil.copy(ROOT / "resources" / "icons" / "latent.png", share / "latent.png")
    desktop = (ROOT / "installer" / "linux" / "latent.desktop").read_text(encoding="utf-8")
    (share / "latent.desktop").write_text(desktop, encoding="utf-8")
    (stage / "README.txt").write_text(PORTABLE_README.format(version=version, variant=variant), encoding="utf-8")
    out = ROOT / "dist" / f"{name}.tar.gz"
    _tar_gz(stage, out)
    return out


PORTABLE_README = """Latent {version} ({variant} build), portable Linux bundle.

Run:            ./latent [FILE]
Check install:  ./latent --selftest     (opens every bundled sample, runs every task; exit 0 = ok)
Batch commands: ./latent engine --help
Menu entry:     edit Exec= in share/latent.desktop to the full path of ./latent, then copy it
                to ~/.local/share/applications/ and share/latent.png to ~/.local/share/icons/
Uninstall:      delete this folder.

Qt needs the X11/xcb runtime libraries that every desktop has; on a minimal system:
  sudo apt-get install libxcb-cursor0 libxkbcommon-x11-0 libxcb-icccm4 libxcb-image0 \\
       libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 libxcb-shape0 libxcb-xinerama0 \\
       libxcb-xkb1 libegl1 libgl1 libfontconfig1 libdbus-1-3
Nothing is downloaded at run time: models and samples are inside app/_internal/resources.
"""

VARIANT_NOTES = {
    "cpu": "PyTorch CPU build; runs on any x86-64 machine, no GPU used.",
    "cuda": ("PyTorch with the CUDA runtime libraries bundled; uses an NVIDIA GPU when the driver is installed, "
             "the CPU otherwise."),
}


def package_deb(bundle: Path, variant: str, version: str) -> Path:
    if not shutil.which("dpkg-deb"):
        raise SystemExit("dpkg-deb not found: install dpkg (Debian/Ubuntu) or build with --formats tar")
    pkg = "latent" if variant == "cpu" else "latent-cuda"
    other = "latent-cuda" if variant == "cpu" else "latent"
    stage = ROOT / "build" / f"stage-deb-{variant}"
    if stage.exists():
        shutil.rmtree(stage)
    _copy_tree(bundle, stage / "opt" / "latent")
    (stage / "usr" / "bin").mkdir(parents=True)
    shutil.copy(ROOT / "installer" / "linux" / "latent.sh", stage / "usr" / "bin" / "latent")
    (stage / "usr" / "bin" / "latent").chmod(0o755)
    apps = stage / "usr" / "share" / "applications"
    apps.mkdir(parents=True)
    shutil.copy(ROOT / "installer" / "linux" / "latent.desktop", apps / "latent.desktop")
    icons = stage / "usr" / "share" / "icons" / "hicolor" / "256x256" / "apps"
    icons.mkdir(parents=True)
    shutil.copy(ROOT / "resources" / "icons" / "latent.png", icons / "latent.png")
    doc = stage / "usr" / "share" / "doc" / pkg
    doc.mkdir(parents=True)
    samples_readme = ROOT / "resources" / "samples" / "README.md"
    (doc / "copyright").write_text(
        "Latent: proprietary; see the project licence.\n\nBundled third-party software: Python, Qt "
        "(LGPLv3, PySide6), PyTorch (BSD), NumPy/SciPy/scikit-image/scikit-learn (BSD), MNE (BSD), "
        "OpenCV (Apache-2.0), wfdb (MIT), pydicom (MIT), pylibjpeg plugins, OpenSlide (LGPL-2.1), imagecodecs (BSD); "
        "their licence files are inside /opt/latent/_internal/*.dist-info.\n\nBundled samples:\n\n"
        + (samples_readme.read_text(encoding="utf-8") if samples_readme.exists() else ""), encoding="utf-8")
    debian = stage / "DEBIAN"
    debian.mkdir()
    size_kb = sum(f.stat().st_size for f in stage.rglob("*") if f.is_file() and not f.is_symlink()) // 1024 + 1
    control = DEB_CONTROL_TEMPLATE.read_text(encoding="utf-8")
    for key, value in {"@PACKAGE@": pkg, "@VERSION@": f"{version}-1", "@INSTALLED_SIZE@": str(size_kb),
                       "@CONFLICTS@": other, "@VARIANT@": variant,
                       "@VARIANT_NOTE@": VARIANT_NOTES[variant]}.items():
        control = control.replace(key, value)
    (debian / "control").write_text(control, encoding="utf-8")
    for script in ("postinst", "postrm"):
        shutil.copy(ROOT / "installer" / "linux" / script, debian / script)
        (debian / script).chmod(0o755)
    out = ROOT / "dist" / f"{pkg}_{version}-1_amd64.deb"
    run(["dpkg-deb", "--root-owner-group", "-Zgzip", "-z6", "--build", stage, out])
    return out


def package_windows(bundle: Path, variant: str, version: str, iscc: str | None) -> list[Path]:
    iscc = iscc or shutil.which("ISCC") or shutil.which("iscc")
    default = Path(os.environ.get("ProgramFiles(x86)", r"C:\Program Files (x86)")) / "Inno Setup 6" / "ISCC.exe"
    if not iscc and default.exists():
        iscc = str(default)
    if not iscc:
        log("Inno Setup (ISCC.exe) not found: only the PyInstaller folder was built")
        return []
    run([iscc, f"/DAppVersion={version}", f"/DVariant={variant}", f"/DBundleDir={bundle}",
         f"/DOutputDir={ROOT / 'dist'}", ROOT / "installer" / "windows" / "latent.iss"])
    return sorted((ROOT / "dist").glob(f"latent-setup-{version}-{variant}*"))
