"""Fidelia's benchmark suite: ``python -m bench`` (``make bench``) runs every ``bench_*.py``.

See ``bench/__main__.py`` for the runner and the JSON contract, ``bench/common.py`` for the
helpers, and ``docs/benchmarks.md`` for the figures.
"""
