"""Issue 19 item 1: before the window, the Qt platform plugin's system libraries are checked and
the exact apt-get line is printed (not Qt's "xcb-cursor0 is needed")."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from desktop import startup_check

ROOT = Path(__file__).resolve().parents[2]

#: ``ldd libqxcb.so`` on a fresh Debian 12 machine where make run crashed (libxcb-cursor0 installed)
LDD_FRESH_DEBIAN = """\
\tlinux-vdso.so.1 (0x00007ffd4b7f5000)
\tlibQt6XcbQpa.so.6 => /opt/PySide6/Qt/plugins/platforms/../../lib/libQt6XcbQpa.so.6 (0x00007fd85230f000)
\tlibxcb-cursor.so.0 => /lib/x86_64-linux-gnu/libxcb-cursor.so.0 (0x00007fd85175e000)
\tlibxcb-icccm.so.4 => not found
\tlibxcb-util.so.1 => /lib/x86_64-linux-gnu/libxcb-util.so.1 (0x00007fd851756000)
\tlibxcb-keysyms.so.1 => not found
\tlibxcb.so.1 => /lib/x86_64-linux-gnu/libxcb.so.1 (0x00007fd850f4f000)
\tlibxcb-icccm.so.4 => not found
"""


def test_missing_sonames_map_to_the_debian_packages_of_the_issue():
    missing = startup_check.missing_sonames(LDD_FRESH_DEBIAN)
    assert missing == ["libxcb-icccm.so.4", "libxcb-keysyms.so.1"]
    assert startup_check.apt_line(missing) == "sudo apt-get install libxcb-icccm4 libxcb-keysyms1"
    assert startup_check.debian_package("libxkbcommon-x11.so.0") == "libxkbcommon-x11-0"
    assert startup_check.debian_package("libglib-2.0.so.0") == "libglib2.0-0"


def test_the_qt_dependency_of_the_plugin_is_checked_too(tmp_path):
    qpa = tmp_path / "libQt6XcbQpa.so.6"
    qpa.write_bytes(b"")
    plugin_out = f"\tlibQt6XcbQpa.so.6 => {qpa} (0x1)\n\tlibxcb.so.1 => /lib/libxcb.so.1 (0x2)\n"
    outputs = {"plugin": plugin_out, str(qpa): "\tlibxkbcommon-x11.so.0 => not found\n"}
    report = startup_check.check_platform(
        env={"QT_QPA_PLATFORM": "xcb"}, ldd=lambda p: outputs.get(str(p), outputs["plugin"]))
    if not sys.platform.startswith("linux") or report.plugin is None:
        pytest.skip("no xcb platform plugin in this PySide6")
    assert report.missing == ("libxkbcommon-x11.so.0",)
    assert "sudo apt-get install libxkbcommon-x11-0" in report.message()


def test_offscreen_needs_no_check():
    report = startup_check.check_platform(env={"QT_QPA_PLATFORM": "offscreen"}, ldd=lambda p: "x => not found")
    assert report.ok


def test_main_prints_the_apt_line_and_opens_no_window(monkeypatch, capsys):
    """The old main went straight to QApplication (and Qt aborted with its misleading hint)."""
    from desktop import app

    report = startup_check.PlatformReport("xcb", "/x/libqxcb.so", ("libxcb-icccm.so.4", "libxcb-keysyms.so.1"))
    monkeypatch.setattr(startup_check, "check_platform", lambda *a, **k: report)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    built = []
    import desktop.main_window as mw

    monkeypatch.setattr(mw, "MainWindow", lambda *a, **k: built.append(1))
    assert app.main([]) == app.EXIT_FAILURE
    err = capsys.readouterr().err
    assert "sudo apt-get install libxcb-icccm4 libxcb-keysyms1" in err
    assert "libxcb-icccm.so.4" in err
    assert not built


@pytest.mark.skipif(not sys.platform.startswith("linux") or shutil.which("ldd") is None, reason="needs ldd")
def test_real_plugin_on_this_machine_agrees_with_ldd():
    """On this machine the check and a plain ``ldd`` name the same missing libraries."""
    name, plugin = startup_check.platform_plugin({"QT_QPA_PLATFORM": "xcb"})
    if plugin is None:
        pytest.skip("no xcb platform plugin")
    out = subprocess.run(["ldd", str(plugin)], capture_output=True, text=True).stdout
    expected = {line.split("=>")[0].strip() for line in out.splitlines() if "not found" in line}
    report = startup_check.check_platform(env={"QT_QPA_PLATFORM": "xcb"})
    assert expected <= set(report.missing)
    if report.missing:  # then python -m desktop stops before Qt with the apt line
        env = dict(os.environ, QT_QPA_PLATFORM="xcb", DISPLAY=":99")
        env.pop("WAYLAND_DISPLAY", None)
        proc = subprocess.run([sys.executable, "-m", "desktop"], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=60)
        assert proc.returncode == 2
        assert startup_check.apt_line(report.missing) in proc.stderr
        assert "xcb-cursor0" not in proc.stderr
