"""EEG montages: an EEG :class:`~engine.data.Signal` re-referenced for reading and analysis.

Every montage is a linear map ``M`` (derived channels x recorded channels), applied page by page
(``M @ signal.read(a, b)``), so a long recording is never loaded whole. MNE computes the maps:
``mne.set_eeg_reference`` (average reference) and ``mne.set_bipolar_reference`` (the
longitudinal bipolar "double banana") run on an identity recording, whose output *is* ``M``;
the Laplacian subtracts from each electrode the mean of its 4 nearest neighbours on MNE's
10-20 template positions (Hjorth's small Laplacian, in µV).

Channels that are not EEG electrodes (EOG, EMG, unconverted channels) pass through unchanged.
The derived Signal names the montage in ``metadata["montage"]``; tasks record it in their
parameters (:func:`montage_params`).
"""
from __future__ import annotations

import numpy as np

from engine.data import Signal
from engine.errors import LatentError
from engine.io.signal_common import is_eeg_name, strip_channel_name

__all__ = ["MONTAGES", "DOUBLE_BANANA", "MontageError", "apply_montage", "montage_matrix",
           "montage_name", "montage_params"]

#: montage key -> title shown to the user ("none" is the recording as stored)
MONTAGES = {"none": "As recorded", "average": "Average reference",
            "bipolar": "Bipolar (double banana)", "laplacian": "Laplacian (4 neighbours)"}

#: ACNS longitudinal bipolar chains: left temporal, left parasagittal, midline, right parasagittal,
#: right temporal (10-10 names; the old T3/T4/T5/T6 are accepted for T7/T8/P7/P8)
DOUBLE_BANANA = (("Fp1", "F7"), ("F7", "T7"), ("T7", "P7"), ("P7", "O1"),
                 ("Fp1", "F3"), ("F3", "C3"), ("C3", "P3"), ("P3", "O1"),
                 ("Fz", "Cz"), ("Cz", "Pz"),
                 ("Fp2", "F4"), ("F4", "C4"), ("C4", "P4"), ("P4", "O2"),
                 ("Fp2", "F8"), ("F8", "T8"), ("T8", "P8"), ("P8", "O2"))
_OLD_NAMES = {"t3": "t7", "t4": "t8", "t5": "p7", "t6": "p8"}
LAPLACIAN_NEIGHBOURS = 4


class MontageError(LatentError):
    """A montage that cannot be built for this recording (not EEG, electrodes missing)."""


def montage_name(signal: Signal) -> str:
    """The montage key of *signal* (``"none"`` for a recording as stored)."""
    return str((signal.metadata.get("montage") or {}).get("name", "none"))


def montage_params(signal: Signal) -> dict:
    """``{"montage": key}`` for a montaged signal, ``{}`` otherwise (for a task's parameters)."""
    name = montage_name(signal)
    return {} if name == "none" else {"montage": name}


def _key(name: str) -> str:
    s = strip_channel_name(name).lower()
    return _OLD_NAMES.get(s, s)


def _names(signal: Signal) -> list[str]:
    clean = signal.metadata.get("clean_names")
    if clean and len(clean) == len(signal.channels):
        return [str(c) for c in clean]
    return [strip_channel_name(c) for c in signal.channels]


def _eeg_picks(signal: Signal) -> list[int]:
    volts = [i for i, u in enumerate(signal.units) if u == "uV"]
    named = [i for i in volts if is_eeg_name(signal.channels[i])]
    return named or volts


def _mne_matrix(names: list[str], eeg: list[int], apply) -> tuple[np.ndarray, list[str]]:
    """Run *apply* (a function of an MNE Raw) on an identity recording: its output is the map."""
    import mne

    n = len(names)
    types = ["eeg" if i in set(eeg) else "misc" for i in range(n)]
    raw = mne.io.RawArray(np.eye(n), mne.create_info(names, 1.0, types), verbose="error")
    out = apply(raw)
    return out.get_data(), list(out.ch_names)


def _positions(names: list[str]) -> dict[str, np.ndarray]:
    import mne

    builtin = mne.channels.get_builtin_montages()
    kind = next(k for k in ("colin27_1020", "standard_1020") if k in builtin)
    pos = mne.channels.make_standard_montage(kind).get_positions()["ch_pos"]
    by_key = {_key(k): np.asarray(v, float) for k, v in pos.items()}
    return {n: by_key[_key(n)] for n in names if _key(n) in by_key}


