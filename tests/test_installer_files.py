"""Static checks of the installer sources (fast; the real build is `make installer`).

The PyInstaller spec's include/exclude rules, the Inno Setup script, the deb control
file, the desktop entry, the CI workflow, and the self-test's own logic (network guard,
result checks, and a real in-process run on the bundled samples and models).
"""
from __future__ import annotations

import configparser
import re
import socket
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
INSTALLER = REPO / "installer"
sys.path.insert(0, str(INSTALLER))
import bundle_rules as rules  # noqa: E402

QT_DEPENDS = ("libxcb-cursor0", "libxkbcommon-x11-0", "libxcb-icccm4", "libxcb-image0",
              "libxcb-keysyms1", "libxcb-randr0", "libxcb-render-util0", "libxcb-shape0",
              "libxcb-xinerama0", "libxcb-xkb1", "libegl1", "libgl1", "libfontconfig1", "libdbus-1-3")


# --------------------------------------------------------------------------- spec + rules
def test_spec_is_one_folder_and_uses_the_rules():
    spec = (INSTALLER / "latent.spec").read_text(encoding="utf-8")
    assert "COLLECT(" in spec and "exclude_binaries=True" in spec, "one-folder mode needs COLLECT"
    assert "excludes=rules.EXCLUDES" in spec
    assert "a.datas = [e for e in a.datas if rules.keep_file" in spec
    assert "upx=False" in spec
    compile(spec, "latent.spec", "exec")  # it is valid Python


@pytest.mark.parametrize("module", [
    "PySide6.QtWebEngineCore", "PySide6.QtWebEngineWidgets", "PySide6.Qt3DCore", "PySide6.QtMultimedia",
    "PySide6.QtQuick", "PySide6.QtQml", "PySide6.QtCharts", "PySide6.QtDataVisualization", "PySide6.QtPdf",
    "PySide6.QtNetwork", "PySide6.QtSql", "PySide6.QtTest", "PySide6.QtBluetooth",
    "tkinter", "IPython", "pytest", "torchvision",
])
def test_unused_modules_are_excluded(module):
    assert not rules.keep_module(module)
    assert not rules.keep_module(module + ".sub")


@pytest.mark.parametrize("module", ["matplotlib", "dask", "distributed", "highdicom", "nibabel", "dicognito"])
def test_modules_the_exports_and_batch_need_are_bundled(module):
    assert rules.keep_module(module) and rules.keep_module(module + ".sub")


@pytest.mark.parametrize("module", ["PySide6.QtCore", "PySide6.QtGui", "PySide6.QtWidgets", "PySide6.QtSvg",
                                    "torch", "torch.nn", "mne.io.edf", "scipy.signal", "engine.tasks",
                                    "desktop.selftest", "numpy.testing", "pydicom.pixels.decoders.pylibjpeg",
                                    "torch.testing._internal.logging_tensor"])
def test_needed_modules_are_kept(module):
    assert rules.keep_module(module)


@pytest.mark.parametrize("name", ["scipy.signal.tests.test_filter_design", "mne.io.tests", "test",
                                  "skimage.conftest", "torch.utils.tensorboard"])
def test_test_modules_are_dropped(name):
    assert not rules.keep_module(name)


@pytest.mark.parametrize("path, keep", [
    ("resources/models/manifest.json", True),
    ("resources/samples/ecg/119.dat", True),
    ("resources/icons/latent.png", True),
    ("resources/icons/make_icons.py", False),
    ("pydicom/data/test_files/CT_small.dcm", False),
    ("scipy/io/tests/data/a.mat", False),
    ("mne/data/coil_def.dat", True),
    ("mne/channels/data/montages/standard_1020.elc", True),
    ("PySide6/Qt/lib/libQt6WebEngineCore.so.6", False),
    ("PySide6/Qt/lib/libQt6Quick.so.6", False),
    ("PySide6/Qt/lib/libQt6Network.so.6", False),
    ("PySide6/Qt6Pdf.dll", False),
    ("PySide6/QtQml.abi3.so", False),
    ("PySide6/Qt/plugins/sqldrivers/libqsqlite.so", False),
    ("PySide6/Qt/plugins/imageformats/libqpdf.so", False),
    ("PySide6/Qt/plugins/platforms/libqvnc.so", False),
    ("PySide6/Qt/lib/libQt6Gui.so.6", True),
    ("PySide6/Qt/lib/libQt6Widgets.so.6", True),
    ("PySide6/Qt/lib/libQt6XcbQpa.so.6", True),
    ("PySide6/Qt/plugins/platforms/libqxcb.so", True),
    ("PySide6/Qt/plugins/platforms/libqoffscreen.so", True),
    ("PySide6/Qt/plugins/imageformats/libqjpeg.so", True),
])
def test_keep_file(path, keep):
    assert rules.keep_file(path) is keep


