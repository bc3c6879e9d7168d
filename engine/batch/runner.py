"""A batch: one task over many inputs on a Dask cluster, as an engine generator.

:func:`batch_task` yields :class:`~engine.jobs.Progress` as inputs finish (``info["row"]``
carries the finished input's manifest row) and about twice a second while they run, so
the GUI and the CLI can drive it and cancel it like any other task. Closing the generator
(Cancel, Ctrl-C) cancels what has not finished and shuts the local cluster down; the
manifest then lists only the inputs that did finish, so nothing unfinished reads ``ok``.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Generator, Sequence

from engine.batch.inputs import BatchInput, expand_inputs, unique_names
from engine.batch.manifest import MANIFEST_NAME, ManifestRow, read_manifest, write_manifest
from engine.batch.worker import run_one
from engine.errors import LatentError
from engine.jobs import Progress
from engine.tasks import TaskSpec, get_task

__all__ = ["batch_task", "BatchResult", "TASK_READ_DEFAULTS"]

#: Reader options a task's single-file command sets for headerless text/NumPy inputs (score-beats reads
#: them as ECG); files that carry their modality keep the reader's guess, so the task refuses a mismatch.
TASK_READ_DEFAULTS: dict[str, dict] = {"score-beats": {"modality": "ecg"}}
_HEARTBEAT_S = 0.5
#: Runs of one input when its worker process dies under it (the first death is retried once).
MAX_ATTEMPTS = 2


@dataclass(frozen=True)
class BatchResult:
    """The rows of this run's inputs (in input order) and where the manifest is."""

    task: str
    rows: tuple[ManifestRow, ...]
    manifest: Path
    out_dir: Path
    seconds: float
    workers: int
    cluster: str

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.rows)

    def summary(self) -> dict:
        return {"task": self.task, "inputs": len(self.rows), "ok": self.count("ok"),
                "error": self.count("error"), "skipped": self.count("skipped"),
                "seconds": round(self.seconds, 3), "workers": self.workers, "cluster": self.cluster,
                "manifest": str(self.manifest), "rows": [r.as_dict() for r in self.rows]}


def _plan(inputs, spec: TaskSpec, out: Path, opts: dict, old: dict[str, ManifestRow]) -> list[BatchInput]:
    items = expand_inputs(inputs, modalities=spec.modalities, with_text=opts.get("sfreq") is not None,
                          exclude=[out])
    # an input keeps the folder an earlier run gave it; other inputs' folders are not reused
    taken = {p: Path(r.outputs[0]).parts[0] for p, r in old.items() if r.outputs}
    names = unique_names([i.path for i in items], taken=taken)
    return [BatchInput(i.path, names[i.path], i.kind) for i in items]


