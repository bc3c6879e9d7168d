"""Writers of results in the formats other tools open (one module by family, like ``mne.export``):
signals as WFDB / EDF / BDF (:mod:`.signals`). Writers never modify inputs and write atomically."""
