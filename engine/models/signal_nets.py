"""Task networks for ECG and EEG (1-D), registered in :data:`engine.models.MODELS`.

* :class:`SignalUNetDAE` (``"signal-unet-dae"``): a fully-convolutional 1-D
  denoising autoencoder in the spirit of Chiang et al. (IEEE Access 2019), with
  U-Net skip connections so QRS complexes keep their sharpness. Any length that is
  a multiple of ``2**depth`` works (inference pads).
* :class:`BeatAE` (``"beat-cae"``): a small 1-D convolutional autoencoder for single
  beats (fixed length), trained on AAMI-N beats; its reconstruction error is the
  beat anomaly score.
* :class:`SegmentClassifier` (``"ssae-logreg"``): a stacked sparse autoencoder
  encoder (greedy layer-wise pre-trained) followed by a logistic read-out over the
  AE features concatenated with standardised hand-crafted features. Used by
  ``eeg-seizure``; everything (scaler, weights, threshold) lives in tensors so the
  safetensors file is all that is needed.

All take keyword-only hyper-parameters and keep them in ``self.hparams``.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from engine.errors import ModelError

__all__ = ["SignalUNetDAE", "BeatAE", "SegmentClassifier"]


def _block(cin: int, cout: int, k: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv1d(cin, cout, k, padding=k // 2), nn.BatchNorm1d(cout), nn.GELU(),
                         nn.Conv1d(cout, cout, k, padding=k // 2), nn.BatchNorm1d(cout), nn.GELU())


def running_median_cpu(x: torch.Tensor, lengths) -> torch.Tensor:
    """Cascaded running medians of odd *lengths* along the last axis, edges replicated: the same values
    as ``F.pad(replicate).unfold().median()`` (a median selects one of the window's samples, so it is
    exact), by bottleneck's ``move_median`` (a double heap in C, O(n log k), the GIL released): the
    unfolded median was 80 % of an ecg-dae forward pass on CPU, pandas' rolling median (the previous
    replacement) still half of it, and this is 5-6x faster than pandas (a window of NaN stays NaN, as
    in both)."""
    import bottleneck as bn

    shape, dtype = x.shape, x.dtype
    a = x.float().reshape(-1, shape[-1]).numpy()
    for m in lengths:
        m = int(m)
        h = m // 2
        padded = np.pad(a, ((0, 0), (h, h)), mode="edge")
        a = bn.move_median(padded, m, axis=-1)[:, m - 1:]
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).reshape(shape).to(dtype)


class SignalUNetDAE(nn.Module):
    """1-D U-Net denoising autoencoder: ``(batch, channels, samples) -> same shape``.

    Parameters
    ----------
    in_channels : int
    widths : sequence of int
        Feature channels per level; ``len(widths) - 1`` downsamplings by 2.
    kernel_size : int
        Odd convolution length.
    residual : bool
        Predict a correction added to the input (the output is ``x + net(x)``).
    baseline_taps : int
        0, or the odd length of a fixed Hann low-pass (e.g. 721 = 2 s at 360 Hz). The
        network then sees ``[x - lowpass(x), lowpass(x)]`` and its residual path starts
        from ``x - lowpass(x)``: the slow baseline is handled with a context longer than
        the convolutional receptive field, and the net learns what to put back.
    baseline_median : sequence of odd int
        Instead of the Hann low-pass, a cascade of running medians of these lengths
        (e.g. ``(73, 217)`` = 200 ms then 600 ms at 360 Hz, the classical ECG baseline
        estimate of de Chazal et al. 2004, edges replicated as scipy's ``mode="nearest"``).
        Unlike a linear low-pass it follows baseline steps without smearing QRS energy
        into the baseline. Mutually exclusive with ``baseline_taps``.
    gate_window : int
        0, or the odd length (samples) of a do-no-harm gate on the residual path: the
        change ``d = y - x`` the network makes (its noise estimate, baseline included) is
        scaled by ``g = clip(e / gate_level - 1, 0, 1)`` (smoothed), *e* the running RMS of
        *d* over this window, so where that estimate is no larger than on clean ECG
        (``gate_level``, a buffer calibrated after training on clean windows) the output
        is the input unchanged. Inactive while ``gate_level`` is 0 (during training).
    """

    def __init__(self, *, in_channels: int = 1, widths=(16, 24, 32, 48, 64), kernel_size: int = 9,
                 residual: bool = True, baseline_taps: int = 0, baseline_median=(), gate_window: int = 0):
        super().__init__()
        widths = [int(w) for w in widths]
        if in_channels < 1 or len(widths) < 2 or min(widths) < 1:
            raise ModelError("signal-unet-dae: in_channels >= 1 and at least two positive widths are needed")
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ModelError(f"signal-unet-dae: kernel_size must be odd and positive, not {kernel_size}")
        if baseline_taps < 0 or (baseline_taps and baseline_taps % 2 == 0):
            raise ModelError(f"signal-unet-dae: baseline_taps must be 0 or odd, not {baseline_taps}")
        medians = [int(m) for m in baseline_median]
        if any(m < 1 or m % 2 == 0 for m in medians):
            raise ModelError(f"signal-unet-dae: baseline_median lengths must be odd and positive, not {medians}")
        if medians and baseline_taps:
            raise ModelError("signal-unet-dae: baseline_taps and baseline_median are mutually exclusive")
        if gate_window < 0 or (gate_window and (gate_window % 2 == 0 or not residual)):
            raise ModelError(f"signal-unet-dae: gate_window must be 0 or odd (with residual=True), not {gate_window}")
        self.hparams = {"in_channels": int(in_channels), "widths": widths, "kernel_size": int(kernel_size),
                        "residual": bool(residual), "baseline_taps": int(baseline_taps)}
        if medians:  # only recorded when used, so older weights' hparams stay as they were
            self.hparams["baseline_median"] = medians
        self.gate_window = int(gate_window)
        if self.gate_window:
            self.hparams["gate_window"] = self.gate_window
            self.register_buffer("gate_level", torch.zeros(()))
        self.baseline_median = tuple(medians)
        self.spatial_dims = 1
        k = kernel_size
        self.baseline_taps = int(baseline_taps)
        if self.baseline_taps:
            # fixed linear-phase low-pass (normalised Hann window): the slow baseline the net sees
            # as a second input; the residual path starts from the signal minus it
            win = torch.hann_window(self.baseline_taps + 2, periodic=False)[1:-1]
            self.register_buffer("baseline_kernel", (win / win.sum()).view(1, 1, -1), persistent=False)
        self.stem = _block(in_channels * (2 if self.has_baseline else 1), widths[0], k)
        self.down = nn.ModuleList(nn.Conv1d(widths[i], widths[i], 4, stride=2, padding=1)
                                  for i in range(len(widths) - 1))
        self.enc = nn.ModuleList(_block(widths[i], widths[i + 1], k) for i in range(len(widths) - 1))
        self.up = nn.ModuleList(nn.ConvTranspose1d(widths[i + 1], widths[i], 4, stride=2, padding=1)
                                for i in range(len(widths) - 1))
        self.dec = nn.ModuleList(_block(2 * widths[i], widths[i], k) for i in range(len(widths) - 1))
        self.head = nn.Conv1d(widths[0], in_channels, 1)
        self.residual = bool(residual)

    @property
    def has_baseline(self) -> bool:
        """Whether the net splits its input into a slow baseline and the rest."""
        return bool(self.baseline_taps or self.baseline_median)

    @property
    def multiple(self) -> int:
        """Input lengths must be a multiple of this."""
        return 2 ** (len(self.hparams["widths"]) - 1)

    def baseline(self, x: torch.Tensor) -> torch.Tensor:
        """The fixed baseline estimate of *x* (same shape; edges replicate-padded)."""
        if self.baseline_median:
            return self._median_baseline(x)
        b, c, n = x.shape
        t = self.baseline_taps
        xf = F.pad(x.reshape(b * c, 1, n), (t // 2, t // 2), mode="replicate")
        return F.conv1d(xf, self.baseline_kernel).reshape(b, c, n)

    def _median_baseline(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type == "cpu" and all(int(m) % 2 for m in self.baseline_median):
            return running_median_cpu(x.detach(), self.baseline_median)
        b, c, n = x.shape
        rows = x.detach().reshape(b * c, 1, n)
        out = torch.empty_like(rows)
        for i in range(rows.shape[0]):  # one row at a time: the unfolded view is n x length floats
            h = rows[i : i + 1]
            for m in self.baseline_median:
                h = F.pad(h, (m // 2, m // 2), mode="replicate").unfold(-1, m, 1).median(dim=-1).values
            out[i] = h[0]
        return out.reshape(b, c, n)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[-1]
        x0 = x
        if self.has_baseline:
            base = self.baseline(x)
            x = x - base
            inp = torch.cat([x, base], dim=1)
        else:
            inp = x
        pad = (-n) % self.multiple
        h = F.pad(inp, (0, pad), mode="replicate") if pad else inp
        planar = getattr(self, "planar", False)
        if planar:  # the convolutions were made 2-D (1, k) by engine.inference.optimize.planar_signal_convs
            h = h.unsqueeze(2).contiguous(memory_format=torch.channels_last)
        skips = []
        h = self.stem(h)
        for down, enc in zip(self.down, self.enc):
            skips.append(h)
            h = enc(down(h))
        for i in range(len(self.up) - 1, -1, -1):
            h = self.dec[i](torch.cat([self.up[i](h), skips[i]], dim=1))
        out = self.head(h)
        out = (out.squeeze(2) if planar else out)[..., :n]
        if not self.residual:
            return out
        y = x + out
        if self.gate_window and float(self.gate_level) > 0:
            d = y - x0  # the whole change to the input (baseline removal included)
            y = x0 + d * self.gate(d)
        return y

    def gate(self, corr: torch.Tensor) -> torch.Tensor:
        """Do-no-harm gate in [0, 1] for a change to the input ``(batch, channels, samples)`` (ones if uncalibrated)."""
        if not self.gate_window or float(self.gate_level) <= 0:
            return torch.ones_like(corr)
        w = self.gate_window
        e = F.avg_pool1d(F.pad(corr.detach() ** 2, (w // 2, w // 2), mode="replicate"), w, 1).sqrt()
        g = (e / self.gate_level - 1).clamp(0, 1)
        return F.avg_pool1d(F.pad(g, (w // 2, w // 2), mode="replicate"), w, 1)

    def calibrate_gate(self, clean: torch.Tensor, *, quantile: float, chunk: int = 64) -> float:
        """Set ``gate_level`` to the *quantile* of the running RMS (``gate_window`` samples) of the
        UNGATED change ``self(x) - x`` on *clean* windows ``(n, channels, samples)`` in mV (no noise
        added: where the change is no larger than here, the gate leaves the input alone); returns it."""
        if not self.gate_window:
            raise ModelError("signal-unet-dae: this model has no gate (gate_window=0)")
        self.gate_level.zero_()
        was_training = self.training
        self.eval()
        with torch.inference_mode():
            corr = torch.cat([self(clean[i:i + chunk]) - clean[i:i + chunk] for i in range(0, len(clean), chunk)])
            e = F.avg_pool1d(corr ** 2, self.gate_window, 1).sqrt()
        import numpy as np

        level = float(np.quantile(e.numpy().ravel(), quantile))
        self.gate_level.fill_(level)
        self.train(was_training)
        return level


class BeatAE(nn.Module):
    """Convolutional AE for fixed-length beats: ``(batch, 1, length) -> same``.

    Parameters
    ----------
    length : int
        Beat length in samples (a multiple of ``2**len(widths)``).
    widths : sequence of int
        Encoder channels; each level halves the length.
    latent : int
        Bottleneck size (a dense code).
    """

    def __init__(self, *, length: int = 256, widths=(16, 32, 32), latent: int = 16, kernel_size: int = 7):
        super().__init__()
        widths = [int(w) for w in widths]
        m = 2 ** len(widths)
        if length % m or length < m:
            raise ModelError(f"beat-cae: length {length} must be a positive multiple of {m}")
        if latent < 1 or kernel_size % 2 == 0:
            raise ModelError("beat-cae: latent >= 1 and an odd kernel_size are needed")
        self.hparams = {"length": int(length), "widths": widths, "latent": int(latent),
                        "kernel_size": int(kernel_size)}
        self.spatial_dims = 1
        k = kernel_size
        layers, cin = [], 1
        for w in widths:
            layers += [nn.Conv1d(cin, w, k, stride=2, padding=k // 2), nn.GELU()]
            cin = w
        self.encoder = nn.Sequential(*layers)
        self._shape = (widths[-1], length // m)
        flat = widths[-1] * (length // m)
        self.to_code = nn.Linear(flat, latent)
        self.from_code = nn.Linear(latent, flat)
        layers = []
        for i in range(len(widths) - 1, -1, -1):
            cout = widths[i - 1] if i > 0 else 8
            layers += [nn.ConvTranspose1d(widths[i], cout, 4, stride=2, padding=1), nn.GELU()]
        layers.append(nn.Conv1d(8, 1, k, padding=k // 2))
        self.decoder = nn.Sequential(*layers)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.to_code(self.encoder(x).flatten(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.from_code(self.encode(x)).view(x.shape[0], *self._shape)
        return self.decoder(F.gelu(z))


class SegmentClassifier(nn.Module):
    """Stacked sparse AE encoder + logistic (or one-hidden-layer) read-out: windows
    ``(batch, n_windows, n_in)`` + ``(batch, n_extra)`` -> logit.

    The encoder layers (``Linear`` + sigmoid) are pre-trained greedily as sparse AEs
    (KL penalty toward ``rho``) by the training script; this module holds the
    encoder, the standardisation of the inputs and extra features, and the read-out.
    """

    def __init__(self, *, n_in: int, hidden=(64, 16), n_extra: int = 0, readout_hidden: int = 0):
        super().__init__()
        hidden = [int(h) for h in hidden]
        if n_in < 1 or not hidden or min(hidden) < 1 or n_extra < 0 or readout_hidden < 0:
            raise ModelError("ssae-logreg: n_in >= 1, positive hidden sizes, n_extra >= 0 and "
                             "readout_hidden >= 0 are needed")
        self.hparams = {"n_in": int(n_in), "hidden": hidden, "n_extra": int(n_extra),
                        "readout_hidden": int(readout_hidden)}
        sizes = [n_in] + hidden
        self.layers = nn.ModuleList(nn.Linear(sizes[i], sizes[i + 1]) for i in range(len(hidden)))
        self.register_buffer("in_mean", torch.zeros(n_in))
        self.register_buffer("in_std", torch.ones(n_in))
        n_feat = hidden[-1] + n_extra
        self.register_buffer("feat_mean", torch.zeros(n_feat))
        self.register_buffer("feat_std", torch.ones(n_feat))
        if readout_hidden:
            self.readout = nn.Sequential(nn.Linear(n_feat, readout_hidden), nn.Tanh(), nn.Linear(readout_hidden, 1))
        else:
            self.readout = nn.Linear(n_feat, 1)
        self.register_buffer("threshold", torch.zeros(()))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        h = (x - self.in_mean) / self.in_std
        for layer in self.layers:
            h = torch.sigmoid(layer(h))
        return h

    def features(self, x: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        """Standardised segment features from windows ``(batch, n_windows, n_in)`` (+ extra ``(batch, n_extra)``)."""
        h = self.encode(x).mean(dim=1)
        if self.hparams["n_extra"]:
            if extra is None or extra.shape[-1] != self.hparams["n_extra"]:
                raise ModelError(f"ssae-logreg: expects {self.hparams['n_extra']} extra features")
            h = torch.cat([h, extra], dim=-1)
        return (h - self.feat_mean) / self.feat_std

    def forward(self, x: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        """Segment logit (higher = more seizure-like), shape ``(batch,)``."""
        return self.readout(self.features(x, extra)).squeeze(-1)
