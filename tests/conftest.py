"""Shared test set-up: offscreen Qt, the shared data folder, CPU-only torch threads."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# a developer's own fine-tuned models never leak into the tests (tests that need the folder set their own)
os.environ["LATENT_USER_MODELS"] = __import__("tempfile").mkdtemp(prefix="latent-user-models-")

#: ../shared/data next to the repository (CI clones main with shared/ beside it).
REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("LATENT_SHARED_DATA", REPO.parent / "shared" / "data"))
# the benchmark/training data helpers (NSTDB mixing, nucleus reference sets) live in scripts/, not the engine
sys.path.insert(0, str(REPO / "scripts"))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA.is_dir():
        pytest.fail(f"shared data folder not found at {DATA}; set LATENT_SHARED_DATA")
    return DATA


@pytest.fixture
def user_models(tmp_path, monkeypatch) -> Path:
    """A test's own user-model folder (``LATENT_USER_MODELS``), not created yet."""
    d = tmp_path / "user-models"
    monkeypatch.setenv("LATENT_USER_MODELS", str(d))
    return d


def pytest_collection_modifyitems(config, items):
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:
        has_cuda = False
    skip_gpu = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords and not has_cuda:
            item.add_marker(skip_gpu)


@pytest.fixture(autouse=True, scope="session")
def _few_threads():
    # Two cores here and in CI: one torch thread avoids oversubscription with the Qt/worker threads.
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    yield
