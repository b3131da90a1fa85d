"""Ratio benchmarks: mvcore against the baseline a user would pick instead, in one process.

Run them all with ``python -m benchmarks`` (``--quick`` for a short run); see README.md.
Every area module is a ``bench_*.py`` file exposing ``run(quick: bool) -> list[dict]``.
"""
