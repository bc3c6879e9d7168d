"""Helpers shared by the signal readers: unit conversion, channel-name heuristics.

Kept free of heavy imports (no MNE, no wfdb) so every reader can use it.
"""
from __future__ import annotations

import re

__all__ = [
    "VOLT_FACTORS",
    "canonical_unit",
    "modality_unit",
    "unit_factor",
    "is_ecg_name",
    "is_eeg_name",
    "strip_channel_name",
]

#: Size of one unit in volts, keyed by the canonical spelling.
VOLT_FACTORS = {"V": 1.0, "mV": 1e-3, "uV": 1e-6, "nV": 1e-9}

_UNIT_ALIASES = {
    "v": "V", "volt": "V", "volts": "V",
    "mv": "mV", "millivolt": "mV", "millivolts": "mV",
    "uv": "uV", "µv": "uV", "μv": "uV", "microvolt": "uV", "microvolts": "uV",
    "nv": "nV", "nanovolt": "nV",
}


def canonical_unit(unit: str | None) -> str | None:
    """``"mV"``, ``"uV"``, ``"V"`` or ``"nV"`` for a voltage unit however spelt, else None.

    >>> canonical_unit("μV"), canonical_unit("mv"), canonical_unit("mmHg")
    ('uV', 'mV', None)
    """
    if not unit:
        return None
    return _UNIT_ALIASES.get(str(unit).strip().lower())


def modality_unit(modality: str) -> str:
    """The unit Latent uses for a modality: mV for ECG, µV (``"uV"``) for EEG."""
    return "mV" if modality == "ecg" else "uV"


def unit_factor(src: str, dst: str) -> float:
    """Multiply values in voltage unit *src* by this to get *dst*.

    >>> unit_factor("uV", "mV"), unit_factor("V", "uV")
    (0.001, 1000000.0)
    """
    s, d = canonical_unit(src), canonical_unit(dst)
    if s is None or d is None:
        raise ValueError(f"not a voltage unit: {src if s is None else dst!r}")
    ratio = VOLT_FACTORS[s] / VOLT_FACTORS[d]
    return float(f"{ratio:.12g}")  # 1e-3 / 1e-6 gives 999.9999999999999 otherwise


_ECG_LEADS = {
    "i", "ii", "iii", "avr", "avl", "avf", "v1", "v2", "v3", "v4", "v5", "v6",
    "mli", "mlii", "mliii", "ml2", "mlv1", "cm2", "cm4", "cm5", "cc5", "d1", "d2", "d3",
    "lead i", "lead ii", "lead iii", "v", "ecg", "ekg",
}
_ECG_SUBSTRINGS = ("ecg", "ekg")

# 10-20 / 10-10 electrode names (lower case) for the modality guess of formats without types.
_EEG_NAMES = {
    "fp1", "fp2", "fpz", "af3", "af4", "af7", "af8", "afz", "f1", "f2", "f3", "f4", "f5", "f6",
    "f7", "f8", "f9", "f10", "fz", "fc1", "fc2", "fc3", "fc4", "fc5", "fc6", "fcz", "ft7", "ft8",
    "ft9", "ft10", "c1", "c2", "c3", "c4", "c5", "c6", "cz", "t3", "t4", "t5", "t6", "t7", "t8",
    "t9", "t10", "tp7", "tp8", "tp9", "tp10", "cp1", "cp2", "cp3", "cp4", "cp5", "cp6", "cpz",
    "p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8", "p9", "p10", "pz", "po3", "po4", "po7", "po8",
    "poz", "o1", "o2", "oz", "iz", "a1", "a2", "m1", "m2",
}


def strip_channel_name(name: str) -> str:
    """A channel name without padding dots/spaces and common EEG prefixes/suffixes.

    >>> strip_channel_name("Fc5."), strip_channel_name("EEG Fp1-REF"), strip_channel_name("C3..")
    ('Fc5', 'Fp1', 'C3')
    """
    s = str(name).strip().strip(".").strip()
    s = re.sub(r"^(EEG|ECG|EKG)[\s_:-]+", "", s, flags=re.IGNORECASE)
    s = re.sub(r"[-_](REF|LE|AR|AVG|A1|A2|M1|M2)$", "", s, flags=re.IGNORECASE)
    return s.strip().strip(".")


def is_ecg_name(name: str) -> bool:
    """True for names that denote an ECG lead (``ECG``, ``EKG``, ``MLII``, ``V1``-``V6``, ``aVR``...).

    >>> [is_ecg_name(n) for n in ("MLII", "ECG1", "aVF", "Fp1.", "noise1")]
    [True, True, True, False, False]
    """
    raw = str(name).strip().lower()
    if any(s in raw for s in _ECG_SUBSTRINGS):
        return True
    s = raw.strip(".").replace("lead", "").replace("-", "").replace("_", "").strip()
    return s in _ECG_LEADS or raw in _ECG_LEADS


def is_eeg_name(name: str) -> bool:
    """True for 10-20/10-10 electrode names or names containing ``EEG``.

    >>> [is_eeg_name(n) for n in ("Fc5.", "EEG Fpz-Cz", "MLII")]
    [True, True, False]
    """
    raw = str(name).strip()
    if "eeg" in raw.lower():
        return True
    s = strip_channel_name(raw).lower()
    # bipolar derivations such as "Fp1-F7"
    parts = [p for p in re.split(r"[-\s]+", s) if p]
    return bool(parts) and all(p in _EEG_NAMES for p in parts)
