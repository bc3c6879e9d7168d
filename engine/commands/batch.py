"""``python -m engine batch TASK INPUTS... --out DIR``: one task over many files on a Dask cluster."""
from __future__ import annotations

import json
import sys


def register(sub) -> None:
    from engine.tasks import TASKS

    p = sub.add_parser(
        "batch", help="run a task over many files (folders and globs expanded) on a local or remote Dask "
                      "cluster; one output folder per input and OUT/manifest.csv",
        description="Run TASK over every input. A folder of DICOM files is one CT series; other folders "
                    "give one input per image, slide or record. Exit status 0 when every input is ok or "
                    "skipped, 1 when some failed (see OUT/manifest.csv), 2 on a usage error.")
    p.add_argument("task", choices=sorted(TASKS), help="the analysis to run on each input")
    p.add_argument("inputs", nargs="+", help="files, folders or glob patterns (quote globs: 'slides/*.svs')")
    p.add_argument("--out", required=True, help="batch folder: OUT/<input>/... and OUT/manifest.csv")
    g = p.add_argument_group("task options (as in the single-file commands)")
    g.add_argument("--model", default=None, help="bundled model name or .safetensors path (default: the task's)")
    g.add_argument("--device", default=None, help="cpu, cuda ... (default: the worker's GPU, else CPU)")
    g.add_argument("--mpp", type=float, default=None, help="H&E microns per pixel when the files do not say")
    g.add_argument("--roi", default=None, metavar="x,y,w,h", help="detect-nuclei: only this level-0 region")
    g.add_argument("--threshold", type=float, default=None, help="detect-nuclei: peak score threshold")
    g.add_argument("--tile", type=int, default=None, help="detect-nuclei: tile size in model pixels")
    g.add_argument("--sfreq", type=float, default=None, help="Hz, for headerless text/NPY signals")
    g.add_argument("--modality", choices=("ecg", "eeg"), default=None, help="override the signal modality guess")
    g.add_argument("--series-uid", default=None, help="CT: the series to open in folders with several")
    g.add_argument("--mode", choices=("replace", "gated"), default=None, help="denoise: see `denoise --help`")
    g.add_argument("--batch-size", type=int, default=None, help="tiles/windows per forward pass")
    g.add_argument("--channel", type=int, default=None, help="score-beats: lead to score (default 0)")
    g.add_argument("--no-rr", action="store_true", help="score-beats: leave out the RR-prematurity term")
    c = p.add_argument_group("cluster")
    c.add_argument("--workers", type=int, default=None,
                   help="local worker processes (default: one per GPU, else 1); torch threads = cores // workers")
    c.add_argument("--gpus", type=int, default=None, help="local GPUs to use (default all; 0 = CPU workers)")
    c.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="existing Dask scheduler, e.g. tcp://host:8786 (workers need Latent and the files)")
    p.add_argument("--resume", action="store_true",
                   help="skip inputs done before: outputs exist and sha256 matches the manifest (status skipped)")
    p.add_argument("--json", action="store_true", help="print the summary and every row as one JSON object")
    p.set_defaults(func=run)


def options_from_args(args) -> dict:
    """The task options given on the command line (unset ones left out)."""
    opts = {k: getattr(args, k) for k in ("model", "device", "mpp", "roi", "threshold", "tile", "sfreq",
                                          "modality", "series_uid", "mode", "batch_size", "channel")}
    if args.no_rr:
        opts["use_rr"] = False
    return {k: v for k, v in opts.items() if v is not None}


def run(args) -> int:
    from engine.batch import batch_task
    from engine.commands._progress import run_with_bar

    job = batch_task(args.inputs, task=args.task, out_dir=args.out, options=options_from_args(args),
                     workers=args.workers, scheduler=args.scheduler, resume=args.resume, gpus=args.gpus)
    result = run_with_bar(f"batch {args.task}", job)
    if args.json:
        print(json.dumps(result.summary(), default=str))
    else:
        for r in result.rows:
            if r.status == "error":
                print(f"error     {r.message}", file=sys.stderr)
        print(f"{result.count('ok')} ok, {result.count('error')} error, {result.count('skipped')} skipped "
              f"of {len(result.rows)} input(s) in {result.seconds:.1f} s on {result.workers} worker(s)")
        print(f"wrote     {result.manifest}")
    return 1 if result.count("error") else 0
