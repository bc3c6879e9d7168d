"""Diagnostic for electrode-motion (em) denoising: is the DAE limited by unseen noise or by the task?

    .venv/bin/python benchmarks/diag_ecg_em.py FOLD MODEL.safetensors [--data ../shared/data]

On the records of CV fold FOLD (never trained on by a ``--fold FOLD`` model), 2 minutes of MLII per
record (reference as in bench_ecg_denoise.py), 3 em segments per record mixed at 0 dB input SNR, from
the em blocks the DAE was trained on ("train": blocks 1-4 of 118e00) and from the held-out blocks
("test": 5-7). Prints the mean SNR improvement of the band-pass and the DAE (ungated, the real
``denoise`` task) for both. A large train/test gap would point at too little em noise; equal gaps over
the band-pass point at the model. Seeds are fixed; not the acceptance protocol (bench_ecg_denoise.py is).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "scripts"), str(REPO / "benchmarks")]


def main(argv=None) -> int:
    import torch

    import bench_ecg_denoise as B
    from ecg_noise import load_noise, mix_at_snr, noise_segment, snr_db
    from signal_splits import ecg_folds

    from engine.weights import load

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("fold", type=int)
    ap.add_argument("model", type=Path)
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    mitdb, nstdb = args.data / "ecg" / "mitdb", args.data / "ecg" / "nstdb"
    lm = load(args.model)
    held = ecg_folds()[args.fold]
    trained_on = set(lm.meta.get("training", {}).get("records") or [])
    if trained_on & set(held):
        raise SystemExit(f"{args.model} was trained on fold {args.fold} records {sorted(trained_on & set(held))}")
    print(f"fold {args.fold} records {' '.join(held)}; model {args.model.name}")
    print("| em blocks | band-pass dB | DAE dB | DAE - band-pass |\n|---|---|---|---|")
    for part in ("train", "test"):
        noise = load_noise(nstdb, "em", part=part, mitdb_dir=mitdb)
        bp, dae = [], []
        for i, r in enumerate(held):
            rng = np.random.default_rng(100 + i)
            clean = B.record_segment(mitdb, r, 120.0, rng)
            xs = np.asarray([mix_at_snr(clean, noise_segment(noise, clean.size, rng), 0) for _ in range(3)])
            y, b = B.run_dae(lm, xs, 0.0), B.bandpass(xs)
            dae += [snr_db(clean, y[j]) - snr_db(clean, xs[j]) for j in range(3)]
            bp += [snr_db(clean, b[j]) - snr_db(clean, xs[j]) for j in range(3)]
        print(f"| {part} | {np.mean(bp):.2f} | {np.mean(dae):.2f} | {np.mean(dae) - np.mean(bp):+.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
