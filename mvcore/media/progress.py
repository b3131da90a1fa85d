"""The progress callback shared by long media steps, providers and jobs.

It lives with media (the lowest layer that reports progress) so that media
never has to import providers to name it.
"""

from __future__ import annotations

from collections.abc import Callable

#: progress(fraction in 0..1, short message) -- called by long steps.
Progress = Callable[[float, str], None]


def no_progress(fraction: float, message: str) -> None:
    """Default progress sink: long steps always have somewhere to report."""
