"""benchmarks/run_all.py: one table from the benchmark modules' rows (a cheap section only)."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RUN_ALL = REPO / "benchmarks" / "run_all.py"


def _load():
    spec = importlib.util.spec_from_file_location("run_all", RUN_ALL)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_quick_nuclei_section_prints_one_table(tmp_path):
    """A 500^2 nuclei region (four child processes): the table has every column and real numbers."""
    out = subprocess.run([sys.executable, str(RUN_ALL), "--quick", "--only", "nuclei", "--nuclei-side", "500",
                          "--json", str(tmp_path / "rows.json")], capture_output=True, text=True, cwd=REPO,
                         timeout=900)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    head = next(i for i, ln in enumerate(lines) if ln.startswith("figure"))
    assert lines[0].startswith("Latent benchmarks (quick)") and "usable cores" in lines[0]
    for col in ("value", "unit", "reference", "ratio", "target", "pass/fail"):
        assert col in lines[head]
    body = [ln for ln in lines[head + 2:] if ln.strip()]
    assert len(body) == 5 and all(ln.startswith("Nuclei 500x500") for ln in body)
    assert body[0].split()[-1] in ("pass", "FAIL") and "LoG" in body[0]
    import json

    rows = json.loads((tmp_path / "rows.json").read_text())["rows"]
    speed = rows[0]
    assert speed["value"] > 0 and speed["ratio"] == pytest.approx(speed["value"] / float(
        speed["reference"].split()[1]), rel=0.02)


def test_unknown_section_names_the_valid_ones():
    out = subprocess.run([sys.executable, str(RUN_ALL), "--only", "nope"], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 2 and "holter" in out.stderr and "nuclei" in out.stderr


def test_judge_reads_targets_against_ratio_or_value():
    judge = _load().judge
    assert judge({"ratio": 1.2, "value": 50, "target": "<= 1.5x"}) == "pass"
    assert judge({"ratio": 6.9, "value": 300, "target": "<= 1.5x"}) == "FAIL"
    assert judge({"ratio": 0.5, "value": 1600, "target": "< 1500 MB"}) == "FAIL"
    assert judge({"ratio": 9.0, "value": 1.2, "target": ">= 1 Mpx/s (goal)"}) == "pass"
    assert judge({"ratio": 0.9, "value": 3, "target": "< 1"}) == "pass"
    assert judge({"ratio": 0.9, "value": 3, "target": ""}) == "-"
    assert judge({"ratio": 9, "target": "<= 1x", "pass": True}) == "pass"


def test_missing_optional_bench_is_a_row_not_an_error():
    """An optional section whose module is not on the branch (as bench_viewer was) gives one row."""
    mod = _load()
    mod.SECTIONS["ghost"] = "bench_ghost_not_on_any_branch"
    mod.OPTIONAL.add("bench_ghost_not_on_any_branch")
    rows = mod.run_section("ghost", True)
    assert len(rows) == 1 and "not available" in rows[0]["figure"] and mod.judge(rows[0]) == "-"


def test_viewer_bench_has_rows_for_run_all():
    """bench_viewer.py is imported by its section and gives the two issue-21 viewer rows' function."""
    import inspect

    spec = importlib.util.spec_from_file_location("bench_viewer", REPO / "benchmarks" / "bench_viewer.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert {"quick", "repeats"} <= set(inspect.signature(mod.run_all_rows).parameters)
