"""ECG denoising benchmark: leave-records-out CV of the DAE against a band-pass and a wavelet baseline.

    .venv/bin/python benchmarks/bench_ecg_denoise.py --folds-dir DIR [--data ../shared/data]
        [--seconds 120] [--json out.json]

Protocol (issue 13; the way the product is checked on held-out records):
* every MIT-BIH record in ``ecg/mitdb`` is in exactly one test fold
  (``signal_splits.ecg_folds``: 5 folds, fixed seed); ``DIR/fold<k>.safetensors`` is the
  DAE trained on the other folds (``scripts/train_ecg_dae.py --fold k``), and is only
  ever run on fold *k*'s records (the benchmark checks ``training.records``);
* per record, 2 minutes of lead **MLII, read by name**, from a seeded start; reference =
  that lead minus its own baseline (200 ms then 600 ms running medians,
  ``ecg_noise.clean_reference``, computed with 2 s of margin), minus its mean;
* noise = the *test* half of NSTDB ``bw``/``ma`` (second half in time) or the last
  three ``em`` blocks of 118e00 (never trained on), scaled to an exact input SNR of
  -6, 0, 6, 12 dB; fixed seeds;
* clean-input floor = output SNR against the reference when the reference itself is
  the input (do no harm: a method's change to a noise-free input is error).
Methods: the fold DAE through the real ``denoise`` task, ungated (``DAE raw``) and with
its calibrated do-no-harm gate (``DAE gated``); the 0.5-40 Hz zero-phase 4th-order
Butterworth band-pass; wavelet denoising (sym8, level 9: approximation removed,
details soft-thresholded at the universal threshold); and the running-median baseline
subtraction alone (``median bl``: the classical step the DAE's baseline path uses).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))  # benchmark data helpers

SNRS = (-6, 0, 6, 12)
KINDS = ("bw", "ma", "em")
FS = 360.0
MARGIN_S = 2.0


def bandpass(x: np.ndarray, fs: float = FS) -> np.ndarray:
    from scipy.signal import butter, sosfiltfilt

    sos = butter(4, [0.5, 40.0], btype="bandpass", fs=fs, output="sos")
    return sosfiltfilt(sos, x, axis=-1)


def wavelet(x: np.ndarray, wave: str = "sym8", level: int = 9) -> np.ndarray:
    import pywt

    out = []
    for row in np.atleast_2d(x):
        lv = min(level, pywt.dwt_max_level(row.size, pywt.Wavelet(wave).dec_len))
        c = pywt.wavedec(row, wave, level=lv)
        sigma = np.median(np.abs(c[-1])) / 0.6745
        thr = sigma * np.sqrt(2 * np.log(row.size))
        c = [np.zeros_like(c[0])] + [pywt.threshold(d, thr, mode="soft") for d in c[1:]]
        out.append(pywt.waverec(c, wave)[: row.size])
    return np.asarray(out).reshape(np.shape(x))


def median_bl(x: np.ndarray, fs: float = FS) -> np.ndarray:
    from ecg_noise import baseline_estimate

    return x - baseline_estimate(x, fs)


def record_segment(mitdb: Path, name: str, seconds: float, rng) -> np.ndarray:
    """The reference: *seconds* of lead MLII (by name) minus its own baseline, minus its mean."""
    from ecg_noise import clean_reference

    from engine.errors import ReadError
    from engine.io import read

    sig = read(str(mitdb / name))
    if "MLII" not in sig.channels:
        raise ReadError(mitdb / name, f"no lead named MLII (leads: {', '.join(sig.channels)})")
    ch = sig.channels.index("MLII")
    n, m = int(seconds * FS), int(MARGIN_S * FS)
    s = int(rng.integers(m, sig.n_samples - n - m))
    c = clean_reference(sig.read(s - m, s + n + m)[ch], FS)[m:m + n]
    return c - c.mean()


def run_dae(lm, x: np.ndarray, gate_level: float) -> np.ndarray:
    """Rows of *x* through the real denoise task with the model's gate level set to *gate_level*."""
    import torch

    from engine.data import Signal
    from engine.jobs import run_job
    from engine.tasks.denoise import denoise_task

    mod = lm.module
    saved = float(mod.gate_level) if getattr(mod, "gate_window", 0) else None
    if saved is not None:
        mod.gate_level.fill_(gate_level)
    try:
        sig = Signal.from_array(x.astype(np.float32), sfreq=FS, modality="ecg", path="bench")
        with torch.inference_mode():
            return run_job(denoise_task(sig, model=lm, device="cpu")).signal.data.astype(np.float64)
    finally:
        if saved is not None:
            mod.gate_level.fill_(saved)


