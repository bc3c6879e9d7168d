"""``python -m engine denoise RECORD``: denoise an ECG/EEG recording with a denoising AE."""
from __future__ import annotations

from engine.commands._options import add_device, add_input, add_outputs


def register(sub) -> None:
    p = sub.add_parser("denoise", help="denoise an ECG or EEG recording (WFDB in -> WFDB out, EDF in -> EDF out, "
                                       "plus .npy and a summary JSON)")
    add_input(p, "record", "WFDB record (path with or without .hea), EDF/BDF/..., or text/NPY signal",
              model_default="default: ecg-dae for ECG, the EEG denoiser for EEG",
              sfreq_help="sampling rate in Hz for headerless text/NPY signals",
              modality_help="override the modality guess")
    p.add_argument("--mode", choices=("replace", "gated"), default="replace",
                   help="replace: output = model output; gated (EEG artefact reduction): keep the input "
                        "except where the calibrated anomaly exceeds the normal p99")
    add_device(p)
    p.add_argument("--batch-size", type=int, default=32, help="windows per forward pass")
    p.add_argument("--precision", choices=("auto", "float32", "bf16"), default="auto",
                   help="network arithmetic. auto (default): bfloat16 autocast for ECG on CPUs with native bf16 "
                        "(output SNR within 0.04 dB of float32), else float32")
    add_outputs(p, run)


def run(args) -> int:
    from engine.commands._progress import report, run_with_bar
    from engine.io import opened
    from engine.tasks.denoise import denoise_task, summarize, write_denoised

    opts = {k: v for k, v in (("sfreq", args.sfreq), ("modality", args.modality)) if v is not None}
    with opened(args.record, **opts) as data:
        result = run_with_bar("denoise", denoise_task(data, model=args.model, device=args.device,
                                                      mode=args.mode, batch_size=args.batch_size,
                                                      bf16={"auto": None, "float32": False,
                                                            "bf16": True}[args.precision]))
        paths = write_denoised(result, data, args.out)
        summary = summarize(result, data, outputs=paths[:-1])
    report(args.json, summary, paths, lambda: [
        f"model:    {result.model} (sha256 {result.sha256[:16]}…)",
        f"signal:   {len(result.signal.channels)} channel(s), {result.signal.n_samples} samples "
        f"at {result.signal.sfreq:g} Hz, {summary['timings_s'].get('total', 0):.2f} s"])
    return 0
