"""bf16 autocast (engine.inference.optimize): when it is used, and what it does to nucleus detection."""
from __future__ import annotations

import numpy as np
import torch

from engine.inference.optimize import Bf16Autocast, cpu_has_bf16, for_inference, resolve_bf16


def test_resolve_bf16_explicit_wins_and_auto_is_native_cpu_only():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    for dev in (cpu, cuda):
        assert resolve_bf16(True, dev) is True and resolve_bf16(False, dev) is False
    assert resolve_bf16(None, cuda) is False  # the accuracy checks behind "auto" ran on CPU
    assert resolve_bf16(None, cpu) is cpu_has_bf16()
    flags = next((ln for ln in open("/proc/cpuinfo") if ln.startswith("flags")), "").split()
    assert cpu_has_bf16() == ("avx512_bf16" in flags or "amx_bf16" in flags)


def test_bf16_wrapper_keeps_attributes_dtype_and_the_original(data_dir):
    from PIL import Image as PILImage

    from engine.tasks.nuclei import load_detector
    from engine.tasks.nuclei.core import network_stride, probability_map, to_tensor

    loaded = load_detector("histo-nuclei")
    net = for_inference(loaded.module, bf16=True)
    assert isinstance(net, Bf16Autocast) and not isinstance(for_inference(loaded.module), Bf16Autocast)
    assert network_stride(net) == network_stride(loaded.module)
    assert next(loaded.module.parameters()).dtype == torch.float32  # the cached network is untouched
    x = to_tensor(np.asarray(PILImage.open(data_dir / "histo/crchisto/img4/img4.png").convert("RGB")))
    p32, p16 = probability_map(loaded.module.eval(), x), probability_map(net, x)
    assert p16.dtype == torch.float32
    assert 0 < float((p16 - p32).abs().max()) < 0.05  # bf16 is not float32, but close


def test_bf16_detection_f1_on_crchisto_validation_images(data_dir):
    """Two validation images (never trained on): bf16 pooled F1 within 0.01 of float32's."""
    from nuclei_sets import crchisto_truth

    import engine.io
    from engine.jobs import run_job
    from engine.tasks.nuclei import detect_task, load_detector
    from engine.tasks.nuclei.evaluate import precision_recall_f1

    det = load_detector("histo-nuclei")
    counts = {False: np.zeros(3), True: np.zeros(3)}
    for name in ("img4", "img7"):
        folder = data_dir / "histo/crchisto" / name
        img = engine.io.read(str(folder / f"{name}.png"))
        for bf16 in (False, True):
            res = run_job(detect_task(img, model=det, device="cpu", mpp=0.5, bf16=bf16, outlines=False))
            assert res.params["precision"] == ("bf16 autocast" if bf16 else "float32")
            r = precision_recall_f1(res.xy, crchisto_truth(folder / f"{name}_detection.mat"), 6.0)
            counts[bf16] += (r["tp"], r["fp"], r["fn"])
    f1 = {k: 2 * c[0] / (2 * c[0] + c[1] + c[2]) for k, c in counts.items()}
    assert f1[False] > 0.75 and abs(f1[True] - f1[False]) < 0.01, f1
