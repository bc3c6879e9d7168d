"""``latent --selftest``: prove that an installed Latent works, offline, on this machine.

``runner`` runs the checks and prints the table; ``checks`` holds the check helpers and hands
each task's result to its presenter's check (:mod:`desktop.presenters`); ``samples`` finds the
bundled samples; ``guard`` records any attempt to use the network. Nothing here imports Qt
except the GUI check, inside its function. (Owned by the installer work; ``desktop/app.py`` and
``installer/latent_launcher.py`` call :func:`run_selftest` / :func:`main`.)
"""
from desktop.selftest.checks import CheckFailed, check_result
from desktop.selftest.guard import start_network_guard, stop_network_guard
from desktop.selftest.runner import PLAN, Row, main, run_checks, run_selftest
from desktop.selftest.samples import BONN_SFREQ_HZ, find_samples, pick_sample

# The names the installer tests have always used (tests/test_installer_files.py).
_start_network_guard, _stop_network_guard, _pick = start_network_guard, stop_network_guard, pick_sample

__all__ = ["PLAN", "Row", "run_checks", "run_selftest", "main", "find_samples", "pick_sample", "check_result",
           "CheckFailed", "BONN_SFREQ_HZ", "start_network_guard", "stop_network_guard"]
