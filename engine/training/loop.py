"""Training loop for every autoencoder family: a generator yielding Progress.

>>> import torch                                              # doctest: +SKIP
>>> job = train(model, x_train, x_val, epochs=5, batch_size=16, lr=1e-3, seed=0)
>>> result = engine.jobs.run_job(job, print)                  # TrainResult

Data are arrays or tensors shaped ``(n, channels, *spatial)`` (patches, tiles or
windows; see :mod:`engine.training.datasets`). Each epoch shuffles the training set with a seeded
generator, optionally augments each batch (``augment(batch, generator) -> batch``),
corrupts the input (``corruption``, training only), and minimises the reconstruction
loss against the clean batch plus an optional sparsity penalty on ``model.encode``, or
the model's own penalty where it has ``penalized_forward`` (:mod:`engine.models.penalties`).
The validation loss (the same corruption drawn from a fixed seed, so epochs compare)
drives early stopping; the best weights are restored at the end.

Checkpoints are safetensors (never pickle): ``checkpoint_dir/last.safetensors`` holds
``model.*``, ``best.*``, the flattened optimizer state ``optim.<param>.<key>`` and the
RNG states; its ``__metadata__`` holds the epoch, history and optimizer hyper-parameters.
"""
from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Generator

import numpy as np
import torch

from engine._shared.device import choose_device
from engine._shared.files import atomic_path
from engine.errors import ModelError
from engine.jobs import Progress
from engine.training.losses import SparsityPenalty, reconstruction_loss

__all__ = ["train", "TrainResult", "as_tensor", "save_checkpoint", "load_checkpoint"]

logger = logging.getLogger("engine")
_VAL_SEED = 12345


@dataclass(eq=False)
class TrainResult:
    """The trained model (best validation weights, eval mode, on CPU), metrics and per-epoch history."""

    model: Any
    metrics: dict[str, Any]
    history: list[dict[str, float]] = field(default_factory=list)


def as_tensor(data, name: str = "data") -> torch.Tensor:
    """A float32 CPU tensor ``(n, channels, *spatial)`` from an array, tensor or list of arrays."""
    if isinstance(data, torch.Tensor):
        t = data
    elif isinstance(data, np.ndarray):
        t = torch.from_numpy(np.ascontiguousarray(data))
    else:
        try:
            t = torch.from_numpy(np.stack([np.asarray(d) for d in data]))
        except (TypeError, ValueError) as exc:
            raise ModelError(f"{name}: cannot stack into one array ({exc})") from None
    if t.dim() < 2 or t.shape[0] == 0:
        raise ModelError(f"{name} must be (n, channels, ...) with n > 0, got shape {tuple(t.shape)}")
    return t.float()


def _sparsity(sparsity, model) -> SparsityPenalty | None:
    if sparsity is None or sparsity is False:
        return None
    if isinstance(sparsity, SparsityPenalty):
        return sparsity
    if sparsity is True:  # the model's own defaults
        hp = getattr(model, "hparams", {})
        if "sparsity" not in hp:
            raise ModelError("sparsity=True needs a sparse model (hparams sparsity/rho/beta)")
        return SparsityPenalty(hp["sparsity"], beta=hp["beta"], rho=hp["rho"])
    if isinstance(sparsity, dict):
        return SparsityPenalty.from_spec(sparsity)
    raise ModelError(f"sparsity must be None, True, a dict or a SparsityPenalty, not {sparsity!r}")


