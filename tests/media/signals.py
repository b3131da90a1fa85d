"""What a file *contains*, read with PyAV independently of mvcore: samples, tones, packets.

Lengths alone let a muted song or the wrong part of a track pass; these helpers let tests check
content: which frequency sounds when (Goertzel power), whether a track is a given signal
(normalised correlation), and whether a video stream is byte-for-byte another one (packet hashes).
"""

from __future__ import annotations

import array
import hashlib
import math
from pathlib import Path

import av

RATE = 8000  #: analysis sample rate (mono): plenty for tones under 2 kHz


def mono_samples(path: Path, rate: int = RATE) -> list[float]:
    """The first audio stream of ``path``, mixed to mono float at ``rate`` Hz, from its first sample."""
    out = array.array("f")
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        for frame in container.decode(stream):
            for chunk in resampler.resample(frame):
                out.frombytes(bytes(chunk.planes[0])[: chunk.samples * 4])
        for chunk in resampler.resample(None):
            out.frombytes(bytes(chunk.planes[0])[: chunk.samples * 4])
    return out.tolist()


def window(samples: list[float], start: float, end: float, rate: int = RATE) -> list[float]:
    return samples[int(start * rate) : int(end * rate)]


def tone_power(samples: list[float], freq: float, rate: int = RATE) -> float:
    """Goertzel: mean power of ``samples`` at ``freq`` (amplitude a gives about a*a/4)."""
    if not samples:
        return 0.0
    coeff = 2 * math.cos(2 * math.pi * freq / rate)
    prev = prev2 = 0.0
    for x in samples:
        prev, prev2 = x + coeff * prev - prev2, prev
    power = prev2 * prev2 + prev * prev - coeff * prev * prev2
    return power / (len(samples) ** 2)


def dominant(samples: list[float], candidates: list[float], rate: int = RATE) -> float:
    """The candidate frequency with the most power in ``samples``."""
    return max(candidates, key=lambda f: tone_power(samples, f, rate))


def correlation(a: list[float], b: list[float], max_lag: int = 8) -> float:
    """Best normalised correlation of two signals over lags of up to ``max_lag`` samples (-1..1)."""
    n = min(len(a), len(b)) - 2 * max_lag
    if n <= 0:
        return 0.0
    best = -1.0
    for lag in range(-max_lag, max_lag + 1):
        xs = a[max_lag : max_lag + n]
        ys = b[max_lag + lag : max_lag + lag + n]
        dot = sum(x * y for x, y in zip(xs, ys, strict=True))
        norm = math.sqrt(sum(x * x for x in xs) * sum(y * y for y in ys))
        if norm > 0:
            best = max(best, dot / norm)
    return best


def video_packet_hashes(path: Path) -> list[str]:
    """SHA-1 of every packet of the first video stream, in decoding order."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [hashlib.sha1(bytes(p)).hexdigest() for p in container.demux(stream) if p.size]


def video_config(path: Path) -> bytes:
    """The video decoder configuration (H.264 SPS/PPS) stored in the container."""
    with av.open(str(path)) as container:
        return bytes(container.streams.video[0].codec_context.extradata or b"")


def stream_seconds(path: Path, kind: str) -> float:
    """Length of the first ``kind`` ("video"/"audio") stream from its packets' timestamps."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0] if kind == "video" else container.streams.audio[0]
        base = float(stream.time_base or 0)
        stamps = [
            (p.pts * base, (p.pts + (p.duration or 0)) * base)
            for p in container.demux(stream)
            if p.pts is not None
        ]
    return max(e for _, e in stamps) - min(s for s, _ in stamps)
