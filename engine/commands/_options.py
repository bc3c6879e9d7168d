"""Command-line options shared by the task commands (same names, defaults and help everywhere)."""
from __future__ import annotations

SCORE_FORMATS_HELP = ("csv (default; always written) and/or annotations: the scores as a WFDB annotation "
                      "file (<record>.latent) or an EDF+/BDF+ copy with them as annotations")
SUMMARY_JSON_HELP = "print the summary as one JSON object on stdout"


def add_model(p, default: str, *, kind: str = "file") -> None:
    """``--model``: a bundled model name or a .safetensors *kind* ("file" or "path"); *default* says
    which model is used without it."""
    p.add_argument("--model", default=None, help=f"bundled model name or .safetensors {kind} ({default})")


def add_signal(p, sfreq_help: str, *, modality_help: str | None = None) -> None:
    """``--sfreq`` (Hz, for headerless signals) and, with *modality_help*, ``--modality`` ecg|eeg."""
    p.add_argument("--sfreq", type=float, default=None, help=sfreq_help)
    if modality_help is not None:
        p.add_argument("--modality", choices=("ecg", "eeg"), default=None, help=modality_help)


def add_input(p, name: str, help: str, *, model_default: str, sfreq_help: str,
              modality_help: str | None = None) -> None:
    """The input of a one-recording command, in this order: the positional *name*, ``--model``,
    ``--sfreq`` and (with *modality_help*) ``--modality``."""
    p.add_argument(name, help=help)
    add_model(p, model_default)
    add_signal(p, sfreq_help, modality_help=modality_help)


def add_device(p, help: str = "cpu or cuda (default: CUDA when available)") -> None:
    p.add_argument("--device", default=None, help=help)


def add_outputs(p, func, *, out_help: str | None = "output folder", formats_help: str | None = None,
                formats_metavar: str | None = None, json_help: str = SUMMARY_JSON_HELP) -> None:
    """The closing options of a command, in this order: ``--out`` (required), ``--formats`` when
    *formats_help* is given, ``--json``; then *func* as the command's entry point."""
    if out_help is not None:
        p.add_argument("--out", required=True, help=out_help)
    if formats_help is not None:
        p.add_argument("--formats", default=None, metavar=formats_metavar, help=formats_help)
    p.add_argument("--json", action="store_true", help=json_help)
    p.set_defaults(func=func)
