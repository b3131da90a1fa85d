"""Audio clipping and conversion on real files of every supported input format."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from mvcore.errors import BadInput
from mvcore.media import ffmpeg
from mvcore.media.audio import audio_duration, clip_audio, convert_to_mp3
from tests.media import signals

FF = ffmpeg.ffmpeg_exe()
TRACK = 3.0
#: input suffix -> encoder arguments used to make the 3 s test track
INPUTS = {
    "mp3": "-c:a libmp3lame -b:a 128k",
    "wav": "-c:a pcm_s16le",
    "m4a": "-c:a aac",
    "ogg": "-c:a libvorbis",
    "flac": "-c:a flac",
}


def ff(command: str, *paths: Path | str) -> None:
    """Run ffmpeg; each ``{}`` token of ``command`` is replaced by the next path (safe with spaces)."""
    queue = list(paths)
    args = [str(queue.pop(0)) if token == "{}" else token for token in command.split()]
    subprocess.run([FF, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def decoded_seconds(path: Path) -> float:
    """Audio length measured independently of mvcore: decode everything and read the clock."""
    out = subprocess.run(
        [
            FF,
            "-nostdin",
            "-nostats",
            "-i",
            str(path),
            "-map",
            "0:a:0",
            "-f",
            "null",
            "-progress",
            "pipe:1",
            "-",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    times = [int(line.split("=", 1)[1]) for line in out.splitlines() if line.startswith("out_time_us=")]
    return times[-1] / 1e6


@pytest.fixture(scope="module")
def tracks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("tracks")
    made = {}
    for suffix, codec in INPUTS.items():
        path = d / f"song.{suffix}"
        ff(f"-f lavfi -i sine=f=330:sample_rate=44100:d={TRACK} -ac 2 {codec} {{}}", path)
        made[suffix] = path
    ff("-f lavfi -i testsrc=size=64x64:rate=10:d=1 -c:v libx264 {}", str(d / "silent.mp4"))
    made["silent.mp4"] = d / "silent.mp4"
    ff(
        "-f lavfi -i testsrc=size=64x64:rate=10:d=2 -f lavfi -i sine=d=2 -c:v libx264 -c:a aac -shortest {}",
        d / "music-video.mp4",
    )
    made["music-video.mp4"] = d / "music-video.mp4"
    return made


@pytest.mark.parametrize("source", sorted(INPUTS))
@pytest.mark.parametrize(("start", "end"), [(0.5, 1.7), (0.0, 0.25), (2.1, None)])
async def test_clip_audio_is_exact_for_every_input_format(
    tracks: dict[str, Path], tmp_path: Path, source: str, start: float, end: float | None
) -> None:
    dst = tmp_path / "clip.mp3"
    returned = await clip_audio(tracks[source], dst, start, end, timeout=30)
    expected = (end if end is not None else TRACK) - start
    assert decoded_seconds(dst) == pytest.approx(expected, abs=0.05)
    assert returned == pytest.approx(expected, abs=0.05)


@pytest.mark.parametrize(
    ("suffix", "codec"),
    [
        ("mp3", "mp3"),
        ("wav", "pcm_s16le"),
        ("m4a", "aac"),
        ("aac", "aac"),
        ("ogg", "vorbis"),
        ("flac", "flac"),
        ("opus", "opus"),
    ],
)
async def test_clip_audio_output_format_follows_the_destination_suffix(
    tracks: dict[str, Path], tmp_path: Path, suffix: str, codec: str
) -> None:
    dst = tmp_path / f"clip.{suffix}"
    returned = await clip_audio(tracks["wav"], dst, 1.0, 2.0, timeout=30)
    info = await ffmpeg.probe(dst)
    assert info.audio_codec == codec
    assert returned == pytest.approx(1.0, abs=0.05)
    assert decoded_seconds(dst) == pytest.approx(1.0, abs=0.05)
    assert [p.name for p in tmp_path.iterdir()] == [dst.name]


async def test_clip_audio_takes_the_audio_of_a_video_file(tracks: dict[str, Path], tmp_path: Path) -> None:
    returned = await clip_audio(tracks["music-video.mp4"], tmp_path / "c.mp3", 0.5, 1.5, timeout=30)
    assert returned == pytest.approx(1.0, abs=0.05)
    assert not (await ffmpeg.probe(tmp_path / "c.mp3")).has_video


@pytest.mark.parametrize(
    ("start", "end", "needle"),
    [
        (200.0, None, "start_time 200.0 is past the end of the track (3.00 s)"),
        (3.0, None, "start_time 3.0 is past the end of the track (3.00 s)"),
        (1.0, 9.5, "end_time 9.5 is past the end of the track (3.00 s)"),
        (1.0, 1.0, "must be greater than start_time"),
        (2.0, 1.0, "must be greater than start_time"),
        (-1.0, None, "start_time must be a number >= 0"),
        (float("nan"), None, "start_time must be a number >= 0"),
    ],
)
async def test_clip_audio_out_of_range_is_bad_input_naming_the_track_length(
    tracks: dict[str, Path], tmp_path: Path, start: float, end: float | None, needle: str
) -> None:
    dst = tmp_path / "clip.mp3"
    with pytest.raises(BadInput) as err:
        await clip_audio(tracks["mp3"], dst, start, end, timeout=30)
    assert needle in err.value.message
    assert not dst.exists()


async def test_clip_audio_end_at_the_rounded_track_length_is_accepted(
    tracks: dict[str, Path], tmp_path: Path
) -> None:
    returned = await clip_audio(tracks["ogg"], tmp_path / "c.mp3", 2.0, 3.02, timeout=30)
    assert returned == pytest.approx(1.0, abs=0.05)


async def test_clip_audio_rejects_unknown_output_suffix(tracks: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="Unsupported audio output format"):
        await clip_audio(tracks["wav"], tmp_path / "c.xyz", 0, 1, timeout=30)


@pytest.mark.parametrize("source", sorted(INPUTS))
async def test_convert_to_mp3_keeps_the_length(tracks: dict[str, Path], tmp_path: Path, source: str) -> None:
    info = await convert_to_mp3(tracks[source], tmp_path / "out.mp3", timeout=30)
    assert info.audio_codec == "mp3" and not info.has_video
    assert info.duration == pytest.approx(TRACK, abs=0.06)
    assert decoded_seconds(tmp_path / "out.mp3") == pytest.approx(TRACK, abs=0.06)


async def test_convert_to_mp3_rejects_a_file_without_audio(tracks: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="not an audio file"):
        await convert_to_mp3(tracks["silent.mp4"], tmp_path / "out.mp3", timeout=30)
    assert list(tmp_path.iterdir()) == []


async def test_convert_to_mp3_rejects_garbage_as_bad_input(tmp_path: Path) -> None:
    junk = tmp_path / "upload.mp3"
    junk.write_bytes(b"\x00\x01garbage" * 100)
    with pytest.raises(BadInput):
        await convert_to_mp3(junk, tmp_path / "out.mp3", timeout=30)
    assert not (tmp_path / "out.mp3").exists()


@pytest.mark.parametrize("source", ["mp3", "flac", "music-video.mp4"])
async def test_audio_duration(tracks: dict[str, Path], source: str) -> None:
    expected = 2.0 if source.endswith(".mp4") else TRACK
    assert await audio_duration(tracks[source]) == pytest.approx(expected, abs=0.06)


async def test_audio_duration_of_a_silent_video_is_bad_input(tracks: dict[str, Path]) -> None:
    with pytest.raises(BadInput, match="not an audio file"):
        await audio_duration(tracks["silent.mp4"])


# ------------------------------------------------------------------ what the clip contains

#: The "song" steps up 100 Hz every second: 300 Hz in [0, 1), 400 Hz in [1, 2), ... 1200 Hz in [9, 10).
STEPS = [300.0 + 100 * k for k in range(10)]


@pytest.fixture(scope="module")
def stepped(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("stepped")
    made = {}
    for suffix in ("mp3", "wav", "m4a"):
        path = d / f"steps.{suffix}"
        ff(
            f"-f lavfi -i aevalsrc=0.5*sin(2*PI*(300+100*floor(t))*t):s=44100:d=10 {INPUTS[suffix]} {{}}",
            path,
        )
        made[suffix] = path
    return made


def _step_time(samples: list[float], low: float, high: float) -> float:
    """When the tone changes from ``low`` to ``high`` Hz: the first 10 ms window where high wins."""
    hop = signals.RATE // 100
    for index in range(0, len(samples) - hop, hop):
        chunk = samples[index : index + 2 * hop]
        if signals.tone_power(chunk, high) > signals.tone_power(chunk, low):
            return index / signals.RATE
    raise AssertionError(f"no change from {low:g} Hz to {high:g} Hz")


@pytest.mark.parametrize("source", ["mp3", "wav", "m4a"])
@pytest.mark.parametrize(("start", "end"), [(2.5, 4.6), (6.25, 7.75)])
async def test_clip_audio_takes_the_requested_part_of_the_song(
    stepped: dict[str, Path], tmp_path: Path, source: str, start: float, end: float
) -> None:
    dst = tmp_path / "clip.mp3"
    await clip_audio(stepped[source], dst, start, end, timeout=30)
    heard = signals.mono_samples(dst)
    assert len(heard) / signals.RATE == pytest.approx(end - start, abs=0.05)
    first = int(start)  # the second of the song the clip starts in
    at_start = signals.window(heard, 0.02, min(0.2, first + 1 - start - 0.02))
    assert signals.dominant(at_start, STEPS) == STEPS[first]
    # the next step comes exactly where the song has it, so the clip is neither shifted nor stretched
    assert _step_time(heard, STEPS[first], STEPS[first + 1]) == pytest.approx(first + 1 - start, abs=0.02)
    at_end = signals.window(heard, end - start - 0.2, end - start - 0.02)
    assert signals.dominant(at_end, STEPS) == STEPS[int(end)]
