"""An ungated copy of a gated CV fold ecg-dae (same weights, gate removed), configured as the shipped ecg-dae.

    .venv/bin/python scripts/ungate_ecg_dae.py runs/cv/wide/fold0.safetensors runs/cv/wide/fold0-nogate.safetensors

Used as the ``--parent`` of ``benchmarks/bench_finetune.py --part ecg`` (the shipped model has no gate).
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from engine.models.signal_nets import SignalUNetDAE  # noqa: E402
from engine.weights import load, save  # noqa: E402

src, dst = Path(sys.argv[1]), Path(sys.argv[2])
lm = load(src)
hp = {k: v for k, v in lm.module.hparams.items() if k != "gate_window"}
m = SignalUNetDAE(**hp)
sd = {k: v for k, v in lm.module.state_dict().items() if k != "gate_level"}
m.load_state_dict(sd)
meta = {k: v for k, v in lm.meta.items() if k not in ("sha256", "file", "format_version")}
meta["hparams"] = m.hparams
tr = dict(meta["training"])
tr["gate"] = None
tr["derived_from"] = f"{src.name} with its do-no-harm gate removed (weights unchanged), as the shipped ecg-dae"
meta["training"] = tr
print(save(m, dst, meta))
