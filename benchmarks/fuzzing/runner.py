"""Run fuzz cases through bounded workers, tally them per family, write the report.

A case is ``(seed, family, index)``: :func:`make_case` rebuilds its files exactly, so
the JSON report lists only those three (plus what was done and what happened) and
``--replay`` reruns them.
"""
from __future__ import annotations

import json
import os
import shutil
import statistics
import tempfile
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from pathlib import Path

from .formats_image import dicom_field, jpeg_field, png_field, png_fix_crcs, svs_field, tiff_field
from .formats_signal import edf_field, fif_field, text_field, wfdb_field
from .mutators import case_rng, mutate_case
from .seeds import FAMILIES, Seed, build_seeds, hashes
from .worker import FAILURES, OUTCOMES, finish_case, start_case

__all__ = ["Case", "FamilyStats", "make_case", "run_cases", "format_table", "merge_reports", "DEFAULT_CACHE"]

DEFAULT_CACHE = Path(tempfile.gettempdir()) / "latent-fuzz-seeds"


def _aware(family: str, name: str, data: bytes, files: dict, rng):
    if family in ("dicom", "dicom-folder"):
        return dicom_field(data, rng)
    if family == "png":
        return png_field(data, rng)
    if family == "jpeg":
        return jpeg_field(data, rng)
    if family == "tiff":
        return tiff_field(data, rng)
    if family == "svs":
        return svs_field(data, rng)
    if family == "wfdb":
        return wfdb_field(name, data, rng)
    if family in ("edf", "bdf"):
        return edf_field(data, rng)
    if family == "fif":
        return fif_field(data, rng)
    if family == "text":
        return text_field(data, rng)
    return None


def _finish(family: str, data: bytes, rng):
    return png_fix_crcs(data, rng) if family == "png" else None


@dataclass
class Case:
    family: str
    seed: int
    index: int
    seed_name: str = ""
    mutations: list[str] = field(default_factory=list)
    outcome: str = ""
    detail: str = ""
    ms: float = 0.0
    note: str = ""

    def record(self) -> dict:
        return {k: getattr(self, k) for k in ("family", "seed", "index", "seed_name", "mutations", "outcome",
                                              "detail", "ms")}


def make_case(seeds: dict[str, list[Seed]], family: str, seed: int, index: int,
              root: Path) -> tuple[Case, str, dict, dict]:
    """Write case *index* of *family* under *root*; return it, the path to open, options, files."""
    rng = case_rng(seed, family, index)
    s = rng.choice(seeds[family])
    originals = {name: Path(src).read_bytes() for name, src in s.files.items()}
    mutated, done = mutate_case(family, originals, rng, _aware, _finish)
    folder = root / f"{family}-{index}"
    if family == "dicom-folder":
        folder = folder / "series"
    folder.mkdir(parents=True)
    written = {}
    for name, data in mutated.items():
        (folder / name).write_bytes(data)
        written[name] = str(folder / name)
    open_path = str(folder) if s.open == "." else str(folder / s.open)
    return Case(family, seed, index, s.name, done), open_path, dict(s.options), written


@dataclass
class FamilyStats:
    counts: Counter = field(default_factory=Counter)
    ms: list = field(default_factory=list)
    nan_documented: int = 0

    def add(self, case: Case) -> None:
        self.counts[case.outcome] += 1
        self.ms.append(case.ms)
        self.nan_documented += bool(case.note)


def run_cases(cases, seeds, *, timeout_s: float, mem_mb: int, jobs: int, work: Path, on_done=None):
    """Run ``(family, seed, index)`` triples, at most *jobs* at once; yields finished :class:`Case`."""
    pending = list(cases)
    pending.reverse()
    running = {}
    while pending or running:
        while pending and len(running) < jobs:
            family, seed, index = pending.pop()
            try:
                with warnings.catch_warnings():  # pydicom warns on the damage it is asked to write
                    warnings.simplefilter("ignore")
                    case, open_path, options, files = make_case(seeds, family, seed, index, work)
            except Exception as exc:  # a mutator bug is the harness's fault: say so, go on
                c = Case(family, seed, index, outcome="harness-error", detail=f"{type(exc).__name__}: {exc}")
                yield c
                continue
            proc, recv, t0 = start_case(open_path, family, options, files, mem_mb=mem_mb)
            running[recv] = (proc, t0, case)
        now = time.perf_counter()
        first_deadline = min(t0 + timeout_s for _, t0, _ in running.values())
        ready = wait(list(running), timeout=max(0.0, first_deadline - now))
        now = time.perf_counter()
        for recv in list(running):
            proc, t0, case = running[recv]
            late = now >= t0 + timeout_s
            if recv in ready or late:
                del running[recv]
                kind, detail, ms, note = finish_case(proc, recv, t0, timeout_s, timed_out=late and recv not in ready)
                case.outcome, case.detail, case.ms, case.note = kind, detail, ms, note
                shutil.rmtree(work / f"{case.family}-{case.index}", ignore_errors=True)
                yield case


