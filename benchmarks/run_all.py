"""Every performance figure of issue 21 in one table, measured in one run (``make bench``).

    .venv/bin/python benchmarks/run_all.py [--quick] [--only SECTION ...] [--json OUT.json]

Each section is a benchmark module's ``run_all_rows(quick)``; they run one after the other in
this one invocation, so every ratio compares figures measured side by side on the same loaded
machine. Sections:

* ``holter``: ``bench_holter_speed`` - 24-h 2-lead ECG denoise vs read + band-pass + write
  (quick: 2 h, one run; full: 24 h, three);
* ``nuclei``: ``bench_nuclei_speed`` - detect-nuclei on a CRCHisto mosaic at 0.5 um/px vs a
  scikit-image LoG (quick: 2000^2, one run; full: 4000^2, three);
* ``ct``: ``bench_ct_speed`` - the 77-slice LIDC series vs a plain pydicom read;
* ``viewer``: ``bench_viewer`` - EEG paging fps vs plain pyqtgraph, when that module exists
  (otherwise one "not available" row).

Columns: figure, value (unit), reference, ratio (to the reference, same run), target,
pass/FAIL ("-" where a row has no target). ``--quick`` takes a few minutes; the full run
is what README's performance table records.
"""
from __future__ import annotations

import argparse
import importlib
import inspect
import json
import os
import platform
import re
import sys
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

#: section name -> benchmark module (each has ``run_all_rows(quick: bool) -> list[dict]``).
SECTIONS = {"holter": "bench_holter_speed", "nuclei": "bench_nuclei_speed", "ct": "bench_ct_speed",
            "viewer": "bench_viewer"}
#: Modules another branch may not have merged yet: a "not available" row instead of an error.
OPTIONAL = {"bench_viewer"}

_TARGET = re.compile(r"^\s*(<=|>=|<|>)\s*([0-9.]+)\s*(x|[A-Za-z/%]+)?")


def judge(row: dict) -> str:
    """``pass``/``FAIL`` from the row's own ``pass`` or its ``target`` text, ``-`` without a target.

    A target with an ``x`` or no unit ("<= 1.5x", "< 1") is compared with the ratio; one with a
    unit ("< 1500 MB", ">= 1 Mpx/s") with the value.
    """
    if row.get("pass") is not None:
        return "pass" if row["pass"] else "FAIL"
    m = _TARGET.match(str(row.get("target") or ""))
    if not m:
        return "-"
    op, bound, unit = m.group(1), float(m.group(2)), m.group(3)
    key = "ratio" if unit in (None, "x") else "value"
    try:
        got = float(row[key])
    except (KeyError, TypeError, ValueError):
        return "-"
    ok = {"<=": got <= bound, ">=": got >= bound, "<": got < bound, ">": got > bound}[op]
    return "pass" if ok else "FAIL"


def run_section(name: str, quick: bool, **options) -> list[dict]:
    """The rows of one section; a missing optional module or a failure becomes one row saying so."""
    module_name = SECTIONS[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if module_name in OPTIONAL and exc.name == module_name:
            return [{"figure": f"{name}: not available (benchmarks/{module_name}.py is not on this branch)",
                     "value": "", "unit": "", "reference": "", "ratio": "", "target": "", "pass": None,
                     "section": name}]
        raise
    t0 = time.perf_counter()
    try:
        accepted = inspect.signature(module.run_all_rows).parameters
        options = {k: v for k, v in options.items() if v is not None and k in accepted}
        rows = module.run_all_rows(quick=quick, **options)
    except Exception as exc:  # one broken section must not hide the others
        traceback.print_exc(file=sys.stderr)
        return [{"figure": f"{name}: FAILED ({type(exc).__name__}: {str(exc).strip()[:80]})", "value": "",
                 "unit": "", "reference": "", "ratio": "", "target": "", "pass": False, "section": name,
                 "error": True}]
    for r in rows:
        r["section"] = name
    print(f"[{name}: {len(rows)} row(s) in {time.perf_counter() - t0:.0f} s]", file=sys.stderr, flush=True)
    return rows


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"
    return str(v)


def machine() -> str:
    """One line: CPU model, usable cores, torch threads, GPU (for the table's header)."""
    from engine._shared.threads import default_threads, usable_cores

    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        import torch

        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    except ImportError:
        gpu = "torch absent"
    load = f", load {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    return f"{cpu}; {usable_cores()} usable cores (policy: {default_threads()} thread(s)){load}; {gpu}"


def print_table(rows: list[dict], out=sys.stdout) -> None:
    head = ("figure", "value", "unit", "reference", "ratio", "target", "pass/fail")
    cells = [head] + [(str(r["figure"]), _fmt(r.get("value", "")), str(r.get("unit", "")),
                       str(r.get("reference", "")), _fmt(r.get("ratio", "")), str(r.get("target", "")), judge(r))
                      for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(head))]
    right = {1, 4}
    for k, c in enumerate(cells):
        print("  ".join(v.rjust(w) if i in right else v.ljust(w) for i, (v, w) in enumerate(zip(c, widths)))
              .rstrip(), file=out)
        if k == 0:
            print("  ".join("-" * w for w in widths), file=out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small inputs, one run each (a few minutes)")
    ap.add_argument("--only", nargs="+", metavar="SECTION", help=f"only these sections: {', '.join(SECTIONS)}")
    ap.add_argument("--nuclei-side", type=int, default=None,
                    help="side of the nuclei region in pixels (default 2000 with --quick, else 4000)")
    ap.add_argument("--repeats", type=int, default=None,
                    help="runs per figure (medians) for the sections that take it (default 1 quick, 3 full)")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = ap.parse_args(argv)
    names = args.only or list(SECTIONS)
    unknown = [n for n in names if n not in SECTIONS]
    if unknown:
        ap.error(f"unknown section(s) {', '.join(unknown)}; valid: {', '.join(SECTIONS)}")
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # the viewer bench draws off screen
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    rows = []
    for name in names:
        opts = {"side": args.nuclei_side} if name == "nuclei" and args.nuclei_side else {}
        rows += run_section(name, args.quick, repeats=args.repeats, **opts)
    print(f"Latent benchmarks ({'quick' if args.quick else 'full'}), {started}; {machine()}")
    print_table(rows)
    if args.json:
        args.json.write_text(json.dumps({"started": started, "machine": machine(), "quick": args.quick,
                                         "rows": [{**r, "judged": judge(r)} for r in rows]}, indent=1, default=str))
    return 1 if any(r.get("error") for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
