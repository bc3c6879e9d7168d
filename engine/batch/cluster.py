"""The Dask cluster a batch runs on: a local one by default, or an existing scheduler.

Local cluster
-------------
Workers are processes with one thread each (one input at a time). Their torch thread
count is ``cores // workers`` (``OMP_NUM_THREADS`` and ``torch.set_num_threads``) so the
workers together do not oversubscribe the CPU. With CUDA GPUs the default is one worker
per GPU; worker *i* sees only GPU ``i % n_gpus`` (``CUDA_VISIBLE_DEVICES`` in its
environment) and declares the Dask resource ``GPU=1``. The batch hands each worker one
input at a time. A worker that dies (a crash, the out-of-memory killer) is restarted by
its nanny; the scheduler fails the input at once (``allowed_failures=0``) and the batch
resubmits it once (:data:`engine.batch.runner.MAX_ATTEMPTS`); a second death makes it an
``error`` row. Other inputs are not affected.

Existing cluster (``--scheduler tcp://host:8786``)
-------------------------------------------------
Start one worker per GPU with one thread, each seeing its GPU, for example::

    dask scheduler
    CUDA_VISIBLE_DEVICES=0 dask worker tcp://host:8786 --nthreads 1 --resources GPU=1
    CUDA_VISIBLE_DEVICES=1 dask worker tcp://host:8786 --nthreads 1 --resources GPU=1

When every worker declares ``GPU``, each input asks for ``GPU=1``. Latent must be
installed on the workers, and inputs and ``--out`` must be on a file system they share
(paths are sent as absolute paths). After a worker death the scheduler itself retries up to
its ``distributed.scheduler.allowed-failures`` (Dask's default is 3) before the batch's one
resubmission.
"""
from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from engine.batch.worker import THREADS_ENV
from engine.errors import LatentError

__all__ = ["ClusterInfo", "local_cluster", "connect", "cpu_cores", "gpu_count"]

logger = logging.getLogger("engine")


@dataclass(frozen=True)
class ClusterInfo:
    """What the batch runs on."""

    address: str
    workers: int
    gpus: int
    threads_per_worker: int | None
    resources: dict | None  # what each input asks for (``{"GPU": 1}`` or None)
    local: bool


def cpu_cores() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def gpu_count() -> int:
    """CUDA GPUs visible here (0 without CUDA or without torch)."""
    try:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except ImportError:
        return 0


def _repo_root() -> str:
    # workers are fresh processes: they must import this same engine (a source checkout included)
    return str(Path(__file__).resolve().parents[2])


def local_cluster(workers: int | None = None, *, gpus: int | None = None):
    """Start a local Dask cluster of worker processes configured for Latent; return it.

    Parameters
    ----------
    workers : int, optional
        Worker processes; default one per GPU, else 1 without GPUs.
    gpus : int, optional
        GPUs to spread workers over (default all visible; 0 forces CPU workers).
    """
    import dask
    from distributed import LocalCluster, Nanny, Scheduler, SpecCluster

    n_gpu = gpu_count() if gpus is None else int(gpus)
    n = int(workers) if workers else max(1, n_gpu)
    if n < 1:
        raise LatentError(f"--workers must be at least 1, got {workers}")
    threads = max(1, cpu_cores() // n)
    path = os.pathsep.join(p for p in (_repo_root(), os.environ.get("PYTHONPATH", "")) if p)
    env = {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
           "OPENBLAS_NUM_THREADS": str(threads), THREADS_ENV: str(threads), "PYTHONPATH": path}
    with dask.config.set({"distributed.scheduler.worker-saturation": 1.0}):
        if n_gpu == 0:
            if gpus == 0:
                env["CUDA_VISIBLE_DEVICES"] = ""  # CPU workers asked for: hide the GPUs
            return LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                                scheduler_kwargs={"allowed_failures": 0, "dashboard_address": ":0"},
                                silence_logs=logging.ERROR,
                                env=env)
        specs = {
            f"gpu{i}": {"cls": Nanny, "options": {
                "nthreads": 1, "resources": {"GPU": 1}, "silence_logs": logging.ERROR,
                "env": {**env, "CUDA_VISIBLE_DEVICES": str(i % n_gpu)}}}
            for i in range(n)
        }
        scheduler = {"cls": Scheduler, "options": {"host": "127.0.0.1", "dashboard": False,
                                                   "dashboard_address": ":0", "allowed_failures": 0}}
        return SpecCluster(workers=specs, scheduler=scheduler, silence_logs=logging.ERROR,
                           name="latent-batch")


@contextlib.contextmanager
def connect(workers: int | None = None, scheduler: str | None = None,
            *, gpus: int | None = None, timeout: float = 20.0) -> Iterator[tuple[object, ClusterInfo]]:
    """Yield ``(client, info)`` for a new local cluster or the scheduler at *scheduler*.

    On exit the client is closed, and a cluster started here is shut down (its worker
    processes end, whatever they were running).
    """
    from distributed import Client

    cluster = None
    dask_log = logging.getLogger("distributed")
    old_level = dask_log.level
    if not logger.isEnabledFor(logging.DEBUG):  # Dask's INFO chatter is not for users; -v shows it
        dask_log.setLevel(logging.WARNING)
    try:
        if scheduler:
            try:
                client = Client(scheduler, timeout=timeout)
            except (OSError, TimeoutError) as exc:
                raise LatentError(f"cannot reach the Dask scheduler at {scheduler}: {exc}; start it with "
                                  f"`dask scheduler` and workers with `dask worker {scheduler}`") from None
        else:
            try:
                cluster = local_cluster(workers, gpus=gpus)
            except RuntimeError as exc:
                raise LatentError(f"the local Dask workers did not start ({exc}); a Python script that runs "
                                  f"a batch must do so under `if __name__ == \"__main__\":`") from None
            client = Client(cluster)
        try:
            client.wait_for_workers(1, timeout=timeout)
        except (OSError, TimeoutError):
            client.close()
            raise LatentError(f"no Dask worker joined the scheduler at "
                              f"{scheduler or cluster.scheduler_address} within {timeout:g} s") from None
        info_workers = client.scheduler_info(n_workers=-1)["workers"] if scheduler else {}
        try:
            if scheduler:
                all_gpu = bool(info_workers) and all("GPU" in w.get("resources", {})
                                                     for w in info_workers.values())
                info = ClusterInfo(scheduler, len(info_workers), len(info_workers) if all_gpu else 0,
                                   None, {"GPU": 1} if all_gpu else None, local=False)
            else:
                n = len(cluster.worker_spec)
                gpu = any("GPU" in s["options"].get("resources", {}) for s in cluster.worker_spec.values())
                n_gpu = len({s["options"]["env"]["CUDA_VISIBLE_DEVICES"] for s in cluster.worker_spec.values()}) \
                    if gpu else 0
                info = ClusterInfo(cluster.scheduler_address, n, n_gpu, max(1, cpu_cores() // n),
                                   {"GPU": 1} if gpu else None, local=True)
            yield client, info
        finally:
            client.close()
    finally:
        if cluster is not None:
            cluster.close()
        dask_log.setLevel(old_level)
