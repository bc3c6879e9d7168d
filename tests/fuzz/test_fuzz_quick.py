"""The quick deterministic slice of the reader fuzz harness (issue 20; the long run is
``benchmarks/fuzz_readers.py``): a fixed seed, 250 mutated real files per family,
each read + accessed in a bounded worker. Every case must end "ok" (valid data) or in a
project error naming the file: no non-project exception, hang, memory blow-up, crash or
invalid "ok"; the seed files must not change."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))

from fuzzing.runner import preload, run_cases  # noqa: E402
from fuzzing.seeds import DATA, FAMILIES, build_seeds, hashes  # noqa: E402
from fuzzing.worker import FAILURES  # noqa: E402

pytestmark = pytest.mark.skipif(not (DATA / "ecg/mitdb/100.hea").is_file(), reason="shared data not present")

#: Campaign seed and cases per family of the slice (2,750 cases: 73 s with 2 workers on two idle
#: cores, 2026-12-03; a few minutes when the cores are loaded).
SEED = 20
CASES = 250
JOBS = 2
#: The worker limits (the same as the long run's defaults).
TIMEOUT_S = 30.0
MEM_MB = 3072


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    got = build_seeds(tmp_path_factory.mktemp("fuzz-seeds"))
    preload()
    return got


@pytest.mark.parametrize("family", FAMILIES)
def test_fuzz_slice(family, seeds, tmp_path):
    before = hashes(seeds)
    cases = list(run_cases([(family, SEED, i) for i in range(CASES)], seeds, timeout_s=TIMEOUT_S,
                           mem_mb=MEM_MB, jobs=JOBS, work=tmp_path))
    assert len(cases) == CASES
    bad = [f"#{c.index} {c.outcome}: {c.detail} <- {'; '.join(c.mutations)}" for c in cases
           if c.outcome in FAILURES or c.outcome == "harness-error"]
    assert not bad, "\n".join(bad)
    outcomes = {c.outcome for c in cases}
    assert "project-error" in outcomes  # the mutations do reach the readers' checks
    assert hashes(seeds) == before
