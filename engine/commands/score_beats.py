"""``python -m engine score-beats RECORD``: per-beat anomaly scores for an ECG record."""
from __future__ import annotations

from engine.commands._options import SCORE_FORMATS_HELP, add_device, add_input, add_outputs


def register(sub) -> None:
    p = sub.add_parser("score-beats", help="score every beat of an ECG record (higher = more abnormal); "
                                           "writes OUT/<record>.beats.csv with sample,symbol,score")
    add_input(p, "record", "WFDB record (beats from its annotations, else a QRS detector) or EDF/text ECG",
              model_default="default: ecg-beats", sfreq_help="sampling rate in Hz for headerless text/NPY signals")
    p.add_argument("--channel", type=int, default=None, help="lead to score (default: MLII by name, else 0)")
    p.add_argument("--no-rr", action="store_true", help="morphology only: leave out the RR-prematurity term")
    add_device(p)
    add_outputs(p, run, formats_help=SCORE_FORMATS_HELP, formats_metavar="LIST")


def run(args) -> int:
    from engine.commands._progress import report, run_with_bar
    from engine.export.signal_annotations import check_score_formats
    from engine.io import opened
    from engine.tasks.score_beats import score_beats_task, summarize, write_beat_scores

    from engine.tasks._modality import reader_modality

    opts = {}
    modality = reader_modality(args.record, "ecg")  # an EEG recording is refused, not relabelled
    if modality is not None:
        opts["modality"] = modality
    if args.sfreq is not None:
        opts["sfreq"] = args.sfreq
    with opened(args.record, **opts) as data:
        check_score_formats(args.formats, data)  # before the run, not after it
        result = run_with_bar("score-beats", score_beats_task(data, model=args.model, device=args.device,
                                                              channel=args.channel, use_rr=not args.no_rr))
        paths = write_beat_scores(result, data, args.out, args.formats)
        summary = summarize(result, data)
    report(args.json, summary, paths, lambda: [
        f"model:    {result.model} (sha256 {result.sha256[:16]}…)",
        f"beats:    {summary['n_beats']} ({result.params['beats_from']}), "
        f"{summary['n_above_threshold']} above the threshold {summary['threshold']}"])
    return 0
