"""Which JPEG fuzz cases the entropy-data count (issue 20) turns from "ok" into a refusal.

Rebuilds the ``jpeg`` cases of :mod:`fuzz_readers` (same seed and index, so the same bytes),
reads each with the reader as it is and with its grey-tail check switched off (the reader
before the fix), and counts the cases refused now that were "ok" before, how many of those
the fuzz oracle's independent grey-band check flags, and their mutations. In-process, no
limits: run it only on the ``jpeg`` family, which the long run shows never hangs.

    python benchmarks/fuzz_jpeg_padding.py --seed 2026 --first 0 --cases 1000
"""
from __future__ import annotations

import argparse
import collections
import re
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fuzzing.oracle import access_and_check  # noqa: E402
from fuzzing.runner import DEFAULT_CACHE, make_case  # noqa: E402
from fuzzing.seeds import build_seeds  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--first", type=int, default=0)
    ap.add_argument("--cases", type=int, default=1000)
    args = ap.parse_args(argv)

    import engine.io.histology.raster as raster
    from engine.errors import LatentError
    from engine.io import read

    seeds = build_seeds(DEFAULT_CACHE)
    check = raster._check_jpeg_tail
    flipped, flagged, kinds = [], 0, collections.Counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for i in range(args.first, args.first + args.cases):
            case, path, _, files = make_case(seeds, "jpeg", args.seed, i, root)
            try:
                read(path).array  # noqa: B018 - the decode
                now = None
            except LatentError as exc:
                now = str(exc)
            if now and "JPEG data ends after" in now:
                raster._check_jpeg_tail = lambda *a: None
                try:
                    img = read(path)
                    problem = access_and_check(img, "jpeg", {k: Path(v) for k, v in files.items()})[0]
                    flipped.append((i, case.mutations, problem))
                    flagged += problem is not None
                    for m in case.mutations:
                        kinds[re.sub(r" *[=@\d].*", "", m.split(": ", 1)[-1])] += 1
                except LatentError:
                    pass  # refused before the fix too
                finally:
                    raster._check_jpeg_tail = check
            shutil.rmtree(root / f"jpeg-{i}", ignore_errors=True)
    print(f"jpeg seed {args.seed} cases {args.first}..{args.first + args.cases - 1}: {len(flipped)} ok before, "
          f"refused now; the oracle flags {flagged} of them read by the unfixed reader")
    for kind, n in kinds.most_common():
        print(f"  {n:5d}  {kind}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
