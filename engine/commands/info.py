"""``python -m engine info PATH``: what a file holds, in physical terms."""
from __future__ import annotations

import json
from typing import Any


def register(sub) -> None:
    p = sub.add_parser("info", help="describe an image or recording (modality, shape, spacing, rate...)")
    p.add_argument("path", help="file, DICOM folder/DICOMDIR, or WFDB record path")
    p.add_argument("--sfreq", type=float, default=None, help="sampling rate in Hz for headerless text/NPY signals")
    p.add_argument("--modality", choices=("ecg", "eeg"), default=None, help="override the modality guess for signals")
    p.add_argument("--mpp", type=float, default=None, help="histology: microns per pixel, overriding the file")
    p.add_argument("--series-uid", default=None, help="DICOM folder with several series: the series to read")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def describe(obj) -> dict[str, Any]:
    """A JSON-ready description of an :class:`~engine.data.Image` or :class:`~engine.data.Signal`."""
    from engine.data import Image

    if isinstance(obj, Image):
        d: dict[str, Any] = {
            "modality": obj.modality,
            "path": obj.path,
            "shape": [int(s) for s in obj.shape],
            "dtype": obj.dtype,
            "units": obj.units,
            "spacing": None if obj.spacing is None else [float(s) for s in obj.spacing],
            "spacing_units": "mm" if obj.modality == "ct" else "um",
        }
        if obj.modality == "histology":
            d["mpp"] = obj.mpp
            d["levels"] = [list(map(int, lv)) for lv in obj.levels]
            d["downsamples"] = [float(x) for x in obj.downsamples]
        if obj.origin is not None:
            d["origin"] = [float(x) for x in obj.origin]
        if obj.direction is not None:
            d["direction"] = [float(x) for x in obj.direction]
        if obj.series:
            d["series_uid"] = obj.series_uid
            d["series"] = [
                {"uid": s.uid, "description": s.description, "modality": s.modality,
                 "n_instances": s.n_instances, "rows": s.rows, "cols": s.cols}
                for s in obj.series
            ]
        d["metadata"] = obj.metadata
        return d
    return {
        "modality": obj.modality,
        "path": obj.path,
        "shape": [int(s) for s in obj.shape],
        "dtype": "float32",
        "sfreq": float(obj.sfreq),
        "channels": list(obj.channels),
        "units": list(obj.units),
        "n_samples": int(obj.n_samples),
        "duration_s": float(obj.duration),
        "n_annotations": len(obj.annotations),
        "metadata": obj.metadata,
    }


def _text(d: dict[str, Any]) -> str:
    lines = [f"modality:     {d['modality']}", f"path:         {d['path']}",
             f"shape:        {' x '.join(map(str, d['shape']))} ({d['dtype']}, {d['units'] if isinstance(d['units'], str) else ', '.join(sorted(set(d['units'])))})"]
    if "sfreq" in d:
        lines += [f"sampling:     {d['sfreq']:g} Hz", f"duration:     {d['duration_s']:.2f} s",
                  f"channels:     {len(d['channels'])}: {', '.join(d['channels'])}",
                  f"annotations:  {d['n_annotations']}"]
    else:
        sp = d.get("spacing")
        lines.append(f"spacing:      {'unknown' if sp is None else ' x '.join(f'{s:g}' for s in sp)} {d['spacing_units']}")
        if d.get("levels") and len(d["levels"]) > 1:
            lines.append(f"levels:       {len(d['levels'])}: " + ", ".join(f"{r}x{c}" for r, c in d["levels"]))
        if d.get("series"):
            lines.append(f"series:       {len(d['series'])} found")
            for s in d["series"]:
                mark = "*" if s["uid"] == d.get("series_uid") else " "
                lines.append(f"  {mark} {s['uid']}  {s['modality']}  {s['n_instances']} instances  {s['description']}")
    meta = d.get("metadata") or {}
    width = max([14] + [len(k) + 2 for k in meta])
    for k, v in meta.items():
        if isinstance(v, (list, tuple)) and len(v) > 8:
            v = f"[{len(v)} values; see --json]"
        lines.append(f"{k + ':':<{width}}{v}")
    return "\n".join(lines)


def run(args) -> int:
    from engine.io import opened

    opts = {}
    if args.sfreq is not None:
        opts["sfreq"] = args.sfreq
    if args.modality is not None:
        opts["modality"] = args.modality
    if args.mpp is not None:
        opts["mpp"] = args.mpp
    if args.series_uid is not None:
        opts["series_uid"] = args.series_uid
    with opened(args.path, **opts) as obj:
        d = describe(obj)
    print(json.dumps(d, default=str) if args.json else _text(d))
    return 0
