"""Which frequency is in a stretch of a file's sound: decode with imageio-ffmpeg, then Goertzel.

``tone_share(path, freq, start, length)`` is the share of the window's energy at ``freq``: about
1.0 for a pure sine of that frequency, about 0 when the tone is absent, and in between when the
tone is mixed with other sound.  Checks content, not only lengths: a stitch that dropped or muted
the song, or mixed the clips' own sound under it, gives a visibly lower share.
"""

from __future__ import annotations

import array
import math
import subprocess
from pathlib import Path

import imageio_ffmpeg

RATE = 48_000


def pcm(path: Path, *, rate: int = RATE) -> array.array[int]:
    """The first audio stream of ``path`` as mono signed 16-bit samples at ``rate``."""
    result = subprocess.run(
        [
            *(imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path), "-map", "0:a:0"),
            *("-ac", "1", "-ar", str(rate), "-f", "s16le", "-"),
        ],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-1500:]
    samples = array.array("h")
    samples.frombytes(result.stdout[: len(result.stdout) // 2 * 2])
    return samples


def goertzel_share(samples: array.array[int] | list[float], freq: float, rate: int = RATE) -> float:
    """Share of the energy of ``samples`` at ``freq`` (Goertzel; a Hann window limits leakage)."""
    n = len(samples)
    assert n > 64, "window too short"
    coeff = 2 * math.cos(2 * math.pi * freq / rate)
    s1 = s2 = 0.0
    energy = 0.0
    for i, raw in enumerate(samples):
        x = raw * (0.5 - 0.5 * math.cos(2 * math.pi * i / (n - 1)))
        energy += x * x
        s1, s2 = x + coeff * s1 - s2, s1
    power = s1 * s1 + s2 * s2 - coeff * s1 * s2
    if energy == 0:
        return 0.0
    # a Hann-windowed sine puts (N/4)^2 * A^2 at its bin; its energy is 3/8 * N * A^2 / 2
    return min(1.0, power / (energy * n * (1 / 16) / (3 / 16)))


def tone_share(path: Path, freq: float, start: float, length: float) -> float:
    samples = pcm(path)
    first, count = int(start * RATE), int(length * RATE)
    window = samples[first : first + count]
    assert len(window) == count, f"{path.name} has no sound at {start:.2f}+{length:.2f}s"
    return goertzel_share(window, freq)
