"""The self-test's network guard: every attempt to connect or resolve a host name made from Python
while it is on is recorded (the product must never touch the network). Nothing here imports Qt.
"""
from __future__ import annotations

import sys

__all__ = ["start_network_guard", "stop_network_guard"]

_NET_EVENTS = ("socket.connect", "socket.getaddrinfo", "socket.gethostbyname",
               "socket.gethostbyaddr", "urllib.Request")
_net_attempts: list[str] = []
_net_recording = False
_hook_installed = False


def _audit(event: str, args: tuple) -> None:
    if not _net_recording or event not in _NET_EVENTS:
        return
    if event == "socket.connect":
        address = args[1] if len(args) > 1 else None
        if not isinstance(address, tuple):  # AF_UNIX (D-Bus, X11) is local, not network
            return
        _net_attempts.append(f"{event} {address!r}")
    else:
        _net_attempts.append(f"{event} {args[:2]!r}")


def start_network_guard() -> None:
    global _net_recording, _hook_installed
    if not _hook_installed:  # audit hooks cannot be removed: install once, switch on and off
        sys.addaudithook(_audit)
        _hook_installed = True
    _net_attempts.clear()
    _net_recording = True


def stop_network_guard() -> list[str]:
    global _net_recording
    _net_recording = False
    return list(_net_attempts)
