"""Batch runs: one task over many files, on this workstation or a Dask cluster.

>>> from engine.batch import batch_task, expand_inputs
"""
from __future__ import annotations

from engine.batch.inputs import BatchInput, expand_inputs, input_sha256
from engine.batch.manifest import MANIFEST_NAME, ManifestRow, read_manifest
from engine.batch.runner import BatchResult, batch_task

__all__ = ["batch_task", "BatchResult", "BatchInput", "expand_inputs", "input_sha256", "ManifestRow",
           "read_manifest", "MANIFEST_NAME"]
