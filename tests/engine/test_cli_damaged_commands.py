"""Issue 20 acceptance: on each generated defect file, every CLI command that takes such a file
answers within 30 s and 3 GB with exit 2 and one ``error:`` line naming the file.

``info`` and, for three signal defects, ``denoise``/``score-beats`` are covered next to each
defect's reader test; this file runs the remaining pairs, one subprocess each. The memory is the
largest resident set of the command and its children (``RUSAGE_CHILDREN`` of a wrapper process).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.engine import guard_image_files as gen
from tests.engine.dicom_helpers import LIDC, REPO
from tests.engine.test_guards_fuzz_found import CASES as FOUND
from tests.engine.test_guards_fuzz_found import SFREQ as FOUND_SFREQ
from tests.engine.test_guards_signals import CASES as SIGNAL
from tests.engine.test_jpeg_padding import LAYOUTS, _jpeg, _sof_resize

DATA = gen.DATA
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not os.path.exists(gen.SRC) or not (DATA / LIDC).is_dir()
                                 or not (DATA / "ecg/mitdb/100.hea").is_file(), reason="shared data not present")]

#: Commands that take one image or recording of each kind.
COMMANDS = {"histology": ("info", "reconstruct", "detect-nuclei"), "ct": ("info", "reconstruct"),
            "signal": ("info", "denoise", "score-beats", "score-segments", "reconstruct")}
#: Pairs already run elsewhere (tests/engine/test_guards_*.py).
COVERED = {("tall.png", "info"), ("huge.jpg", "info"), ("tilewidth.tif", "info"), ("jpeg_sof_height", "info")}
COVERED |= {(c, m) for c in ("looping_atr", "long_header_line", "edf_phys_huge") for m in ("info", "denoise",
                                                                                          "score-beats")}
COVERED |= {(c, "info") for c in ("tiff_samples_per_pixel_2e31", "wfdb_gain_1e-45", "edf_negative_duration",
                                  "text_inf", "text_1mb_line")}
MAX_RSS_KB = 3 * 1024 * 1024
_WRAP = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
         "print('maxrss_kb', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); "
         "sys.exit(r.returncode)")


def _image(make, name):
    def build(tmp_path):
        out = tmp_path / name
        make(out)
        return out, out, []
    return build


def _jpeg_tall(tmp_path):
    out = tmp_path / "tall-sof.jpg"
    out.write_bytes(_sof_resize(_jpeg(*LAYOUTS["baseline-420-odd"]), add_rows=200))
    return out, out, []


def _dicom(**fields):
    def build(tmp_path):
        import pydicom

        ds = pydicom.dcmread(DATA / LIDC / "000011.dcm")
        for key, value in fields.items():
            setattr(ds, key, value)
        out = tmp_path / "cli.dcm"
        ds.save_as(out)
        return out, out, []
    return build


def _found(case):
    def build(tmp_path):
        path = FOUND[case][0](tmp_path)
        return path, path, (["--sfreq", str(FOUND_SFREQ[case])] if case in FOUND_SFREQ else [])
    return build


def _signal(case):
    def build(tmp_path):
        path, named = SIGNAL[case](tmp_path)
        return path, named, []
    return build


DEFECTS = {
    "tall.png": ("histology", _image(gen.png_tall, "tall.png")),
    "huge.jpg": ("histology", _image(gen.jpeg_huge, "huge.jpg")),
    "tilewidth.tif": ("histology", _image(lambda p: gen.tiff_tag(p, 322, 2 ** 32 - 1), "tilewidth.tif")),
    "tileheight.tif": ("histology", _image(lambda p: gen.tiff_tag(p, 323, "size"), "tileheight.tif")),
    "jpeg_sof_height": ("histology", _jpeg_tall),
    "dicom_frames_1e9": ("ct", _dicom(NumberOfFrames=10 ** 9)),
    "dicom_slope_1e308": ("ct", _dicom(RescaleSlope="1e308")),
    "dicom_spacing_0": ("ct", _dicom(PixelSpacing=[0, 0])),
}
DEFECTS.update({c: ("signal", _signal(c)) for c in SIGNAL})
DEFECTS.update({c: ("histology" if c.startswith(("tiff", "svs")) else "signal", _found(c)) for c in FOUND})
PAIRS = [(d, c) for d, (kind, _) in DEFECTS.items() for c in COMMANDS[kind] if (d, c) not in COVERED]


def assert_exit_2_naming(engine_args: list[str], named: Path) -> None:
    """``python -m engine ENGINE_ARGS`` answers within 30 s with exit 2, one ``error:`` line naming
    *named*, and a largest resident set (the command and its children) of at most 3 GB."""
    args = [sys.executable, "-c", _WRAP, sys.executable, "-m", "engine", *engine_args]
    env = dict(os.environ, PYTHONPATH=str(REPO), QT_QPA_PLATFORM="offscreen")
    proc = subprocess.run(args, check=False, capture_output=True, text=True, timeout=30, cwd=REPO, env=env)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.splitlines() + proc.stdout.splitlines()
    errors = [ln for ln in lines if ln.startswith("error:")]
    assert len(errors) == 1 and named.name in errors[0], proc.stderr[-2000:]
    rss = [int(ln.split()[1]) for ln in proc.stderr.splitlines() if ln.startswith("maxrss_kb ")]
    assert rss and rss[0] <= MAX_RSS_KB, json.dumps({"maxrss_kb": rss})


@pytest.mark.parametrize(("defect", "command"), PAIRS)
def test_cli_exit_2_one_error_line_naming_the_file(tmp_path, defect, command):
    path, named, extra = DEFECTS[defect][1](tmp_path)
    args = [command, str(path), *extra]
    if command != "info":
        args += ["--out", str(tmp_path / "out")]
    assert_exit_2_naming(args, named)
