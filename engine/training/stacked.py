"""Stacked sparse AE training: greedy layer-wise pre-training, then fine-tuning.

:func:`pretrain_layerwise` trains layer *k* of a :class:`~engine.models.sparse.StackedSparseAE`
as a sparse AE on the (fixed) codes of layers ``0..k-1``, one layer at a time
(Bengio et al. 2007; Xu et al. 2016). :func:`fine_tune` then trains the whole stack end
to end, either as an AE (reconstruction) or, with labels, through the softmax head
(cross-entropy). Both are generators yielding Progress.
"""
from __future__ import annotations

import math
import time
from typing import Generator

import numpy as np
import torch
import torch.nn.functional as F

from engine._shared.device import choose_device
from engine.errors import ModelError
from engine.jobs import Progress, rescaled
from engine.training.loop import TrainResult, as_tensor, train

__all__ = ["pretrain_layerwise", "fine_tune", "codes"]


def codes(model, x: torch.Tensor, k: int, *, batch_size: int = 256) -> torch.Tensor:
    """Inputs of layer *k* for every sample of *x* (no gradient), on CPU."""
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            out.append(model.encode_upto(x[i:i + batch_size], k).cpu())
    return torch.cat(out)


def pretrain_layerwise(model, train_data, val_data=None, *, epochs: int = 10, batch_size: int = 64,
                       lr: float = 1e-3, seed: int = 0, device=None, patience: int | None = 5,
                       sparsity=True) -> Generator[Progress, None, TrainResult]:
    """Greedy layer-wise pre-training of every layer of a StackedSparseAE."""
    x = as_tensor(train_data, "train_data")
    xv = as_tensor(val_data, "val_data") if val_data is not None else None
    n = model.n_layers
    history: list[dict] = []
    for k in range(n):
        model.cpu()
        hk = codes(model, x, k)
        hv = codes(model, xv, k) if xv is not None else None
        layer = model.layer(k)
        job = train(layer, hk, hv, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed + k,
                    device=device, patience=patience, sparsity=sparsity)
        res = yield from rescaled(job, k / n, (k + 1) / n, prefix=f"layer {k + 1}/{n}: ", info={"layer": k + 1})
        history += [{**h, "layer": k + 1} for h in res.history]
    model.cpu().eval()
    return TrainResult(model=model, metrics={"layers": n, "pretrain_epochs": len(history)}, history=history)


def fine_tune(model, train_data, labels=None, val_data=None, val_labels=None, *, epochs: int = 10,
              batch_size: int = 64, lr: float = 1e-4, seed: int = 0, device=None,
              patience: int | None = 5, class_weights=None) -> Generator[Progress, None, TrainResult]:
    """Fine-tune the whole stack: as an AE (no *labels*) or through the softmax head."""
    if labels is None:
        result = yield from train(model, train_data, val_data, epochs=epochs, batch_size=batch_size, lr=lr,
                                  seed=seed, device=device, patience=patience)
        return result
    if getattr(model, "head", None) is None:
        raise ModelError("supervised fine-tuning needs a StackedSparseAE built with n_classes > 0")
    dev = choose_device(device)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    x = as_tensor(train_data, "train_data")
    y = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    if len(y) != len(x):
        raise ModelError(f"{len(x)} samples but {len(y)} labels")
    xv = as_tensor(val_data, "val_data") if val_data is not None else None
    yv = torch.as_tensor(np.asarray(val_labels), dtype=torch.long) if val_labels is not None else None
    w = None if class_weights is None else torch.as_tensor(class_weights, dtype=torch.float32, device=dev)
    model.to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    steps = math.ceil(len(x) / batch_size)
    best, best_state, bad, history, t0 = math.inf, None, 0, [], time.perf_counter()
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(x), generator=gen)
        tot = 0.0
        for s in range(steps):
            idx = order[s * batch_size:(s + 1) * batch_size]
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model.classify(x[idx].to(dev)), y[idx].to(dev), weight=w)
            loss.backward()
            opt.step()
            lv = float(loss.detach())
            tot += lv * len(idx)
            yield Progress((epoch * steps + s + 1) / (epochs * steps), f"fine-tune epoch {epoch + 1} loss {lv:.4g}",
                           {"epoch": epoch + 1, "step": s + 1, "loss": lv})
        model.eval()
        val = tot / len(x)
        if xv is not None and yv is not None:
            with torch.no_grad():
                val = float(F.cross_entropy(model.classify(xv.to(dev)), yv.to(dev), weight=w))
        history.append({"epoch": epoch + 1, "loss": tot / len(x), "val_loss": val})
        if val < best:
            best, bad = val, 0
            best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        else:
            bad += 1
            if patience is not None and bad >= patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.cpu().eval()
    return TrainResult(model=model, metrics={"best_val_loss": best, "epochs_run": len(history),
                                             "seconds": time.perf_counter() - t0}, history=history)