@pytest.mark.parametrize("path, cuda", [
    ("torch/lib/libtorch_cuda.so", True), ("nvidia/cublas/lib/libcublas.so.13", True),
    ("torch/lib/cudart64_12.dll", True), ("torch/lib/libcudnn.so.9", True),
    ("torch/lib/libtorch_cpu.so", False), ("torch/lib/libc10.so", False),
    ("torch/lib/libgomp-a34b3233.so.1", False), ("scipy/linalg/_fblas.cpython-311-x86_64-linux-gnu.so", False),
])
def test_cuda_libraries_are_recognised(path, cuda):
    assert rules.is_cuda_lib(path) is cuda


def _qt_modules_imported(folder: Path) -> set[str]:
    found = set()
    pat = re.compile(r"(?:from\s+(?:PySide6|qtpy)\s+import\s+([\w ,()]+)|(?:PySide6|qtpy)\.(Qt\w+))")
    for py in folder.rglob("*.py"):
        for m in pat.finditer(py.read_text(encoding="utf-8", errors="replace")):
            if m.group(1):
                found |= {n.strip(" ()") for n in m.group(1).split(",") if n.strip(" ()").startswith("Qt")}
            else:
                found.add(m.group(2))
    return found


def test_qt_modules_the_desktop_uses_are_bundled():
    used = _qt_modules_imported(REPO / "desktop")
    assert "QtWidgets" in used or not any((REPO / "desktop").rglob("main_window.py"))
    excluded = used & set(rules.QT_MODULES_EXCLUDED)
    assert not excluded, f"desktop/ imports Qt modules the bundle excludes: {sorted(excluded)}"


# --------------------------------------------------------------------------- Linux packaging
def test_deb_control_declares_qt_runtime_libraries():
    control = (INSTALLER / "linux" / "control.in").read_text(encoding="utf-8")
    fields = dict(re.findall(r"^([\w-]+):\s*(.*)$", control, flags=re.M))
    depends = {d.strip().split()[0] for alt in fields["Depends"].split(",") for d in alt.split("|")}
    missing = [lib for lib in QT_DEPENDS if lib not in depends]
    assert not missing, f"Depends lacks {missing}"
    assert fields["Architecture"] == "amd64"
    for key in ("Package", "Version", "Installed-Size", "Description"):
        assert key in fields


def test_desktop_entry():
    cp = configparser.ConfigParser(interpolation=None)
    cp.optionxform = str
    cp.read(INSTALLER / "linux" / "latent.desktop", encoding="utf-8")
    entry = cp["Desktop Entry"]
    assert entry["Type"] == "Application"
    assert entry["Exec"].split()[0] == "latent" and entry["Icon"] == "latent"
    assert entry["Terminal"] == "false" and entry["Categories"].endswith(";")


def test_launcher_scripts_are_executable_and_pass_arguments():
    sh = INSTALLER / "linux" / "latent.sh"
    assert sh.stat().st_mode & 0o111
    text = sh.read_text(encoding="utf-8")
    assert text.startswith("#!/bin/sh") and '"$@"' in text and "/opt/latent/latent" in text
    for script in ("postinst", "postrm"):
        assert (INSTALLER / "linux" / script).stat().st_mode & 0o111


def test_icons_exist_and_have_windows_sizes():
    from PIL import Image

    png = Image.open(REPO / "resources" / "icons" / "latent.png")
    assert png.size == (256, 256) and png.mode == "RGBA"
    ico = Image.open(REPO / "resources" / "icons" / "latent.ico")
    assert {(16, 16), (32, 32), (48, 48), (256, 256)} <= set(ico.info["sizes"])


# --------------------------------------------------------------------------- Windows
def _iss_setup() -> dict[str, str]:
    text = (INSTALLER / "windows" / "latent.iss").read_text(encoding="utf-8")
    section = text.split("[Setup]", 1)[1].split("\n[", 1)[0]
    return dict(line.split("=", 1) for line in section.splitlines()
                if "=" in line and not line.lstrip().startswith(";"))


def test_inno_setup_is_per_user_with_disk_spanning():
    setup = _iss_setup()
    assert setup["PrivilegesRequired"] == "lowest"
    assert setup["DiskSpanning"] == "yes"
    assert setup["DefaultDirName"].startswith("{autopf}")  # per-user Programs folder when not admin
    assert "UninstallDisplayIcon" in setup
    text = (INSTALLER / "windows" / "latent.iss").read_text(encoding="utf-8")
    assert re.search(r'^Name: "\{group\}\\\{#AppName\}"', text, flags=re.M), "start-menu entry"
    assert "{uninstallexe}" in text, "start-menu uninstaller entry"
    assert "recursesubdirs" in text