def evaluate_record(lm, clean: np.ndarray, noise: dict, seed: int) -> dict:
    """All methods on one record: ``{method: {"floor": (snr, rmse, prd), (kind, snr): (imp, rmse, prd)}}``."""
    from ecg_noise import mix_at_snr, noise_segment, prd, rmse, snr_db

    rng = np.random.default_rng(seed)
    keys = [(k, s) for k in KINDS for s in SNRS]
    inputs = [mix_at_snr(clean, noise_segment(noise[k], clean.size, rng), s) for k, s in keys] + [clean]
    x = np.asarray(inputs)
    outs = {"bandpass": bandpass(x), "wavelet": wavelet(x), "median bl": median_bl(x)}
    if lm is not None:
        level = float(lm.meta.get("training", {}).get("gate", {}) and lm.meta["training"]["gate"]["level_mV"] or 0)
        outs["DAE raw"] = run_dae(lm, x, 0.0)
        if level > 0:
            outs["DAE gated"] = run_dae(lm, x, level)
    res = {}
    for m, y in outs.items():
        r = {key: (snr_db(clean, y[i]) - snr_db(clean, x[i]), rmse(clean, y[i]), prd(clean, y[i]))
             for i, key in enumerate(keys)}
        r["floor"] = (snr_db(clean, y[-1]), rmse(clean, y[-1]), prd(clean, y[-1]))
        res[m] = r
    return res


def report(results: dict, folds: list, methods: list[str]) -> None:
    """Print the pooled, per-record, floor and acceptance tables (markdown)."""
    recs = list(results)
    cell = lambda m, key, j=0: np.array([results[r][m][key][j] for r in recs])  # noqa: E731
    print("\n### Pooled over records (mean; worst record = lowest SNR improvement)\n")
    print("| noise | SNR in | method | SNR imp dB | worst (record) | RMSE mV | PRD % |")
    print("|---|---|---|---|---|---|---|")
    for k in KINDS:
        for s in SNRS:
            for m in methods:
                v = cell(m, (k, s))
                w = int(np.argmin(v))
                print(f"| {k} | {s} | {m} | {v.mean():.2f} | {v[w]:.2f} ({recs[w]}) | "
                      f"{cell(m, (k, s), 1).mean():.4f} | {cell(m, (k, s), 2).mean():.1f} |")
    print("\n### Clean-input floor per record (output SNR vs the reference, dB; PRD % for the DAE)\n")
    print("| fold | record | " + " | ".join(methods) + " |")
    print("|---|---|" + "---|" * len(methods))
    fold_of = {r: i for i, f in enumerate(folds) for r in f}
    for r in recs:
        print(f"| {fold_of.get(r, '-')} | {r} | " + " | ".join(f"{results[r][m]['floor'][0]:.2f}" for m in methods) + " |")
    print("| | **mean** | " + " | ".join(f"**{cell(m, 'floor').mean():.2f}**" for m in methods) + " |")
    print("| | **worst** | " + " | ".join(f"{cell(m, 'floor').min():.2f} ({recs[int(np.argmin(cell(m, 'floor')))]})"
                                          for m in methods) + " |")
    print("\n### Per record at 0 dB input (SNR improvement, dB: bw / ma / em)\n")
    print("| record | " + " | ".join(methods) + " |")
    print("|---|" + "---|" * len(methods))
    for r in recs:
        print(f"| {r} | " + " | ".join(" / ".join(f"{results[r][m][(k, 0)][0]:.1f}" for k in KINDS)
                                      for m in methods) + " |")
    print("\n### Per fold (0 dB mean SNR improvement bw / ma / em; mean floor)\n")
    print("| fold | records | " + " | ".join(methods) + " |")
    print("|---|---|" + "---|" * len(methods))
    for i, f in enumerate(folds):
        fr = [r for r in f if r in results]
        if not fr:
            continue
        cells = []
        for m in methods:
            v = [np.mean([results[r][m][(k, 0)][0] for r in fr]) for k in KINDS]
            cells.append(" / ".join(f"{a:.1f}" for a in v) + f"; {np.mean([results[r][m]['floor'][0] for r in fr]):.1f}")
        print(f"| {i} | {' '.join(fr)} | " + " | ".join(cells) + " |")
    bp = {k: cell("bandpass", (k, 0)).mean() for k in KINDS}
    print("\n### Acceptance view (0 dB input)\n")
    for m in methods:
        d = {k: cell(m, (k, 0)).mean() for k in KINDS}
        fl, fbp = cell(m, "floor"), cell("bandpass", "floor")
        checks = [("mean bw+ma >= 12", (d["bw"] + d["ma"]) / 2 >= 12), ("bw >= band-pass", d["bw"] >= bp["bw"]),
                  ("ma >= band-pass + 3", d["ma"] >= bp["ma"] + 3), ("em >= band-pass + 3", d["em"] >= bp["em"] + 3),
                  ("floor mean >= band-pass", fl.mean() >= fbp.mean()), ("floor >= 15 dB every record", fl.min() >= 15)]
        print(f"- {m}: bw {d['bw']:.2f}, ma {d['ma']:.2f}, em {d['em']:.2f} (band-pass {bp['bw']:.2f} / {bp['ma']:.2f} / "
              f"{bp['em']:.2f}); floor mean {fl.mean():.2f}, min {fl.min():.2f}; "
              + ", ".join(f"{n}: {'yes' if ok else 'NO'}" for n, ok in checks))


