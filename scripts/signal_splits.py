"""Record/segment splits shared by the ECG/EEG training scripts and benchmarks, and the scripts' common
command line (:func:`training_parser`).

ECG (MIT-BIH, split by record, never by window): :data:`ECG_RECORDS` are the 35
records in ``../shared/data/ecg/mitdb``. Generalisation to new patients is measured
by leave-records-out cross-validation (:func:`ecg_folds`: every record is in exactly
one test fold; each fold's model is trained on the other folds only). The shipped
``ecg-dae`` is then retrained on all records with the recipe the CV chose, so it has
no held-out records of its own; its metadata lists them (``training.records``).
"""
import argparse
from pathlib import Path

ECG_RECORDS = ("100", "101", "103", "105", "106", "108", "109", "111", "112", "113", "114", "115", "116",
               "117", "118", "119", "122", "123", "124", "200", "201", "202", "205", "207", "209", "212",
               "214", "215", "220", "221", "222", "223", "230", "231", "234")
#: The earlier 7-record training set of the bundled models (ecg-beats still uses it).
ECG_TRAIN = ("101", "103", "105", "109", "111", "113", "115")
ECG_TEST = ("100", "106", "116", "118", "119")
DAE_TRAIN = ECG_RECORDS
BEATS_TRAIN = ECG_TRAIN
CV_FOLDS = 5
CV_SEED = 13


def ecg_folds(records=ECG_RECORDS, k: int = CV_FOLDS, seed: int = CV_SEED) -> list[tuple[str, ...]]:
    """*k* disjoint test folds of records (a fixed seeded shuffle, then round robin).

    >>> f = ecg_folds(); len(f), sum(len(x) for x in f), len(set().union(*f))
    (5, 35, 35)
    """
    import numpy as np

    order = np.random.default_rng(seed).permutation(len(records))
    return [tuple(sorted(records[i] for i in order[j::k])) for j in range(k)]


#: Bonn: the fixed held-out test split for the shipped eeg-seizure model is every
#: segment whose number is congruent to 0 modulo 5 (14 per set here: 005, 010, ...);
#: the other segments train it. Cross-validation uses stratified 5-fold over all.
BONN_SETS = {"A_Z": "Z", "B_O": "O", "C_N": "N", "D_F": "F", "E_S": "S"}


def training_parser(doc: str) -> argparse.ArgumentParser:
    """The parser of a signal training script (described by the first line of its *doc*) with the
    options they all take: ``--data`` (the shared data folder) and ``--out`` (where the model goes)."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    return ap
