"""Build the Latent installers: ``python installer/build.py --variant cpu|cuda``.

Steps (each can be skipped for iteration, see ``--help``):

1. **Build environment.** ``cuda``: the Python running this script (the project venv,
   whose torch is PyPI's default Linux wheel, the CUDA build, with the nvidia-* runtime
   packages). ``cpu``: a separate venv (``.venv-installer-cpu``) holding a CPU-only torch
   (``--torch-spec``, from ``--torch-index``), the project installed ``--no-deps`` and
   every other dependency pinned to the project venv's versions, except torchvision
   (only training code imports it, lazily; there is no CPU build of it here).
2. **PyInstaller**, one-folder, with ``installer/latent.spec`` -> ``dist/latent-<variant>/``.
3. **Audit** the bundle: no test data, no unused Qt module, no CUDA library in the cpu
   variant, models/samples/icons present; writes ``BUILD-INFO.json`` into the bundle.
4. **Package** (``installer/package_formats.py``): Linux ``.tar.gz`` (portable, with a
   launcher script) and ``.deb`` (dpkg-deb; /opt/latent, /usr/bin/latent, desktop entry, icon);
   Windows: Inno Setup (``installer/windows/latent.iss``) when ``ISCC.exe`` is found.

Sizes of every artifact are printed and written to ``dist/sizes-<variant>.json``.
"""
from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bundle_rules as rules  # noqa: E402
from build_common import DEB_CONTROL_TEMPLATE, ROOT, log, run  # noqa: E402
from package_formats import package_deb, package_tar, package_windows  # noqa: E402

IS_WIN = sys.platform == "win32"
IS_LINUX = sys.platform.startswith("linux")
DEFAULT_CPU_TORCH = "torch" if not IS_LINUX else "torch==2.13.0+cpu"
SAMPLE_MODALITIES = ("ct", "histology", "ecg", "eeg")


def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if IS_WIN else "bin/python")


# --------------------------------------------------------------------------- 1. environment
def runtime_requirements() -> list[str]:
    """pyproject dependencies without torch/torchvision, plus the installer extra."""
    proj = project()
    reqs = [r for r in proj["dependencies"] if not _req_name(r) in ("torch", "torchvision")]
    return reqs + proj.get("optional-dependencies", {}).get("installer", ["pyinstaller>=6.8"])


def _req_name(req: str) -> str:
    import re

    return re.split(r"[\s<>=!~;\[]", req, maxsplit=1)[0].lower().replace("_", "-")


def constraints_from(python: str) -> str:
    """The versions installed in the project venv, so both variants bundle the same libraries."""
    out = subprocess.run([python, "-m", "pip", "freeze", "--exclude-editable"], capture_output=True,
                         text=True, check=False).stdout
    keep = []
    for line in out.splitlines():
        name = _req_name(line)
        if not line or line.startswith(("-e", "#")) or " @ " in line:
            continue
        if name in ("torch", "torchvision", "torchaudio", "triton", "latent") or name.startswith("nvidia-"):
            continue
        keep.append(line.strip())
    return "\n".join(keep) + "\n"


def ensure_cpu_env(args) -> Path:
    venv = Path(args.venv or ROOT / ".venv-installer-cpu")
    py = venv_python(venv)
    constraints = constraints_from(sys.executable) if not args.no_constraints else ""
    reqs = runtime_requirements()
    key = hashlib.sha256(json.dumps([args.torch_spec, args.torch_index, reqs, constraints]).encode()).hexdigest()
    stamp = venv / ".latent-build-stamp"
    if py.exists() and stamp.exists() and stamp.read_text().strip() == key:
        log(f"cpu build venv up to date: {venv}")
    else:
        if not py.exists():
            run([sys.executable, "-m", "venv", venv])
            run([py, "-m", "pip", "install", "--upgrade", "pip"])
        torch_cmd = [py, "-m", "pip", "install", args.torch_spec]
        if args.torch_index:
            torch_cmd += ["--index-url", args.torch_index]  # only CPU wheels can match
        run(torch_cmd)
        tmp = ROOT / "build" / "installer-cpu-constraints.txt"
        tmp.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(constraints, encoding="utf-8")
        run([py, "-m", "pip", "install", *reqs, "-c", tmp])
        run([py, "-m", "pip", "install", "--no-deps", "-e", ROOT])
        stamp.write_text(key, encoding="utf-8")
    check = subprocess.run(
        [py, "-c", "import torch, importlib.metadata as m; "
                   "n=[d.metadata['Name'] for d in m.distributions() if d.metadata['Name'].lower().startswith('nvidia')]; "
                   "print(torch.__version__, torch.version.cuda, len(n))"],
        capture_output=True, text=True, check=True).stdout.split()
    if check[1] != "None" or check[2] != "0":
        raise SystemExit(f"the cpu build venv has a CUDA torch ({check[0]}, CUDA {check[1]}, "
                         f"{check[2]} nvidia packages); rebuild it with a CPU wheel, e.g. "
                         "--torch-spec torch --torch-index https://download.pytorch.org/whl/cpu")
    log(f"cpu variant: torch {check[0]} (CPU build) from {venv}")
    return py