def train(model, train_data, val_data=None, *, loss: str | Callable = "mse", corruption=None,
          sparsity=None, epochs: int = 10, batch_size: int = 32, lr: float = 1e-3,
          weight_decay: float = 0.0, seed: int = 0, device=None, patience: int | None = 5,
          checkpoint_dir: str | os.PathLike | None = None, resume: bool = False,
          augment: Callable | None = None, val_fraction: float = 0.1,
          ) -> Generator[Progress, None, TrainResult]:
    """Train *model* to reconstruct *train_data*; yield Progress, return a :class:`TrainResult`.

    Parameters
    ----------
    model : torch.nn.Module
        Any AE of :mod:`engine.models` (``forward`` returns the reconstruction; ``encode`` /
        ``decode`` are used when a sparsity penalty is on).
    train_data, val_data : array-like ``(n, channels, *spatial)``
        Without *val_data*, the last ``val_fraction`` of a seeded permutation of
        *train_data* is held out.
    loss : {"mse", "l1"} or callable(recon, target)
    corruption : engine.models.corruption.Corruption, optional
        Applied to training inputs only (a DenoisingAE carries its own as well).
    sparsity : None, True (the model's own rho/beta), dict or SparsityPenalty
    epochs, batch_size, lr, weight_decay : training schedule (Adam)
    seed : int
        Seeds weights-independent randomness: shuffling, augmentation, corruption.
    device : str or torch.device, optional
        Default: CUDA, then MPS, then CPU. bf16 autocast is used on CUDA.
    patience : int or None
        Stop after this many epochs without a lower validation loss (None: never).
    checkpoint_dir : path, optional
        Write ``last.safetensors`` there after every epoch; with ``resume=True`` continue from it.
    augment : callable(batch, generator) -> batch, optional
    """
    if not (isinstance(epochs, int) and epochs >= 1):
        raise ModelError(f"epochs must be an integer >= 1, not {epochs!r}")
    if not (isinstance(batch_size, int) and batch_size >= 1):
        raise ModelError(f"batch_size must be an integer >= 1, not {batch_size!r}")
    if not lr > 0:
        raise ModelError(f"lr must be > 0, not {lr!r}")
    dev = choose_device(device)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    x_all = as_tensor(train_data, "train_data")
    if val_data is None:
        n_val = max(1, int(round(len(x_all) * val_fraction))) if len(x_all) > 1 else 0
        perm = torch.randperm(len(x_all), generator=torch.Generator().manual_seed(seed + 1))
        x_val = x_all[perm[:n_val]] if n_val else None
        x_train = x_all[perm[n_val:]] if n_val else x_all
    else:
        x_train, x_val = x_all, as_tensor(val_data, "val_data")
    loss_fn = reconstruction_loss(loss) if isinstance(loss, str) else loss
    penalty = _sparsity(sparsity, model)
    model = model.to(dev)
    if corruption is not None:
        corruption = corruption.to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    amp = dev.type == "cuda"
    steps_per_epoch = math.ceil(len(x_train) / batch_size)
    total = epochs * steps_per_epoch
    history: list[dict[str, float]] = []
    best_val, best_state, bad_epochs, start_epoch = math.inf, None, 0, 0
    ckpt = Path(checkpoint_dir) / "last.safetensors" if checkpoint_dir else None
    if resume and ckpt is not None and ckpt.exists():
        meta = load_checkpoint(ckpt, model, opt, gen)
        start_epoch, history = meta["epoch"] + 1, meta["history"]
        best_val, bad_epochs = meta["best_val"], meta["bad_epochs"]
        best_state = meta.get("best_state")
        logger.info("resumed from %s at epoch %d", ckpt, start_epoch)

    def forward(xb):
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
            xin = corruption(xb) if corruption is not None else xb
            if penalty is not None:
                z = model.encode(xin)
                rec = model.decode(z)
                return loss_fn(rec.float(), xb) + penalty(z.float())
            if hasattr(model, "penalized_forward"):  # VAE KL, contractive penalty: weighted by the model
                rec, reg = model.penalized_forward(xin)
                return loss_fn(rec.float(), xb) + reg.float()
            return loss_fn(model(xin).float(), xb)

    t0 = time.perf_counter()
    done = start_epoch * steps_per_epoch
    val_loss = history[-1]["val_loss"] if history else float("nan")
    stopped_early = False
    for epoch in range(start_epoch, epochs):
        model.train()
        if corruption is not None:
            corruption.train()
        order = torch.randperm(len(x_train), generator=gen)
        run_sum, run_n = 0.0, 0
        for step in range(steps_per_epoch):
            idx = order[step * batch_size:(step + 1) * batch_size]
            xb = x_train[idx]
            if augment is not None:
                xb = augment(xb, gen)
            xb = xb.to(dev, non_blocking=True)
            opt.zero_grad(set_to_none=True)
            loss_v = forward(xb)
            if not torch.isfinite(loss_v):
                raise ModelError(f"training diverged (loss {float(loss_v)}) at epoch {epoch + 1}; lower lr")
            loss_v.backward()
            opt.step()
            run_sum += float(loss_v.detach()) * len(idx)
            run_n += len(idx)
            done += 1
            elapsed = time.perf_counter() - t0
            rate = elapsed / max(1, done - start_epoch * steps_per_epoch)
            yield Progress(done / total, f"epoch {epoch + 1}/{epochs} step {step + 1}/{steps_per_epoch} "
                           f"loss {run_sum / run_n:.4g}",
                           {"epoch": epoch + 1, "step": step + 1, "loss": run_sum / run_n,
                            "val_loss": val_loss, "eta_s": rate * (total - done)})
        train_loss = run_sum / max(1, run_n)
        val_loss = _evaluate(model, x_val, forward, batch_size, dev, corruption) if x_val is not None else train_loss
        history.append({"epoch": epoch + 1, "loss": train_loss, "val_loss": val_loss,
                        "seconds": time.perf_counter() - t0})
        if val_loss < best_val - 1e-12:
            best_val, bad_epochs = val_loss, 0
            best_state = {k: v.detach().to("cpu").clone() for k, v in model.state_dict().items()}
        else:
            bad_epochs += 1
        yield Progress(done / total, f"epoch {epoch + 1}/{epochs} loss {train_loss:.4g} val {val_loss:.4g}",
                       {"epoch": epoch + 1, "step": steps_per_epoch, "loss": train_loss,
                        "val_loss": val_loss, "eta_s": (time.perf_counter() - t0) / (epoch + 1 - start_epoch)
                        * (epochs - epoch - 1)})
        if ckpt is not None:
            save_checkpoint(ckpt, model, opt, gen, epoch=epoch, history=history, best_val=best_val,
                            bad_epochs=bad_epochs, best_state=best_state)
        if patience is not None and bad_epochs >= patience:
            stopped_early = True
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    model = model.to("cpu").eval()
    metrics = {"best_val_loss": best_val, "final_train_loss": history[-1]["loss"] if history else None,
               "epochs_run": len(history), "stopped_early": stopped_early,
               "seconds": time.perf_counter() - t0, "device": str(dev),
               "n_train": len(x_train), "n_val": 0 if x_val is None else len(x_val)}
    return TrainResult(model=model, metrics=metrics, history=history)


