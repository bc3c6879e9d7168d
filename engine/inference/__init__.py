"""Running a trained model over data, independent of any task: tiles with blended overlap
(:mod:`.tiles`), signal windows (:mod:`.windows`), model units (:mod:`.preprocess`), error maps,
masks and calibration (:mod:`.anomaly`, :mod:`.calibration`), and the per-modality image pipelines
(:mod:`.ct`, :mod:`.histology`). Inference never imports training, tasks or commands."""
