"""Record/segment splits shared by the ECG/EEG training scripts and benchmarks.

ECG (MIT-BIH, split by record): the training records are the only ones any bundled
ECG model reads; the test records (and any other record, e.g. a held-out one) are
used for benchmarks only. The benchmarks read the training records back from each
model's metadata and exclude them, so they stay honest on any data folder.
"""
ECG_TRAIN = ("101", "103", "105", "109", "111", "113", "115")
ECG_TEST = ("100", "106", "116", "118", "119")
DAE_TRAIN = ECG_TRAIN
BEATS_TRAIN = ECG_TRAIN

#: Bonn: the fixed held-out test split for the shipped eeg-seizure model is every
#: segment whose number is congruent to 0 modulo 5 (14 per set here: 005, 010, ...);
#: the other segments train it. Cross-validation uses stratified 5-fold over all.
BONN_SETS = {"A_Z": "Z", "B_O": "O", "C_N": "N", "D_F": "F", "E_S": "S"}
