"""The data viewers: CT slices, histology slides, ECG/EEG traces, and their overlays."""