def format_table(stats: dict[str, FamilyStats]) -> str:
    cols = ("cases", "ok", "project error", "non-project exc", "hang", "memory", "ok-invalid", "crash",
            "unnamed error", "ok with NaN (documented)", "median ms")
    lines = ["| family | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for fam, st in stats.items():
        c = st.counts
        n = sum(c.values())
        row = [n, c["ok"], c["project-error"], c["exception"], c["hang"], c["memory"], c["ok-invalid"],
               c["crash"], c["unnamed-error"], st.nan_documented,
               f"{statistics.median(st.ms):.0f}" if st.ms else "-"]
        if c["harness-error"]:
            row[0] = f"{n} ({c['harness-error']} harness errors)"
        lines.append(f"| {fam} | " + " | ".join(str(v) for v in row) + " |")
    return "\n".join(lines)


def preload() -> None:
    """Import every reader and its libraries once, so each forked worker starts warm."""
    import importlib

    for mod in ("engine.io", "engine.io.dicom", "engine.io.histology", "engine.io.histology.raster",
                "engine.io.histology.tiff", "engine.io.histology.slide", "engine.io.wfdb", "engine.io.mne",
                "engine.io.text", "pydicom", "PIL.Image", "PIL.PngImagePlugin", "PIL.JpegImagePlugin",
                "tifffile", "wfdb", "mne", "mne.io", "mne.io.edf.edf", "mne.io.fiff.raw"):
        try:
            importlib.import_module(mod)
        except ImportError:
            pass


def run(families, *, n_cases: int, first: int, seed: int, timeout_s: float, mem_mb: int, jobs: int,
        report: Path | None, cache: Path, replay: list[dict] | None = None, log=print) -> dict:
    """Run the fuzz campaign (or replay a report's cases); return the summary dict."""
    seeds = build_seeds(cache)
    preload()
    before = hashes(seeds)
    if replay is not None:
        triples = [(r["family"], r["seed"], r["index"]) for r in replay]
    else:
        triples = [(f, seed, i) for f in families for i in range(first, first + n_cases)]
    stats = {f: FamilyStats() for f in dict.fromkeys(t[0] for t in triples)}
    failures = []
    t_start = time.time()
    work = Path(tempfile.mkdtemp(prefix="latent-fuzz-"))
    done = 0
    try:
        for case in run_cases(triples, seeds, timeout_s=timeout_s, mem_mb=mem_mb, jobs=jobs, work=work):
            stats[case.family].add(case)
            done += 1
            if case.outcome in FAILURES or case.outcome == "harness-error" or replay is not None:
                failures.append(case.record())
                log(f"[{case.outcome}] {case.family} #{case.index} ({case.seed_name}): {case.detail} <- "
                    f"{'; '.join(case.mutations)}")
            if done % 500 == 0:
                log(f"... {done}/{len(triples)} cases, {time.time() - t_start:.0f} s")
                if report:
                    _write(report, _summary(stats, failures, seed, first, t_start, before, None, timeout_s, mem_mb))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    after = hashes(seeds)
    summary = _summary(stats, failures, seed, first, t_start, before, after, timeout_s, mem_mb)
    if report:
        _write(report, summary)
    log(format_table(stats))
    log(f"seed files unchanged: {summary['seeds_unchanged']} ({len(before)} files); "
        f"{summary['runtime_s']:.0f} s")
    summary["stats"] = stats
    return summary


def _summary(stats, failures, seed, first, t_start, before, after, timeout_s, mem_mb) -> dict:
    return {
        "seed": seed, "first_case": first, "timeout_s": timeout_s, "mem_mb": mem_mb,
        "runtime_s": time.time() - t_start,
        "families": {f: {"counts": dict(st.counts), "nan_documented": st.nan_documented,
                         "median_ms": statistics.median(st.ms) if st.ms else None}
                     for f, st in stats.items()},
        "seeds_unchanged": None if after is None else before == after,
        "failures": failures,
        "outcomes": list(OUTCOMES),
        "all_families": list(FAMILIES),
    }


def _write(path: Path, summary: dict) -> None:
    tmp = Path(f"{path}.tmp")
    tmp.write_text(json.dumps(summary, indent=1))
    os.replace(tmp, path)


def merge_reports(paths) -> tuple[str, int]:
    """One table from several reports (e.g. a long run done family by family, chunk by chunk).

    Medians are not mergeable exactly: the merged "median ms" is the median of the reports'
    medians. Returns the text (table, runtime, case ranges, failures) and the number of failures.
    """
    stats: dict[str, FamilyStats] = {}
    medians: dict[str, list] = {}
    runtime, unchanged, ranges, failures = 0.0, [], {}, []
    for p in sorted(paths, key=str):
        r = json.loads(Path(p).read_text())
        runtime += r["runtime_s"]
        unchanged.append(r["seeds_unchanged"])
        failures += r["failures"]
        for fam, f in r["families"].items():
            st = stats.setdefault(fam, FamilyStats())
            st.counts.update(f["counts"])
            st.nan_documented += f["nan_documented"]
            if f["median_ms"] is not None:
                medians.setdefault(fam, []).append(f["median_ms"])
            n = sum(f["counts"].values())
            ranges.setdefault(fam, []).append(f"{r['seed']}:{r['first_case']}..{r['first_case'] + n - 1}")
    for fam, st in stats.items():
        st.ms = [statistics.median(medians[fam])] if medians.get(fam) else []
    stats = dict(sorted(stats.items(), key=lambda kv: FAMILIES.index(kv[0]) if kv[0] in FAMILIES else 99))
    finished = [u for u in unchanged if u is not None]
    lines = [format_table(stats), "",
             f"reports: {len(paths)} ({len(paths) - len(finished)} unfinished); summed runtime {runtime:.0f} s; "
             f"seed files unchanged in every finished report: {all(finished)}"]
    lines += [f"{fam}: seed:cases {', '.join(v)}" for fam, v in ranges.items()]
    bad = [f for f in failures if f["outcome"] in FAILURES or f["outcome"] == "harness-error"]
    lines += [f"[{f['outcome']}] {f['family']} seed {f['seed']} #{f['index']}: {f['detail'][:200]}" for f in bad]
    return "\n".join(lines), len(bad)
