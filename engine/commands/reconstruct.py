"""``python -m engine reconstruct PATH``: reconstruction + calibrated anomaly map."""
from __future__ import annotations

from engine.commands._options import add_device, add_input, add_outputs


def register(sub) -> None:
    p = sub.add_parser("reconstruct", help="reconstruct an image or recording with an autoencoder and "
                                           "write the reconstruction, anomaly map and summary")
    add_input(p, "path", "CT file/folder/DICOMDIR, H&E image or slide, ECG/EEG recording",
              model_default="default: the bundled model for the data's modality",
              sfreq_help="sampling rate in Hz for headerless signals",
              modality_help="override the signal modality guess")
    p.add_argument("--mpp", type=float, default=None,
                   help="H&E microns per pixel when the file does not say (the model rescales to its own)")
    add_device(p, "cpu, cuda, cuda:1, mps (default: CUDA, then MPS, then CPU)")
    p.add_argument("--batch-size", type=int, default=None, help="tiles/windows per forward pass")
    add_outputs(p, run, formats_help="comma list; images: tiff,nifti,dicom-pm,dicom-seg,dicom-sc,"
                                     "ome-tiff (default tiff); signals: native,npy (default npy)")


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