def ensure_cuda_env(args) -> Path:
    py = Path(args.python or sys.executable)
    ver = subprocess.run([py, "-c", "import torch; print(torch.__version__, torch.version.cuda)"],
                         capture_output=True, text=True, check=True).stdout.split()
    if ver[1] == "None":
        log(f"WARNING: {py} has a CPU-only torch ({ver[0]}); the 'cuda' bundle will not use a GPU")
    else:
        log(f"cuda variant: torch {ver[0]} (CUDA {ver[1]}) from {py}")
    if subprocess.run([py, "-c", "import PyInstaller"], capture_output=True).returncode:
        run([py, "-m", "pip", "install", *project().get("optional-dependencies", {}).get("installer", [])])
    return py


# --------------------------------------------------------------------------- 2. PyInstaller
def pyinstaller(py: Path, variant: str) -> Path:
    work = ROOT / "build" / f"pyinstaller-{variant}"
    dist_tmp = work / "dist"
    env = dict(os.environ, LATENT_VARIANT=variant, PYTHONNOUSERSITE="1")
    run([py, "-m", "PyInstaller", ROOT / "installer" / "latent.spec", "--noconfirm",
         "--log-level", "WARN", "--distpath", dist_tmp, "--workpath", work / "work"], env=env, cwd=ROOT)
    bundle = ROOT / "dist" / f"latent-{variant}"
    if bundle.exists():
        shutil.rmtree(bundle)
    bundle.parent.mkdir(exist_ok=True)
    shutil.move(str(dist_tmp / "latent"), str(bundle))
    normalize_permissions(bundle)
    return bundle


def normalize_permissions(bundle: Path) -> None:
    """World-readable files (0644, 0755 if executable): the installed app runs as any user.

    Files written through ``engine._shared.files.atomic_path`` (mkstemp) are 0600, the bundled
    weights among them; installed by root they would be unreadable to everyone else.
    """
    if IS_WIN:
        return
    for p in [bundle, *bundle.rglob("*")]:
        if p.is_symlink():
            continue
        mode = p.stat().st_mode
        want = 0o755 if p.is_dir() or mode & 0o111 else 0o644
        if mode & 0o7777 != want:
            p.chmod(want)


def internal(bundle: Path) -> Path:
    return bundle / "_internal"


# --------------------------------------------------------------------------- 3. audit
def audit(bundle: Path, variant: str, py: Path) -> dict:
    files = [p for p in bundle.rglob("*") if p.is_file() or p.is_symlink()]
    rel = [p.relative_to(internal(bundle)).as_posix() if internal(bundle) in p.parents else p.name
           for p in files]
    problems = []
    problems += [f"test data: {r}" for r in rel if rules.is_test_data(r)]
    problems += [f"unused Qt module: {r}" for r in rel if rules.is_forbidden_qt(r)]
    if variant == "cpu":
        problems += [f"CUDA library in the cpu variant: {r}" for r in rel if rules.is_cuda_lib(r)]
    res = internal(bundle) / "resources"
    if not (res / "models" / "manifest.json").exists():
        problems.append("resources/models/manifest.json missing")
    for m in SAMPLE_MODALITIES:
        if not any((res / "samples" / m).glob("*")):
            problems.append(f"no {m} sample in resources/samples/{m}")
    if not (res / "icons" / "latent.png").exists():
        problems.append("resources/icons/latent.png missing")
    for k in ("bw", "ma", "em"):  # NSTDB noise for fine-tuning ecg-dae (engine.training.finetune)
        if not (res / "noise" / f"nstdb_{k}.npy").exists():
            problems.append(f"resources/noise/nstdb_{k}.npy missing")
    if not (res / "noise" / "README.md").exists():
        problems.append("resources/noise/README.md (ODC-By attribution) missing")
    for forbidden in ("tkinter", "IPython", "pytest", "_pytest", "torchvision"):
        if (internal(bundle) / forbidden).exists():
            problems.append(f"excluded package bundled: {forbidden}")
    if IS_LINUX and shutil.which("ldd"):
        missing, declared = missing_libraries(bundle)
        problems += [f"unresolved library: {m}" for m in missing]
        for lib, pkg in sorted(declared.items()):
            log(f"note: {lib} is not installed on this build machine; the .deb depends on {pkg}, "
                "which provides it on the target")
    if problems:
        for p in problems[:40]:
            log("AUDIT: " + p)
        raise SystemExit(f"bundle audit failed: {len(problems)} problem(s)")

    def du(path: Path) -> int:
        if path.is_file():
            return path.stat().st_size
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())

    parts = {name: du(internal(bundle) / name) for name in ("torch", "PySide6", "nvidia", "resources",
                                                             "scipy", "sklearn", "skimage", "mne")
             if (internal(bundle) / name).exists()}
    torch_info = subprocess.run([py, "-c", "import torch, json; print(json.dumps([torch.__version__, torch.version.cuda]))"],
                                capture_output=True, text=True, check=True).stdout
    tv, cuda = json.loads(torch_info)
    git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    info = {
        "name": "latent", "version": project()["version"], "variant": variant, "git": git or None,
        "built": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "platform": f"{platform.system()} {platform.machine()}", "python": platform.python_version(),
        "torch": tv, "torch_cuda": cuda, "bundle_bytes": du(bundle), "parts_bytes": parts,
    }
    (internal(bundle) / "BUILD-INFO.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    log(f"audit ok: {len(files)} files, {info['bundle_bytes'] / 2**20:.0f} MiB; "
        + ", ".join(f"{k} {v / 2**20:.0f} MiB" for k, v in parts.items()))
    return info


