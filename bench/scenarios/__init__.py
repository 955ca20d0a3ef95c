"""The benchmark scenarios: S1-S5 of ``bench/load.py`` (one file each, with the runner,
consistency check and report beside them) and the two parts of ``bench/events_fanout.py``."""
