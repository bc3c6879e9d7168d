"""Fuzz every reader family (issue 20): mutated copies of real files through ``engine.io.read``
plus a data access, each case in a worker with time and memory limits; prints a table.

    python benchmarks/fuzz_readers.py --family png --cases 200 --seed 1
    python benchmarks/fuzz_readers.py --cases 10000 --jobs 1 --report /tmp/fuzz.json
    python benchmarks/fuzz_readers.py --replay /tmp/fuzz.json      # rerun its failing cases
    python benchmarks/fuzz_readers.py --merge /tmp/fuzz-*.json      # one table from several runs

Outcomes per case: ok / project error (engine.errors, naming the file) / non-project
exception / hang (timeout) / memory (limit hit) / ok-invalid (read "ok" but non-finite
or larger than the file can hold) / crash (worker killed by a signal). Exit status 1
when any case failed (anything but ok and project error) or a seed file changed.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository's engine first
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fuzzing.runner import DEFAULT_CACHE, merge_reports, run  # noqa: E402
from fuzzing.seeds import FAMILIES  # noqa: E402
from fuzzing.worker import FAILURES  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--family", action="append", choices=FAMILIES,
                    help="a family to fuzz (repeatable; default: all)")
    ap.add_argument("--cases", type=int, default=100, help="cases per family (default 100)")
    ap.add_argument("--first", type=int, default=0, help="index of the first case (to resume a run)")
    ap.add_argument("--seed", type=int, default=0, help="campaign seed (default 0)")
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds per case (default 30)")
    ap.add_argument("--mem-mb", type=int, default=3072, help="extra address space per case, MB (default 3072)")
    ap.add_argument("--jobs", type=int, default=1, help="cases run at once (default 1)")
    ap.add_argument("--report", type=Path, help="write the summary and failing cases here (JSON)")
    ap.add_argument("--replay", type=Path, help="rerun the failing cases of this report")
    ap.add_argument("--merge", type=Path, nargs="+", help="print the combined table of these reports and exit")
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="folder of the generated seed files")
    args = ap.parse_args(argv)
    import logging

    logging.getLogger("engine").setLevel(logging.ERROR)  # readers warn on damaged files; the table says it
    if args.merge:
        text, bad = merge_reports(args.merge)
        print(text)
        return 1 if bad else 0
    replay = None
    if args.replay:
        replay = json.loads(args.replay.read_text())["failures"]
    summary = run(args.family or list(FAMILIES), n_cases=args.cases, first=args.first, seed=args.seed,
                  timeout_s=args.timeout, mem_mb=args.mem_mb, jobs=args.jobs, report=args.report,
                  cache=args.cache, replay=replay, log=lambda s: print(s, flush=True))
    bad = sum(st.counts[k] for st in summary["stats"].values() for k in FAILURES + ("harness-error",))
    return 1 if bad or summary["seeds_unchanged"] is False else 0


if __name__ == "__main__":
    sys.exit(main())
