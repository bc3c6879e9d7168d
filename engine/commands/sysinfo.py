"""``python -m engine sys-info``: versions and device for bug reports."""
from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("sys-info", help="print versions, device and CUDA details")
    p.set_defaults(func=run)


def run(args) -> int:
    from engine._shared.sysinfo import sys_info

    print(sys_info())
    return 0
