"""``python -m engine score-segments FILE...``: seizure-likeness of EEG segments (Bonn-style files)."""
from __future__ import annotations

from engine.commands._options import SCORE_FORMATS_HELP, add_device, add_model, add_outputs, add_signal


def register(sub) -> None:
    p = sub.add_parser("score-segments", help="score EEG segments for seizure activity (higher = more "
                                              "seizure-like); writes OUT/segments.csv with file,score,seizure")
    p.add_argument("files", nargs="+", help="EEG segment files (Bonn text, EDF, ...); one row per file")
    add_signal(p, "sampling rate in Hz of headerless text files (default: the model's, 173.61 Hz for eeg-seizure)")
    add_model(p, "default: eeg-seizure")
    add_device(p, "cpu or cuda")
    add_outputs(p, run, formats_help=SCORE_FORMATS_HELP, formats_metavar="LIST")


def run(args) -> int:
    from engine.commands._progress import report, run_with_bar
    from engine.export.signal_annotations import check_score_formats
    from engine.tasks.score_segments import read_segments, score_segments_task, summarize, write_segment_scores

    datas = read_segments(args.files, sfreq=args.sfreq, model=args.model)
    check_score_formats(args.formats, datas)  # before the run, not after it
    result = run_with_bar("score-segments", score_segments_task(datas, model=args.model, device=args.device))
    paths = write_segment_scores(result, datas, args.out, args.formats)
    summary = summarize(result, datas)
    report(args.json, summary, paths, lambda: [
        f"model:    {result.model} (sha256 {result.sha256[:16]}…)  threshold {result.threshold}",
        f"segments: {len(result.score)}, {int(result.label.sum())} seizure-like"])
    return 0
