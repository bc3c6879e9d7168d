"""Recipe sweep for the ecg-dae fine-tune (README "Transfer learning", (b) ECG): fine-tune on the first
5 minutes of one MIT-BIH record and print the fine-tune's OWN held-out validation (the last minute of
those 5: floor and 0 dB improvement with the shipped NSTDB validation-part noise), gated (as the product
runs the model) and with the gate off (diagnostic). It never reads the record past minute 5, so choosing
a recipe here leaves benchmarks/bench_finetune.py's test minutes 5-30 untouched.

    nice .venv/bin/python benchmarks/sweep_ecg_finetune.py PARENT.safetensors \\
        '[{"name": "c03", "clean": 0.3, "gate": "parent", "seed": 0}, ...]' [--record 100]

Variant keys: clean / own (fractions), gate ("parent" | "recalibrate"), steps, lr, freeze, seed.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
KEYS = ("floor_db", "bw_+0dB_improvement_db", "ma_+0dB_improvement_db", "em_+0dB_improvement_db")


def main(argv=None) -> int:
    import torch

    from engine import weights
    from engine.data import Signal
    from engine.io import read
    from engine.jobs import run_job
    from engine.training.finetune import ecg, finetune

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("parent")
    ap.add_argument("variants", help="JSON list of variants")
    ap.add_argument("--record", default="100")
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    parent = weights.load(args.parent)
    sig = read(str(args.data / "ecg" / "mitdb" / args.record))
    cut = int(5 * 60 * 360.0)
    first = Signal.from_array(sig.read(0, cut).astype(np.float32), sfreq=sig.sfreq, modality="ecg",
                              channels=sig.channels, units=sig.units, path=f"mitdb/{args.record} [0, 5 min)")
    held = [Signal.from_array(first.read(int(round(cut * 0.8)), cut).astype(np.float32), sfreq=sig.sfreq,
                              modality="ecg", path="held-out part")]  # the fine-tune's own held-out split

    def gate_off(lm):
        net = copy.deepcopy(lm.module)
        if getattr(net, "gate_window", 0):
            net.gate_level.zero_()
        return dataclasses.replace(lm, module=net)

    def fmt(d):
        return " ".join(f"{d[k]:6.2f}" for k in KEYS)
    defaults = (ecg.DAE_CLEAN_FRACTION, ecg.DAE_OWN_BASELINE_FRACTION, ecg.DAE_GATE)
    for v in json.loads(args.variants):
        ecg.DAE_CLEAN_FRACTION = v.get("clean", defaults[0])
        ecg.DAE_OWN_BASELINE_FRACTION = v.get("own", defaults[1])
        ecg.DAE_GATE = v.get("gate", defaults[2])
        t0 = time.time()
        with tempfile.TemporaryDirectory() as out:
            res = run_job(finetune(parent, [first], out_dir=out, name="m", steps=v.get("steps"), lr=v.get("lr"),
                                   freeze=v.get("freeze", "none"), seed=v.get("seed", 0), device="cpu"))
            after = weights.load(res["model"])
        b, a = res["validation"]["before"], res["validation"]["after"]
        ub, ua = (ecg.ecg_denoise_metrics(gate_off(m), held) for m in (parent, after))
        print(json.dumps({"variant": v, "before": b, "after": a, "before_gate_off": ub, "after_gate_off": ua,
                          "seconds": round(time.time() - t0)}), flush=True)
        print(f"{v.get('name', v)}: gated {fmt(b)} -> {fmt(a)} | gate off {fmt(ub)} -> {fmt(ua)}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
