"""``python -m engine ...``: the batch front end over the same generators the GUI uses.

Each sub-command lives in its own module under :mod:`engine.commands` and exposes
``register(subparsers)`` (adds its parser and sets ``func``). Errors a user can cause
print one ``error:`` line on stderr and exit 2.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

from engine.errors import LatentError

__all__ = ["main", "COMMANDS"]

#: Sub-command modules, in the order ``--help`` lists them.
COMMANDS = (
    "engine.commands.info",
    "engine.commands.sysinfo",
    "engine.commands.train",
    "engine.commands.finetune",
    "engine.commands.calibrate",
    "engine.commands.reconstruct",
    "engine.commands.models",
    "engine.commands.detect_nuclei",
    "engine.commands.evaluate_nuclei",
    "engine.commands.denoise",
    "engine.commands.score_beats",
    "engine.commands.score_segments",
    "engine.commands.deidentify",
    "engine.commands.batch",
)

EXIT_USER_ERROR = 2
#: Sub-commands that run models: the thread policy (engine._shared.threads) and the malloc policy
#: (engine._shared.memory) are applied before them.
COMPUTE_COMMANDS = frozenset({"calibrate", "denoise", "detect-nuclei", "evaluate-nuclei", "finetune",
                              "reconstruct", "score-beats", "score-segments", "sys-info", "train"})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m engine", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.command in COMPUTE_COMMANDS:
            from engine._shared.memory import apply_malloc_policy
            from engine._shared.threads import apply_thread_policy

            apply_thread_policy(getattr(args, "threads", None))  # a --threads option wins
            apply_malloc_policy()  # activation buffers reused, not page-faulted afresh per window/tile
        return int(args.func(args) or 0)
    except LatentError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # never a traceback for a user; -v shows it
        if args.verbose:
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        print(f"error: {type(exc).__name__}: {first} (run with -v for details)", file=sys.stderr)
        return EXIT_USER_ERROR
