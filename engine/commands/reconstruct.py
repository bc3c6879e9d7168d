"""``python -m engine reconstruct PATH``: reconstruction + calibrated anomaly map."""
from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("reconstruct", help="reconstruct an image or recording with an autoencoder and "
                                           "write the reconstruction, anomaly map and summary")
    p.add_argument("path", help="CT file/folder/DICOMDIR, H&E image or slide, ECG/EEG recording")
    p.add_argument("--model", default=None, help="bundled model name or .safetensors file "
                                                 "(default: the bundled model for the data's modality)")
    p.add_argument("--sfreq", type=float, default=None, help="sampling rate in Hz for headerless signals")
    p.add_argument("--modality", choices=("ecg", "eeg"), default=None, help="override the signal modality guess")
    p.add_argument("--mpp", type=float, default=None,
                   help="H&E microns per pixel when the file does not say (the model rescales to its own)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps (default: CUDA, then MPS, then CPU)")
    p.add_argument("--batch-size", type=int, default=None, help="tiles/windows per forward pass")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--formats", default=None, help="comma list; images: tiff,nifti,dicom-pm,dicom-seg,dicom-sc,"
                                                   "ome-tiff (default tiff); signals: native,npy (default npy)")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object on stdout")
    p.set_defaults(func=run)


def run(args) -> int:
    from engine.commands._progress import report, run_with_bar
    from engine.export import check_formats
    from engine.io import opened
    from engine.tasks.reconstruct import reconstruct_task, write_reconstruction

    opts = {k: v for k, v in (("sfreq", args.sfreq), ("modality", args.modality), ("mpp", args.mpp))
            if v is not None}
    with opened(args.path, **opts) as data:
        check_formats(args.formats, data)  # a bad --formats fails before the inference, not after
        result = run_with_bar("reconstruct", reconstruct_task(data, model=args.model, device=args.device,
                                                              batch_size=args.batch_size))
        paths = write_reconstruction(result, data, args.out, formats=args.formats)
    s = result.summary
    st = s.get("anomaly", {}).get("stats", {})
    report(args.json, s, paths, lambda: [
        f"model:    {s['model']['name']} (sha256 {s['model']['sha256'][:16]}…)",
        f"device:   {s['device']}, {s['timings_s']['total']:.2f} s",
        f"anomaly:  mean {st['mean']:.3f}, p99 {st['p99']:.3f}, max {st['max']:.3f}, "
        f"{100 * st['fraction_above_1']:.2f}% above the normal p99"], key="outputs")
    return 0
