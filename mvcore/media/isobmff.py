"""The display rotation of an MP4/MOV track, read from its ``tkhd`` box without decoding.

Why hand-written (docs/design-decisions.md, "Probing with PyAV"): PyAV 18 exposes the display
matrix only on decoded frames, and decoding a 720p keyframe per probe was the largest cost of
probing (3-20 ms, more than opening the file).  MP4 stores the matrix at a fixed place in the
track header, so reading it is a bounded walk over box headers: ``moov`` -> ``trak`` -> ``tkhd``.
Anything unexpected (truncated boxes, sizes that do not add up, too many boxes) answers ``None``
and the caller falls back to decoding a frame.  Only the matrix's rotation is read, with
libavutil's ``av_display_rotation_get`` convention, so the result equals what ffmpeg prints.
"""

from __future__ import annotations

import math
import struct
from pathlib import Path
from typing import BinaryIO

#: At most this many boxes are looked at in one file (a hostile file cannot make us loop).
_MAX_BOXES = 4096
_MAX_MOOV = 64 * 1024 * 1024


def _boxes(fh: BinaryIO, start: int, end: int, budget: list[int]) -> list[tuple[bytes, int, int]]:
    """(type, payload start, payload end) of the boxes in ``[start, end)``; [] when malformed."""
    found = []
    pos = start
    while pos + 8 <= end:
        budget[0] -= 1
        if budget[0] < 0:
            return []
        fh.seek(pos)
        header = fh.read(16)
        if len(header) < 8:
            return []
        size, kind = struct.unpack(">I4s", header[:8])
        head = 8
        if size == 1 and len(header) == 16:
            size, head = struct.unpack(">Q", header[8:16])[0], 16
        elif size == 0:
            size = end - pos
        if size < head or pos + size > end:
            return []
        found.append((kind, pos + head, pos + size))
        pos += size
    return found


def _tkhd_rotation(fh: BinaryIO, start: int, end: int, track_id: int) -> int | None:
    fh.seek(start)
    data = fh.read(min(end - start, 128))
    if len(data) < 4:
        return None
    version = data[0]
    id_at, matrix_at = (20, 44) if version == 1 else (12, 40)
    if len(data) < matrix_at + 36:
        return None
    if struct.unpack(">I", data[id_at : id_at + 4])[0] != track_id:
        return -1  # another track
    m = struct.unpack(">9i", data[matrix_at : matrix_at + 36])
    scale0, scale1 = math.hypot(m[0], m[3]), math.hypot(m[1], m[4])
    if not scale0 or not scale1:
        return 0
    # The file stores the matrix transposed against libavutil's layout (the mov demuxer swaps
    # it), hence no minus sign here: the result equals ffmpeg's printed rotation modulo 360.
    return round(math.degrees(math.atan2(m[1] / scale1, m[0] / scale0))) % 360


def track_rotation(path: Path, track_id: int) -> int | None:
    """Clockwise display rotation of track ``track_id``; None when the file cannot tell us."""
    budget = [_MAX_BOXES]
    with Path(path).open("rb") as fh:
        fh.seek(0, 2)
        size = fh.tell()
        moov = [b for b in _boxes(fh, 0, size, budget) if b[0] == b"moov"]
        if len(moov) != 1 or moov[0][2] - moov[0][1] > _MAX_MOOV:
            return None
        for kind, start, end in _boxes(fh, moov[0][1], moov[0][2], budget):
            if kind != b"trak":
                continue
            for inner, s, e in _boxes(fh, start, end, budget):
                if inner == b"tkhd":
                    rotation = _tkhd_rotation(fh, s, e, track_id)
                    if rotation is None or rotation >= 0:
                        return rotation
    return None