# --------------------------------------------------------------------------- build wiring
def test_workflow_builds_both_oses_in_a_matrix():
    yaml = pytest.importorskip("yaml")
    wf = yaml.safe_load((REPO / ".github" / "workflows" / "installers.yml").read_text(encoding="utf-8"))
    job = wf["jobs"]["build"]
    matrix = job["strategy"]["matrix"]
    assert any(o.startswith("ubuntu") for o in matrix["os"]) and any(o.startswith("windows") for o in matrix["os"])
    assert set(matrix["variant"]) == {"cpu", "cuda"}
    runs = "\n".join(step.get("run", "") for step in job["steps"])
    assert "--selftest" in runs and "unshare -n" in runs and "dpkg -r" in runs


def test_installer_build_is_its_own_target_not_part_of_make_test():
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    targets = dict(re.findall(r"^([\w-]+):[^\n]*\n((?:\t[^\n]*\n)*)", makefile, flags=re.M))
    assert "installer/build.py --variant" in targets["installer"]
    assert "installer" not in targets["test"] and "build.py" not in targets["test"]


def test_build_requirements_drop_torch_and_torchvision():
    import importlib.util

    spec = importlib.util.spec_from_file_location("latent_build", INSTALLER / "build.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    names = {build._req_name(r) for r in build.runtime_requirements()}
    assert "torch" not in names and "torchvision" not in names
    assert {"pydicom", "mne", "pyside6-essentials", "pyinstaller"} <= names


# --------------------------------------------------------------------------- self-test logic
def test_network_guard_records_name_lookups():
    from desktop import selftest

    selftest._start_network_guard()
    try:
        socket.getaddrinfo("localhost", 80)
    except OSError:
        pass
    attempts = selftest._stop_network_guard()
    assert attempts and "getaddrinfo" in attempts[0]
    selftest._start_network_guard()
    assert selftest._stop_network_guard() == []


def test_samples_of_every_modality_are_found():
    from desktop import selftest

    samples = selftest.find_samples()
    assert {"ct", "histology", "ecg", "eeg"} <= set(samples)
    assert all(p.suffix not in (".dat", ".atr", ".md") for paths in samples.values() for p in paths)
    assert selftest._pick("score-segments", "eeg", samples["eeg"]).suffix == ".txt"
    assert selftest._pick("reconstruct", "eeg", samples["eeg"]).suffix != ".txt"


def test_result_checks_reject_bad_results():
    from desktop import selftest
    from engine.data import Signal
    from engine.results import AnomalyMap, Reconstruction, ReconstructionResult

    sha = "a" * 64
    data = Signal.from_array(np.zeros((2, 100)), sfreq=100.0, modality="ecg")

    def result(rec):
        return ReconstructionResult(Reconstruction(rec, "mV", "m", sha),
                                    AnomalyMap(np.zeros(100), {"p99": 1.0}, "m", sha))

    ok = selftest.check_result("reconstruct", data, result(np.ones((2, 100))), "m", {"m": {"sha256": sha}})
    assert "recon 2x100" in ok
    with pytest.raises(selftest.CheckFailed, match="NaN"):
        selftest.check_result("reconstruct", data, result(np.full((2, 100), np.nan)), "m", {})
    with pytest.raises(selftest.CheckFailed, match="shape"):
        selftest.check_result("reconstruct", data, result(np.ones((1, 100))), "m", {})
    with pytest.raises(selftest.CheckFailed, match="sha256"):
        selftest.check_result("reconstruct", data, result(np.ones((2, 100))), "m", {"m": {"sha256": "b" * 64}})


@pytest.mark.slow
def test_selftest_passes_in_process_on_cpu(capsys):
    """The same checks ``latent --selftest`` runs, from the source tree."""
    from desktop import selftest

    code = selftest.main(["--selftest"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "SELFTEST PASSED" in out
    for modality, task in selftest.PLAN:
        assert re.search(rf"^{re.escape(task)}\s+{modality}/\S+\s+ok", out, flags=re.M), (task, modality, out)


@pytest.mark.parametrize("soname, package", [
    ("libxcb-icccm.so.4", "libxcb-icccm4"), ("libxcb-keysyms.so.1", "libxcb-keysyms1"),
    ("libxkbcommon-x11.so.0", "libxkbcommon-x11-0"), ("libEGL.so.1", "libegl1"),
    ("libdbus-1.so.3", "libdbus-1-3"), ("libfontconfig.so.1.12.0", "libfontconfig1"), ("not-a-library", ""),
])
def test_debian_package_naming_rule(soname, package):
    assert rules.debian_package(soname) == package


def test_qt_xcb_runtime_is_declared_by_the_deb():
    """Libraries the audit lets a headless build machine miss must be ones the .deb depends on."""
    depends = rules.declared_packages((REPO / "installer" / "linux" / "control.in").read_text(encoding="utf-8"))
    assert {"libxcb-icccm4", "libxcb-keysyms1", "libxkbcommon-x11-0", "libegl1", "libglib2.0-0"} <= depends
    assert "libglib2.0-0t64" in depends and not any("(" in d or "|" in d or " " in d for d in depends)
    assert rules.debian_package("libmadeup.so.7") not in depends
