"""Shared pieces of the benchmarks: /proc readings, statistics, pinning, server processes,
store backends, account creation, the load-generator processes and wrk.

The entry points (``bench/load.py``, ``bench/events_fanout.py``, ``bench/bare_framework.py``)
put ``bench/`` on ``sys.path`` by being run as scripts, so this package imports as ``harness``.
"""
