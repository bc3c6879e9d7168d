"""What runs on a Dask worker for one input: read, run the task, write, report one row.

Everything a user can get wrong (a damaged file, the wrong modality, a bad option)
comes back as an ``error`` row carrying the :class:`~engine.errors.LatentError` text;
nothing raises out of :func:`run_one`, so one bad input never stops the batch. Only
the death of the worker process itself escapes, and Dask reschedules that input.
"""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from engine.errors import LatentError

__all__ = ["run_one", "READ_OPTIONS", "THREADS_ENV"]

logger = logging.getLogger("engine")

#: Options that go to :func:`engine.io.read` (``mpp`` goes to the task as well).
READ_OPTIONS = ("sfreq", "modality", "mpp", "series_uid")
#: Set by :func:`engine.batch.cluster.local_cluster` on its workers: torch threads per worker.
THREADS_ENV = "LATENT_TORCH_THREADS"


def _set_threads() -> None:
    """The cluster's per-worker thread count when it set one, else the machine's thread policy;
    and the malloc policy (:mod:`engine._shared.memory`)."""
    from engine._shared.memory import apply_malloc_policy
    from engine._shared.threads import apply_thread_policy

    n = os.environ.get(THREADS_ENV)
    apply_thread_policy(int(n) if n and n.isdigit() else None)
    apply_malloc_policy()


def _device_label(device) -> str:
    from engine._shared.device import choose_device

    dev = choose_device(device)
    if dev.type != "cuda":
        return dev.type
    import torch

    index = dev.index if dev.index is not None else torch.cuda.current_device()
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    physical = visible.split(",")[index] if visible else str(index)
    return f"cuda:{physical} {torch.cuda.get_device_name(index)}"


def run_one(spec, path: str, out_dir: str, options: dict, *, expected_sha256: str | None = None,
            expected_outputs: tuple[str, ...] = ()) -> dict:
    """Run task *spec* on the input at *path*, writing into *out_dir*; return the manifest fields.

    Parameters
    ----------
    spec : engine.tasks.TaskSpec
    path : str
        Absolute input path (file, DICOM folder, ``.hea``).
    out_dir : str
        This input's own output folder.
    options : dict
        Task options; :data:`READ_OPTIONS` among them also go to the reader.
    expected_sha256, expected_outputs : optional
        From the previous manifest (``--resume``): when the input's sha256 still matches and
        every listed output exists, nothing is run and the row is ``skipped``.

    Returns
    -------
    dict
        ``sha256, status, message, outputs (absolute), seconds, device``.
    """
    import engine.io
    from engine.batch.inputs import input_sha256

    t0 = time.perf_counter()
    row = {"sha256": "", "status": "error", "message": "", "outputs": [], "seconds": 0.0, "device": ""}
    try:
        row["sha256"] = input_sha256(path)
        if (expected_sha256 and row["sha256"] == expected_sha256 and expected_outputs
                and all(Path(p).is_file() for p in expected_outputs)):
            row.update(status="skipped", outputs=list(expected_outputs),
                       message="unchanged since the last run: sha256 matches and the outputs exist")
            return row
        _set_threads()
        read_opts = {k: options[k] for k in READ_OPTIONS if options.get(k) is not None}
        needed = (options.get("task_read_defaults") or {}).get("modality")
        if needed and "modality" not in read_opts:
            from engine.tasks._modality import reader_modality

            if (m := reader_modality(path, needed)) is not None:
                read_opts["modality"] = m
        task_opts = {k: v for k, v in options.items() if v is not None and k not in ("sfreq", "modality",
                                                                                     "series_uid",
                                                                                     "task_read_defaults")}
        row["device"] = _device_label(task_opts.get("device"))
        from engine.jobs import run_job

        with engine.io.opened(path, **read_opts) as data:
            result = run_job(spec.runner()(data, **task_opts))
            paths = spec.writer()(result, data, out_dir)
        row.update(status="ok", outputs=[str(Path(p).resolve()) for p in paths])
    except LatentError as exc:
        row["message"] = str(exc)
    except MemoryError:
        row["message"] = f"{path}: not enough memory to process this input; run fewer --workers"
    except Exception as exc:  # a bug or a library failure: isolate it like a bad file, log the traceback
        logger.exception("batch: %s failed", path)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        row["message"] = f"{path}: unexpected {type(exc).__name__}: {first}"
    finally:
        row["seconds"] = round(time.perf_counter() - t0, 3)
    return row