def _evaluate(model, x_val, forward, batch_size, dev, corruption) -> float:
    """Mean validation loss; corruption (if any) drawn from a fixed seed so epochs compare."""
    model.eval()
    denoising = hasattr(model, "corrupt")
    tot, n = 0.0, 0
    with torch.no_grad(), torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
        torch.manual_seed(_VAL_SEED)
        if denoising:
            model.corruption.train()  # score restoration of corrupted inputs, not the identity
        if corruption is not None:
            corruption.train()
        for i in range(0, len(x_val), batch_size):
            xb = x_val[i:i + batch_size].to(dev)
            tot += float(forward(xb)) * len(xb)
            n += len(xb)
        if denoising:
            model.corruption.eval()
    return tot / max(1, n)


# ---------------------------------------------------------------- checkpoints (safetensors)

def save_checkpoint(path: Path, model, opt, gen, *, epoch: int, history, best_val, bad_epochs,
                    best_state=None) -> None:
    """Everything needed to resume, in one safetensors file (no pickle)."""
    from safetensors.torch import save_file

    tensors: dict[str, torch.Tensor] = {}
    for k, v in model.state_dict().items():
        tensors[f"model.{k}"] = v.detach().to("cpu").contiguous()
    for k, v in (best_state or {}).items():
        tensors[f"best.{k}"] = v.contiguous()
    sd = opt.state_dict()
    scalars: dict[str, Any] = {}
    for pid, st in sd["state"].items():
        for key, val in st.items():
            if isinstance(val, torch.Tensor):
                tensors[f"optim.{pid}.{key}"] = val.detach().to("cpu").contiguous()
            else:
                scalars[f"{pid}.{key}"] = val
    tensors["rng.torch"] = torch.get_rng_state()
    tensors["rng.gen"] = gen.get_state()
    meta = {"epoch": epoch, "history": history, "best_val": best_val if math.isfinite(best_val) else None,
            "bad_epochs": bad_epochs, "param_groups": sd["param_groups"], "optim_scalars": scalars,
            "has_best": best_state is not None}
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"checkpoint": json.dumps(meta)})


def load_checkpoint(path: Path, model, opt, gen) -> dict[str, Any]:
    """Restore model, optimizer and RNG state from :func:`save_checkpoint`; return its metadata."""
    from safetensors import safe_open

    from engine.weights import _check_safetensors

    _check_safetensors(Path(path))
    with safe_open(str(path), framework="pt") as f:
        header = f.metadata() or {}
        if "checkpoint" not in header:
            kind = "a Latent model's weights" if "latent" in header else "not a Latent training checkpoint"
            raise ModelError(f"{path}: {kind}, not a training checkpoint; --resume continues an interrupted "
                             "`train` run. To start from a model, use `python -m engine finetune --model FILE`")
        meta = json.loads(header["checkpoint"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    state: dict[int, dict[str, Any]] = {}
    for k, v in tensors.items():
        if k.startswith("optim."):
            _, pid, key = k.split(".", 2)
            state.setdefault(int(pid), {})[key] = v
    for k, v in meta["optim_scalars"].items():
        pid, key = k.split(".", 1)
        state.setdefault(int(pid), {})[key] = v
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    torch.set_rng_state(tensors["rng.torch"])
    gen.set_state(tensors["rng.gen"])
    meta["best_val"] = math.inf if meta["best_val"] is None else meta["best_val"]
    if meta.get("has_best"):
        meta["best_state"] = {k[5:]: v for k, v in tensors.items() if k.startswith("best.")}
    return meta
