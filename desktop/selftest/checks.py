"""The self-test's result checks: the helpers a check is written with, and :func:`check_result`,
which hands a task's result to the check of its presenter (:mod:`desktop.presenters`).

Nothing here imports Qt.
"""
from __future__ import annotations

__all__ = ["CheckFailed", "check_result", "require", "fail", "finite", "data_shape", "check_provenance"]


class CheckFailed(AssertionError):
    """A self-test check found something wrong."""


def require(cond: bool, message: str) -> None:
    if not cond:
        raise CheckFailed(message)


def fail(message: str) -> str:
    raise CheckFailed(message)


def finite(name: str, arr):
    import numpy as np

    arr = np.asarray(arr)
    require(arr.size > 0, f"{name} is empty")
    if arr.dtype.kind in "fc":
        require(bool(np.isfinite(arr).all()), f"{name} has NaN/inf values")
    return arr


def data_shape(data) -> tuple[int, ...]:
    return tuple(int(s) for s in data.shape)


def check_provenance(result, expected_model: str, manifest: dict[str, dict]) -> None:
    sha = getattr(result, "sha256", "") or ""
    require(len(sha) == 64 and all(c in "0123456789abcdef" for c in sha.lower()),
             f"result carries no sha256 of its weights ({sha!r})")
    want = manifest.get(expected_model, {}).get("sha256")
    require(want is None or sha.lower() == want.lower(),
             f"weights sha256 {sha[:12]}... is not the bundled {expected_model} ({str(want)[:12]}...)")


def check_result(task: str, data, result, model: str, manifest: dict[str, dict]) -> str:
    """Validate one task's result with its presenter's check; return a short description.

    Raises :class:`CheckFailed` when the result is wrong, or is not of the type the task registry
    says *task* returns.
    """
    from desktop.presenters import presenter_for
    from engine.tasks import get_task

    expected = get_task(task).result_type()
    require(isinstance(result, expected),
            f"{task} returned a {type(result).__name__}, not the {expected.__name__} the task registry names")
    return presenter_for(result).check(result, data, model, manifest)