def batch_task(inputs: Sequence[str | os.PathLike], *, task: str | TaskSpec, out_dir: str | os.PathLike,
               options: dict | None = None, workers: int | None = None, scheduler: str | None = None,
               resume: bool = False, gpus: int | None = None) -> Generator[Progress, None, BatchResult]:
    """Run *task* over every input in *inputs*, one output folder each under *out_dir*.

    Parameters
    ----------
    inputs : sequence of path-like
        Files, folders (expanded by content, see :mod:`engine.batch.inputs`) and glob patterns.
    task : str or engine.tasks.TaskSpec
        A task name from :data:`engine.tasks.TASKS` (or a spec the workers can import).
    out_dir : path-like
        Batch folder: ``<out_dir>/<input name>/...`` and ``<out_dir>/manifest.csv``.
    options : dict, optional
        The single-file command's options (``model``, ``device``, ``mpp``, ``roi``, ``mode``,
        ``sfreq``...); reader options go to :func:`engine.io.read`, all go to the task.
    workers, gpus : int, optional
        Local cluster size (default one worker per GPU, else 1) and GPUs to use.
    scheduler : str, optional
        Address of an existing Dask scheduler (``tcp://host:8786``) instead of a local cluster.
    resume : bool
        Skip inputs whose manifest row is ``ok``/``skipped``, whose outputs exist and whose
        sha256 is unchanged (they get status ``skipped``).

    Returns
    -------
    BatchResult
    """
    from distributed import wait
    from distributed.scheduler import KilledWorker

    spec = task if isinstance(task, TaskSpec) else get_task(task)
    out = Path(out_dir).resolve()
    opts = {k: v for k, v in (options or {}).items() if v is not None}
    if spec.name in TASK_READ_DEFAULTS:  # applied per input by the worker (headerless files only)
        opts["task_read_defaults"] = TASK_READ_DEFAULTS[spec.name]
    manifest = out / MANIFEST_NAME
    old = read_manifest(manifest)
    plan = _plan(inputs, spec, out, opts, old)
    out.mkdir(parents=True, exist_ok=True)
    rows = dict(old)  # rows of inputs outside this run stay as they were
    t0 = time.perf_counter()
    total = len(plan)
    yield Progress(0.0, f"{total} input(s); starting the cluster", {"total": total})
    with _connect(workers, scheduler, gpus) as (client, info):
        queue = list(plan)  # inputs not yet handed to a worker (at most one per worker thread at a time)
        pending: dict = {}  # future -> input
        attempts: dict[str, int] = {}
        done = 0

        def submit_more() -> None:
            slots = max(1, sum(client.nthreads().values())) if queue else 0
            while queue and len(pending) < slots:
                item = queue.pop(0)
                attempts[item.path] = attempts.get(item.path, 0) + 1
                prev = old.get(item.path)
                expect = {}
                if resume and prev is not None and prev.status in ("ok", "skipped") and prev.outputs:
                    expect = {"expected_sha256": prev.sha256,
                              "expected_outputs": tuple(str(out / o) for o in prev.outputs)}
                fut = client.submit(run_one, spec, item.path, str(out / item.name), opts, **expect,
                                    pure=False, resources=info.resources,
                                    key=f"latent-{item.name}-{os.urandom(4).hex()}")
                pending[fut] = item

        try:
            submit_more()
            yield Progress(0.0, f"{total} input(s) on {info.workers} worker(s)",
                           {"total": total, "cluster": info.address, "workers": info.workers})
            while pending:
                try:
                    finished = wait(list(pending), timeout=_HEARTBEAT_S, return_when="FIRST_COMPLETED").done
                except TimeoutError:
                    finished = set()
                for fut in finished:
                    item = pending.pop(fut)
                    try:
                        res = fut.result()
                    except KilledWorker:
                        if attempts[item.path] < MAX_ATTEMPTS:
                            queue.insert(0, item)  # the worker died under it: once more, on a fresh worker
                            continue
                        res = {"status": "error", "message": f"{item.path}: the worker process died while "
                               f"processing this input, {MAX_ATTEMPTS} times (a crash in a library, or the "
                               f"system ran out of memory: try fewer --workers)"}
                    except Exception as exc:  # the cluster lost the task: say so, go on
                        res = {"status": "error", "message": f"{item.path}: {type(exc).__name__}: {exc}"}
                    row = _row(item, res, out)
                    rows[item.path] = row
                    write_manifest(manifest, rows.values())
                    done += 1
                    yield Progress(done / total, f"{done}/{total} {item.name}: {row.status}",
                                   {"row": row.as_dict(), "name": item.name, "done": done, "total": total})
                submit_more()
                if not finished:
                    yield Progress(done / total, f"{done}/{total} done, {len(pending)} running",
                                   {"done": done, "total": total})
        finally:
            if pending:
                client.cancel(list(pending), force=True)
    this_run = tuple(rows[i.path] for i in plan)
    return BatchResult(task=spec.name, rows=this_run, manifest=manifest, out_dir=out,
                       seconds=time.perf_counter() - t0, workers=info.workers, cluster=info.address)


def _connect(workers, scheduler, gpus):
    from engine.batch.cluster import connect

    return connect(workers, scheduler, gpus=gpus)


def _row(item: BatchInput, res: dict, out: Path) -> ManifestRow:
    outputs = tuple(Path(os.path.relpath(p, out)).as_posix() for p in res.get("outputs", ()))
    return ManifestRow(input=item.path, sha256=res.get("sha256", ""), status=res["status"],
                       message=res.get("message", ""), outputs=outputs,
                       seconds=float(res.get("seconds", 0.0)), device=res.get("device", ""))


def write_batch(result: BatchResult, data=None, out_dir=None) -> list[Path]:
    """The batch's outputs are written as it runs; this returns the manifest (task-writer signature)."""
    if not result.manifest.is_file():
        raise LatentError(f"{result.manifest}: the batch manifest is missing")
    return [result.manifest]
