"""Where the bundled resources (models, samples, icons) live, in a checkout or a frozen bundle."""
from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = ["resources_dir"]


def resources_dir() -> Path:
    """The folder with bundled models and samples.

    ``$LATENT_RESOURCES`` if set; inside a PyInstaller bundle ``<bundle>/resources``;
    otherwise ``resources/`` at the top of the source tree.
    """
    env = os.environ.get("LATENT_RESOURCES")
    if env:
        return Path(env)
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        return Path(bundle) / "resources"
    return Path(__file__).resolve().parents[2] / "resources"
