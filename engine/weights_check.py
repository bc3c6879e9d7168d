"""Untrusted weights checked before anything is allocated.

:func:`check_metadata` schema-checks a weights file's Latent metadata (types, known
architecture, hparams a JSON object of scalars/lists); :func:`plan_network` builds the
network on PyTorch's ``meta`` device (shapes only, no memory), refuses a parameter
count above :data:`MAX_PARAMETERS`, and returns the expected ``name -> (dtype, shape)``;
:func:`check_header` compares that with the tensors listed in the safetensors header
(before any tensor is read): every name present, no extras, same shape, same dtype,
data offsets inside the file. No conversion is done: a float64 or int8 tensor where
the network holds float32 is refused (not silently converted). :func:`check_finite`
refuses NaN/Inf values once the tensors are read. Every failure is a
:class:`~engine.errors.WeightsError` naming the file.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from engine.errors import LatentError, WeightsError

__all__ = ["MAX_PARAMETERS", "check_finite", "check_header", "check_metadata", "plan_network"]

#: Largest network a weights file may describe (parameters + buffers); the bundled ones are < 10 M.
MAX_PARAMETERS = 200_000_000

_DTYPES = {"F32": "float32", "F64": "float64", "F16": "float16", "BF16": "bfloat16", "I64": "int64",
           "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8", "BOOL": "bool"}
_SIZES = {"F32": 4, "F64": 8, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}


def _is_jsonable_value(v: Any) -> bool:
    if v is None or isinstance(v, (bool, int, str)):
        return True
    if isinstance(v, float):
        return math.isfinite(v)
    if isinstance(v, (list, tuple)):
        return all(_is_jsonable_value(x) for x in v)
    if isinstance(v, dict):
        return all(isinstance(k, str) and _is_jsonable_value(x) for k, x in v.items())
    return False


def check_metadata(path: Path, meta: Any) -> dict[str, Any]:
    """*meta* as a dict once its schema holds; otherwise :class:`WeightsError` naming *path*."""
    from engine.models import MODELS

    if not isinstance(meta, dict):
        raise WeightsError(f"{path}: weights metadata is a {type(meta).__name__}, not a JSON object")
    arch = meta.get("architecture")
    if not isinstance(arch, str):
        raise WeightsError(f"{path}: weights metadata lacks a text 'architecture'")
    if arch not in MODELS:
        raise WeightsError(f"{path}: unknown architecture {arch!r}; valid: {', '.join(sorted(MODELS))}")
    hp = meta.get("hparams")
    if not isinstance(hp, dict):
        raise WeightsError(f"{path}: weights metadata 'hparams' must be a JSON object")
    for k, v in hp.items():
        if not isinstance(k, str) or not k.isidentifier() or not _is_jsonable_value(v):
            raise WeightsError(f"{path}: hparams {k!r} has an invalid value {v!r:.60}")
    modality = meta.get("modality")
    if not isinstance(modality, str):
        raise WeightsError(f"{path}: weights metadata lacks a text 'modality'")
    fv = meta.get("format_version", 1)
    if not isinstance(fv, int) or isinstance(fv, bool) or not 1 <= fv <= 1:
        raise WeightsError(f"{path}: unsupported weights format_version {fv!r}")
    return meta


def plan_network(path: Path, meta: dict[str, Any]) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Expected state-dict ``name -> (dtype, shape)`` built on the ``meta`` device (no allocation)."""
    import torch

    from engine.models import build_model

    try:
        with torch.device("meta"):
            module = build_model(meta["architecture"], **meta["hparams"])
    except LatentError as exc:
        raise WeightsError(f"{path}: bad hyper-parameters: {exc}") from None
    except (TypeError, ValueError, RuntimeError, KeyError, AttributeError, OverflowError, IndexError) as exc:
        raise WeightsError(f"{path}: hyper-parameters do not build a {meta['architecture']} network "
                           f"({type(exc).__name__}: {str(exc)[:120]})") from None
    state = module.state_dict()
    total = sum(t.numel() for t in state.values())
    if total > MAX_PARAMETERS:
        raise WeightsError(f"{path}: metadata describes a network of {total:,} values "
                           f"({total * 4 / 1e9:.1f} GB), above the {MAX_PARAMETERS:,} cap; refusing to build it")
    return {k: (str(t.dtype).removeprefix("torch."), tuple(t.shape)) for k, t in state.items()}


def check_header(path: Path, header_len: int, header: Any,
                 expected: dict[str, tuple[str, tuple[int, ...]]]) -> None:
    """Compare the parsed safetensors *header* of *path* (``header_len`` bytes) with *expected*.

    Runs before any tensor is read.
    """
    size = path.stat().st_size
    if not isinstance(header, dict):
        raise WeightsError(f"{path}: damaged safetensors header (not an object)")
    tensors = {k: v for k, v in header.items() if k != "__metadata__"}
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    if missing or extra:
        raise WeightsError(f"{path}: tensors do not fit the network (missing {missing[:3]}, unexpected {extra[:3]})")
    data_len = size - 8 - header_len
    for name, (dtype, shape) in expected.items():
        info = tensors[name]
        if not isinstance(info, dict):
            raise WeightsError(f"{path}: damaged header entry for tensor {name!r}")
        st_dtype, st_shape, offs = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        if _DTYPES.get(st_dtype) != dtype:
            raise WeightsError(f"{path}: tensor {name!r} is {st_dtype}, the network needs {dtype}; "
                               "weights are not converted")
        if not isinstance(st_shape, list) or tuple(st_shape) != shape:
            raise WeightsError(f"{path}: tensor {name!r} has shape {st_shape}, the network needs {list(shape)}")
        n = math.prod(shape) * _SIZES[st_dtype]
        if (not isinstance(offs, list) or len(offs) != 2 or not all(isinstance(o, int) for o in offs)
                or offs[1] - offs[0] != n or offs[0] < 0 or offs[1] > data_len):
            raise WeightsError(f"{path}: tensor {name!r} has data offsets {offs} outside the file or of the "
                               "wrong length")


def check_finite(path: Path, state: dict[str, Any]) -> None:
    """Refuse NaN/Inf in any floating-point tensor of *state*."""
    import torch

    for name, t in state.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise WeightsError(f"{path}: tensor {name!r} holds NaN or Inf values; refusing these weights")
