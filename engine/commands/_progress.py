"""CLI helpers: a minimal progress bar on stderr (silent when not a terminal) and the final report."""
from __future__ import annotations

import json
import sys
import time

from engine.jobs import Progress


class ProgressBar:
    """Callable for :func:`engine.jobs.run_job`: redraws at most 10 times per second."""

    def __init__(self, label: str = "", *, stream=None, force: bool = False, width: int = 30):
        self.stream = stream or sys.stderr
        self.enabled = force or bool(getattr(self.stream, "isatty", lambda: False)())
        self.label, self.width, self._last, self._t0 = label, width, 0.0, time.perf_counter()

    def __call__(self, p: Progress) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self._last < 0.1 and p.fraction < 1.0:
            return
        self._last = now
        n = int(round(self.width * max(0.0, min(1.0, p.fraction))))
        bar = "#" * n + "-" * (self.width - n)
        self.stream.write(f"\r{self.label} [{bar}] {100 * p.fraction:5.1f}% {now - self._t0:6.1f}s {p.message[:60]:<60}")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


def run_with_bar(label: str, job):
    """Drive a task generator with a progress bar on stderr and return its result."""
    from engine.jobs import run_job

    bar = ProgressBar(label)
    try:
        return run_job(job, bar)
    finally:
        bar.close()


def report(as_json: bool, summary: dict, paths, lines, *, key: str = "files") -> None:
    """Print a task's outcome: one JSON object (*summary* + output paths under *key*), or the text
    lines that the callable *lines* returns followed by one ``wrote`` line per output file."""
    if as_json:
        print(json.dumps({**summary, key: [str(p) for p in paths]}, default=str))
        return
    for line in lines():
        print(line)
    for p in paths:
        print(f"wrote     {p}")


def install_or_print_json(args, summary: dict) -> bool:
    """The end of a command that writes a model: ``--install`` puts it into the user model folder;
    ``--json`` prints *summary* as one JSON object and returns True (the caller prints nothing more)."""
    if args.install:
        from engine.weights import install_user

        summary["installed"] = install_user(summary["model"], overwrite=True)["file"]
    if args.json:
        print(json.dumps(summary, default=str))
        return True
    return False
