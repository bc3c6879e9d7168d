"""Fuzzing the readers (issue 20): seed files, mutators, one bounded worker per case, a summary.

* :mod:`.seeds` builds the seed files of every family from ``/work/shared/data``
  (JPEG/TIFF/BDF/FIF/CSV are generated from the shared PNG/EDF files, once, into a cache).
* :mod:`.mutators` and :mod:`.formats` damage a copy of a seed deterministically from
  ``(seed, case)``: generic byte mutations and format-aware absurd header fields.
* :mod:`.worker` reads one case in a forked worker with time and memory limits and
  classifies the outcome; :mod:`.oracle` checks that an "ok" result is valid.
* :mod:`.runner` runs many cases, prints the table and writes the JSON report.

The command line is ``benchmarks/fuzz_readers.py``.
"""
