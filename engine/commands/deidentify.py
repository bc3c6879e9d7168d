"""``python -m engine deidentify INPUT --out DIR``: de-identified copies of DICOM, EDF/BDF or WFDB."""
from __future__ import annotations

from engine.commands._options import add_outputs


def register(sub) -> None:
    from engine.export.deidentify import PROFILES

    p = sub.add_parser("deidentify", help="write de-identified copies of a DICOM series/folder, an EDF/BDF "
                                          "file or a WFDB record (PS3.15 Annex E basic profile for DICOM)")
    p.add_argument("path", help="DICOM file or folder, .edf/.bdf file, or WFDB record (.hea)")
    p.add_argument("--out", required=True, help="output folder (not inside the input folder)")
    p.add_argument("--profile", choices=tuple(PROFILES), default="basic",
                   help="basic (dates emptied, UIDs remapped), retain-dates, retain-uids (default: basic)")
    p.add_argument("--allow-burned-in", action="store_true",
                   help="copy DICOM images marked BurnedInAnnotation=YES (with a warning) instead of refusing")
    add_outputs(p, run, out_help=None, json_help="print the outcome as one JSON object on stdout")


def run(args) -> int:
    from engine.commands._progress import report
    from engine.export.deidentify import deidentify

    paths = deidentify(args.path, args.out, profile=args.profile, allow_burned_in=args.allow_burned_in)
    report(args.json, {"task": "deidentify", "profile": args.profile, "input": args.path}, paths,
           lambda: [f"profile:  {args.profile}", f"files:    {len(paths)}"])
    return 0