def main(argv=None) -> int:
    import torch
    from ecg_noise import load_noise
    from signal_splits import ecg_folds

    from engine.errors import ModelError
    from engine.weights import load

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--folds-dir", type=Path, default=None,
                    help="folder with fold<k>.safetensors (none: the baselines only)")
    ap.add_argument("--records", nargs="*", default=None, help="a subset of the records (default: all)")
    ap.add_argument("--seconds", type=float, default=120.0, help="segment length per record")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--json", type=Path, default=None, help="also write every figure here")
    ap.add_argument("--fold", type=int, default=None, help="only this fold (run folds in parallel, then --merge)")
    ap.add_argument("--merge", type=Path, nargs="*", default=None, help="print the tables from these --json files")
    args = ap.parse_args(argv)
    folds = ecg_folds()
    if args.merge:
        import ast

        results = {}
        for f in args.merge:
            for r, res in json.loads(f.read_text()).items():
                results[r] = {m: {ast.literal_eval(k) if k.startswith("(") else k: tuple(v) for k, v in d.items()}
                              for m, d in res.items()}
        order = [r for f in folds for r in f if r in results]
        results = {r: results[r] for r in order}
        methods = [m for m in ("DAE raw", "DAE gated", "bandpass", "wavelet", "median bl")
                   if all(m in results[r] for r in results)]
        report(results, folds, methods)
        return 0
    torch.set_num_threads(1)
    mitdb, nstdb = args.data / "ecg" / "mitdb", args.data / "ecg" / "nstdb"
    noise = {k: load_noise(nstdb, k, part="test", mitdb_dir=mitdb) for k in KINDS}
    results, t0 = {}, time.perf_counter()
    methods = ["bandpass", "wavelet", "median bl"]
    for i, fold in enumerate(folds):
        if args.fold is not None and i != args.fold:
            continue
        lm = None
        if args.folds_dir is not None:
            lm = load(args.folds_dir / f"fold{i}.safetensors")
            leak = set(fold) & set(lm.meta.get("training", {}).get("records", []))
            if leak:
                raise ModelError(f"fold {i} model was trained on its test records {sorted(leak)}")
            methods = ["DAE raw", "DAE gated", "bandpass", "wavelet", "median bl"]
        for r in fold:
            if args.records and r not in args.records:
                continue
            seed = args.seed * 1000 + int(r)
            clean = record_segment(mitdb, r, args.seconds, np.random.default_rng(seed))
            results[r] = evaluate_record(lm, clean, noise, seed + 1)
            print(f"fold {i} record {r}: floor " + ", ".join(f"{m} {v['floor'][0]:.1f}" for m, v in results[r].items())
                  + "; ma 0 dB " + ", ".join(f"{m} {v[('ma', 0)][0]:.1f}" for m, v in results[r].items())
                  + f" ({time.perf_counter() - t0:.0f} s)", flush=True)
    methods = [m for m in methods if all(m in results[r] for r in results)]
    report(results, folds, methods)
    if args.json:
        from engine._shared.files import write_json_atomic

        write_json_atomic(args.json, {r: {m: {str(k): v for k, v in d.items()} for m, d in res.items()}
                                      for r, res in results.items()})
    print(f"\n{len(results)} records x {args.seconds:g} s, {time.perf_counter() - t0:.0f} s wall (1 thread)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
