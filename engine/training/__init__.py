"""Training machinery: the loop (:mod:`.loop`), greedy layer-wise stacking (:mod:`.stacked`),
datasets from the readers (:mod:`.datasets`), losses and penalties (:mod:`.losses`), and
training a new model on a user's own files (:mod:`.from_files`, a generator)."""