def missing_libraries(bundle: Path) -> tuple[list[str], dict[str, str]]:
    """``ldd`` every shared object in the bundle; what resolves neither inside nor on this system.

    Returns ``(missing, declared)``: *declared* maps the unresolved system libraries that a package
    in the .deb's ``Depends`` provides (Qt's xcb runtime, absent on a headless build machine) to that
    package; they are not problems. Optional plugin dependencies (Wayland, GTK3 theme) are allowed
    to be missing.
    """
    depends = rules.declared_packages(DEB_CONTROL_TEMPLATE.read_text(encoding="utf-8"))
    declared: dict[str, str] = {}
    inner = internal(bundle)
    dirs = sorted({str(p.parent) for p in inner.rglob("*.so*") if p.is_file()})
    env = dict(os.environ, LD_LIBRARY_PATH=":".join(dirs))
    missing = set()
    for so in inner.rglob("*.so*"):
        if not so.is_file() or so.is_symlink():
            continue
        out = subprocess.run(["ldd", str(so)], capture_output=True, text=True, env=env).stdout
        for line in out.splitlines():
            if "not found" in line:
                lib = line.split("=>")[0].strip()
                if lib in rules.OPTIONAL_SYSTEM_LIBS:
                    continue
                package = rules.debian_package(lib)
                if package in depends:
                    declared[lib] = package
                else:
                    missing.add(f"{lib} (needed by {so.relative_to(inner)})")
    return sorted(missing), declared


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variant", choices=("cpu", "cuda"), default="cpu")
    ap.add_argument("--venv", help="cpu variant: build venv (default .venv-installer-cpu)")
    ap.add_argument("--python", help="cuda variant: the Python whose torch is bundled (default: this one)")
    ap.add_argument("--torch-spec", default=os.environ.get("LATENT_CPU_TORCH", DEFAULT_CPU_TORCH),
                    help=f"cpu variant: pip requirement for a CPU-only torch (default {DEFAULT_CPU_TORCH})")
    ap.add_argument("--torch-index", default=os.environ.get("LATENT_CPU_TORCH_INDEX"),
                    help="cpu variant: the index torch is installed from (only it), e.g. "
                         "https://download.pytorch.org/whl/cpu; default: pip's configured indexes")
    ap.add_argument("--no-constraints", action="store_true",
                    help="cpu variant: do not pin libraries to the project venv's versions")
    ap.add_argument("--formats", default="tar,deb" if IS_LINUX else ("iss" if IS_WIN else ""),
                    help="comma list: tar, deb (Linux), iss (Windows)")
    ap.add_argument("--skip-pyinstaller", action="store_true", help="package the existing dist/latent-<variant>")
    ap.add_argument("--iscc", help="path to ISCC.exe (Windows)")
    args = ap.parse_args(argv)

    version = project()["version"]
    py = ensure_cpu_env(args) if args.variant == "cpu" else ensure_cuda_env(args)
    bundle = ROOT / "dist" / f"latent-{args.variant}"
    if not args.skip_pyinstaller:
        bundle = pyinstaller(py, args.variant)
    elif not bundle.exists():
        raise SystemExit(f"{bundle} does not exist; build it first")
    normalize_permissions(bundle)
    info = audit(bundle, args.variant, py)

    artifacts: list[Path] = [bundle]
    formats = {f.strip() for f in args.formats.split(",") if f.strip()}
    if "tar" in formats:
        artifacts.append(package_tar(bundle, args.variant, version))
    if "deb" in formats:
        artifacts.append(package_deb(bundle, args.variant, version))
    if "iss" in formats:
        artifacts += package_windows(bundle, args.variant, version, args.iscc)

    sizes = {}
    for a in artifacts:
        size = info["bundle_bytes"] if a == bundle else a.stat().st_size
        sizes[a.name + ("/" if a.is_dir() else "")] = size
        log(f"{a.relative_to(ROOT)}: {size / 2**20:,.0f} MiB")
    (ROOT / "dist" / f"sizes-{args.variant}.json").write_text(
        json.dumps({"variant": args.variant, "torch": info["torch"], "torch_cuda": info["torch_cuda"],
                    "artifacts_bytes": sizes, "parts_bytes": info["parts_bytes"]}, indent=2) + "\n",
        encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
