"""Benchmarks run by ``make bench`` (``python -m bench``); each writes its
figures into ``bench/results.json`` and a section of ``bench/results.md``."""