def montage_matrix(signal: Signal, name: str) -> tuple[np.ndarray, list[str]]:
    """The map ``M`` (derived x recorded channels) of montage *name* and the derived names.

    Raises
    ------
    MontageError
        For a non-EEG recording, an unknown montage or too few electrodes.
    """
    if name not in MONTAGES:
        raise MontageError(f"unknown montage {name!r}; valid montages: {', '.join(MONTAGES)}")
    if signal.modality != "eeg":
        raise MontageError(f"montages apply to EEG, not {signal.modality.upper()}")
    names = _names(signal)
    if len(set(names)) != len(names):  # MNE needs unique names; stored names are unique
        names = list(signal.channels)
    eeg = _eeg_picks(signal)
    others = [i for i in range(len(names)) if i not in set(eeg)]
    n = len(names)
    if name == "none":
        return np.eye(n), list(signal.channels)
    if name == "average":
        if len(eeg) < 2:
            raise MontageError("an average reference needs at least 2 EEG channels")
        m, _ = _mne_matrix(names, eeg, lambda raw: raw.set_eeg_reference(
            "average", projection=False, verbose="error"))
        return m, [f"{names[i]}-Avg" if i in set(eeg) else names[i] for i in range(n)]
    if name == "bipolar":
        index = {_key(names[i]): i for i in eeg}
        pairs = [(a, b) for a, b in DOUBLE_BANANA if a.lower() in index and b.lower() in index]
        if not pairs:
            raise MontageError("no double-banana pair (Fp1-F7, F7-T7 ...) among this recording's electrodes")
        anode = [names[index[a.lower()]] for a, _ in pairs]
        cathode = [names[index[b.lower()]] for _, b in pairs]
        derived = [f"{a}-{b}" for a, b in pairs]
        m, out_names = _mne_matrix(names, eeg, lambda raw: _mne_bipolar(raw, anode, cathode, derived))
        rows = [out_names.index(d) for d in derived] + [out_names.index(names[i]) for i in others]
        return m[rows], derived + [names[i] for i in others]
    pos = _positions([names[i] for i in eeg])
    placed = [i for i in eeg if names[i] in pos]
    if len(placed) <= LAPLACIAN_NEIGHBOURS:
        raise MontageError(f"a Laplacian needs more than {LAPLACIAN_NEIGHBOURS} electrodes with "
                           f"10-20 positions; {len(placed)} found")
    xyz = np.stack([pos[names[i]] for i in placed])
    dist = np.linalg.norm(xyz[:, None] - xyz[None], axis=-1)
    rows = []
    for r, i in enumerate(placed):
        row = np.zeros(n)
        row[i] = 1.0
        row[[placed[j] for j in np.argsort(dist[r])[1:LAPLACIAN_NEIGHBOURS + 1]]] -= 1.0 / LAPLACIAN_NEIGHBOURS
        rows.append(row)
    rows += [np.eye(n)[i] for i in others]
    return np.stack(rows), [f"{names[i]}-Lap" for i in placed] + [names[i] for i in others]


def _mne_bipolar(raw, anode: list[str], cathode: list[str], derived: list[str]):
    """``mne.set_bipolar_reference`` keeping every input channel it does not replace."""
    import mne

    return mne.set_bipolar_reference(raw, anode, cathode, ch_name=derived, drop_refs=False,
                                     copy=True, verbose="error")


def apply_montage(signal: Signal, name: str) -> Signal:
    """*signal* through montage *name* (a key of :data:`MONTAGES`): a new, lazily read Signal.

    Units stay µV; channel names say the derivation (``Fp1-F7``, ``Cz-Avg``, ``Cz-Lap``);
    ``metadata["montage"]`` holds the key, its title and the channel count it was made from.
    ``"none"`` returns *signal* itself.

    Examples
    --------
    >>> import numpy as np
    >>> sig = Signal.from_array(np.array([[1.0, 2.0], [3.0, 6.0]]), sfreq=100.0, modality="eeg",
    ...                         channels=("Cz", "Pz"))
    >>> avg = apply_montage(sig, "average")
    >>> avg.channels, avg.read(0, 2).tolist()
    (('Cz-Avg', 'Pz-Avg'), [[-1.0, -2.0], [1.0, 2.0]])
    """
    if name == "none":
        return signal
    if montage_name(signal) != "none":
        raise MontageError("this signal is already montaged; apply the montage to the recording")
    m, derived = montage_matrix(signal, name)
    matrix = m.astype(np.float32)
    units = tuple("uV" if np.count_nonzero(row) > 1 else signal.units[int(np.argmax(row != 0))] for row in m)

    def sample_reader(start: int, stop: int) -> np.ndarray:
        return matrix @ signal.read(start, stop)

    metadata = dict(signal.metadata, clean_names=list(derived),
                    montage={"name": name, "title": MONTAGES[name], "channels_in": len(signal.channels)})
    return Signal(modality=signal.modality, sfreq=signal.sfreq, channels=tuple(derived), units=units,
                  n_samples=signal.n_samples, path=signal.path, annotations=signal.annotations,
                  metadata=metadata, sample_reader=sample_reader)
