"""ffmpeg plumbing: probing, running jobs under deadlines, atomic outputs, frame sizes."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from mvcore.errors import BadInput, DeadlineExceeded, MediaError
from mvcore.media import ffmpeg
from mvcore.media.ffmpeg import (
    MediaInfo,
    aspect_to_size,
    atomic_output,
    probe,
    probe_sync,
    run_ffmpeg,
)

FF = ffmpeg.ffmpeg_exe()


def ff(command: str, *paths: Path | str) -> None:
    """Run ffmpeg; each ``{}`` token of ``command`` is replaced by the next path (safe with spaces)."""
    queue = list(paths)
    args = [str(queue.pop(0)) if token == "{}" else token for token in command.split()]
    subprocess.run([FF, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("probe")
    out = {
        name: d / name
        for name in ("av.mp4", "v.mp4", "tone.wav", "tone.ogg", "tone.aac", "cover.mp3", "51.m4a")
    }
    ff(
        "-f lavfi -i testsrc=size=320x180:rate=25 -f lavfi -i sine=f=440:sample_rate=44100 -t 1.5 "
        "-c:v libx264 -pix_fmt yuv420p -c:a aac -ac 2 {}",
        out["av.mp4"],
    )
    ff("-f lavfi -i testsrc=size=180x320:rate=30 -t 1 -c:v libx264 -pix_fmt yuv420p {}", str(out["v.mp4"]))
    ff("-f lavfi -i sine=f=300:sample_rate=22050:d=2 {}", str(out["tone.wav"]))
    ff("-f lavfi -i sine=f=300:d=2 -c:a libvorbis {}", str(out["tone.ogg"]))
    ff("-f lavfi -i sine=f=300:d=2.5 -c:a aac {}", str(out["tone.aac"]))
    Image.new("RGB", (64, 64), (200, 30, 30)).save(d / "cover.png")
    ff(
        "-f lavfi -i sine=f=300:d=2 -i {} -map 0 -map 1 -c:a libmp3lame -c:v png "
        "-disposition:v attached_pic {}",
        d / "cover.png",
        out["cover.mp3"],
    )
    ff("-f lavfi -i sine=f=300:d=1 -af aformat=channel_layouts=5.1 -c:a aac {}", str(out["51.m4a"]))
    ff("-display_rotation 90 -i {} -c copy {}", str(out["av.mp4"]), str(d / "phone.mp4"))
    out["phone.mp4"] = d / "phone.mp4"
    # Written to a pipe, matroska cannot go back and fill in its duration: probe must measure it.
    with (d / "streamed.mkv").open("wb") as sink:
        subprocess.run(
            [
                FF,
                "-nostdin",
                "-loglevel",
                "error",
                "-f",
                "lavfi",
                "-i",
                "sine=f=300:d=1.7",
                "-c:a",
                "flac",
                "-f",
                "matroska",
                "-",
            ],
            stdout=sink,
            check=True,
        )
    out["streamed.mkv"] = d / "streamed.mkv"
    (d / "notes.txt").write_text("not media at all\n" * 50)
    out["notes.txt"] = d / "notes.txt"
    return out


# ------------------------------------------------------------------ probe

PROBE_CASES = [
    # name, duration, has_video, has_audio, size, fps, vcodec, acodec, channels, rate
    ("av.mp4", 1.5, True, True, (320, 180), 25.0, "h264", "aac", 2, 44100),
    ("v.mp4", 1.0, True, False, (180, 320), 30.0, "h264", None, None, None),
    ("tone.wav", 2.0, False, True, (None, None), None, None, "pcm_s16le", 1, 22050),
    ("tone.ogg", 2.0, False, True, (None, None), None, None, "vorbis", 1, 44100),
    ("tone.aac", 2.5, False, True, (None, None), None, None, "aac", 1, 44100),
    ("cover.mp3", 2.0, False, True, (None, None), None, None, "mp3", 1, 44100),
    ("51.m4a", 1.0, False, True, (None, None), None, None, "aac", 6, 44100),
    ("phone.mp4", 1.5, True, True, (180, 320), 25.0, "h264", "aac", 2, 44100),
    ("streamed.mkv", 1.7, False, True, (None, None), None, None, "flac", 1, 44100),
]


@pytest.mark.parametrize(
    ("name", "duration", "has_video", "has_audio", "size", "fps", "vcodec", "acodec", "channels", "rate"),
    PROBE_CASES,
)
async def test_probe_describes_real_files(
    files: dict[str, Path],
    name: str,
    duration: float,
    has_video: bool,
    has_audio: bool,
    size: tuple[int | None, int | None],
    fps: float | None,
    vcodec: str | None,
    acodec: str | None,
    channels: int | None,
    rate: int | None,
) -> None:
    info = await probe(files[name])
    assert info.duration == pytest.approx(duration, abs=0.06)
    assert (info.has_video, info.has_audio) == (has_video, has_audio)
    assert (info.width, info.height) == size
    assert info.fps == fps
    assert (info.video_codec, info.audio_codec) == (vcodec, acodec)
    assert (info.audio_channels, info.audio_sample_rate) == (channels, rate)


async def test_probe_sync_agrees_with_async_probe(files: dict[str, Path]) -> None:
    for name in ("av.mp4", "tone.aac"):
        assert probe_sync(files[name]) == await probe(files[name])


async def test_probe_rejects_non_media_as_bad_input_naming_only_the_file(files: dict[str, Path]) -> None:
    with pytest.raises(BadInput) as err:
        await probe(files["notes.txt"])
    assert "notes.txt" in err.value.message
    assert str(files["notes.txt"].parent) not in err.value.message


async def test_probe_of_a_missing_file_is_a_media_error(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match=r"gone\.mp4"):
        await probe(tmp_path / "gone.mp4")


async def test_probe_measures_a_vbr_mp3_whose_header_only_estimates_its_length(tmp_path: Path) -> None:
    """Quiet then loud, VBR, no Xing header: libavformat's bitrate estimate is seconds off."""
    vbr = tmp_path / "vbr.mp3"
    ff(
        "-f lavfi -i anoisesrc=d=4:a=0.8 -f lavfi -i anullsrc=d=4:r=44100 "
        "-filter_complex [1:a][0:a]concat=n=2:v=0:a=1 -c:a libmp3lame -q:a 0 -write_xing 0 {}",
        vbr,
    )
    info = await probe(vbr)
    assert info.duration == pytest.approx(8.0, abs=0.06)


def test_probe_spawns_no_process(files: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """Probing is in process (PyAV): a probe that started ffmpeg would fail here."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("probe started a process")

    monkeypatch.setattr(subprocess, "Popen", refuse)
    monkeypatch.setattr(asyncio, "create_subprocess_exec", refuse)
    for name in ("av.mp4", "tone.aac", "streamed.mkv", "phone.mp4", "cover.mp3"):
        assert probe_sync(files[name]).duration > 0


async def test_probe_under_an_expired_deadline_is_deadline_exceeded(files: dict[str, Path]) -> None:
    with pytest.raises(DeadlineExceeded):
        await probe(files["streamed.mkv"], timeout=0.0)


# ------------------------------------------------------------------ run_ffmpeg


async def test_run_ffmpeg_reports_progress_fractions_up_to_one(tmp_path: Path) -> None:
    seen: list[float] = []
    await run_ffmpeg(
        ["-f", "lavfi", "-i", "testsrc=size=64x64:rate=25:d=2", "-c:v", "libx264", str(tmp_path / "p.mp4")],
        timeout=30,
        progress=lambda fraction, message: seen.append(fraction),
        expected_duration=2.0,
    )
    assert seen and seen[-1] == 1.0
    assert seen == sorted(seen) and all(0 <= f <= 1 for f in seen)


async def test_run_ffmpeg_failure_is_media_error_with_scrubbed_stderr_tail(tmp_path: Path) -> None:
    missing = tmp_path / "secret-dir" / "nope.mp4"
    with pytest.raises(MediaError) as err:
        await run_ffmpeg(["-i", str(missing), str(tmp_path / "out.mp4")], timeout=30)
    rendered = repr(err.value.to_detail())
    assert str(tmp_path) not in rendered
    assert "out.mp4" in err.value.message
    assert err.value.details["exit_code"] != 0
    assert 0 < len(err.value.details["stderr"]) <= 5
    assert any("nope.mp4" in line for line in err.value.details["stderr"])


def _capture_processes(monkeypatch: pytest.MonkeyPatch) -> list[asyncio.subprocess.Process]:
    procs: list[asyncio.subprocess.Process] = []
    real = asyncio.create_subprocess_exec

    async def spy(*args: Any, **kwargs: Any) -> asyncio.subprocess.Process:
        proc = await real(*args, **kwargs)
        procs.append(proc)
        return proc

    monkeypatch.setattr(ffmpeg.asyncio, "create_subprocess_exec", spy)
    return procs


ENDLESS = ["-re", "-f", "lavfi", "-i", "testsrc=size=64x64:rate=25", "-f", "null", "-"]


async def test_run_ffmpeg_timeout_kills_the_process_and_raises_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    procs = _capture_processes(monkeypatch)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(DeadlineExceeded):
        await run_ffmpeg(ENDLESS, timeout=0.5)
    assert loop.time() - started < 5
    assert len(procs) == 1 and procs[0].returncode is not None


async def test_cancelling_run_ffmpeg_kills_the_process(monkeypatch: pytest.MonkeyPatch) -> None:
    procs = _capture_processes(monkeypatch)
    task = asyncio.create_task(run_ffmpeg(ENDLESS, timeout=30))
    await asyncio.sleep(0.5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert procs[0].returncode is not None


async def test_a_process_killed_by_a_signal_is_a_media_error(monkeypatch: pytest.MonkeyPatch) -> None:
    procs = _capture_processes(monkeypatch)
    task = asyncio.create_task(run_ffmpeg(ENDLESS, timeout=30))
    while not procs:
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)
    procs[0].kill()
    with pytest.raises(MediaError, match="signal"):
        await task


# ------------------------------------------------------------------ atomic_output


def test_atomic_output_temp_name_keeps_the_real_suffix_last(tmp_path: Path) -> None:
    final = tmp_path / "video.mp4"
    with atomic_output(final) as tmp:
        assert tmp.parent == final.parent
        assert tmp.name.startswith(".video.mp4.") and tmp.name.endswith(".tmp.mp4")
        tmp.write_bytes(b"done")
    assert final.read_bytes() == b"done"
    assert [p.name for p in tmp_path.iterdir()] == ["video.mp4"]


async def test_atomic_output_leaves_no_file_when_ffmpeg_fails(tmp_path: Path) -> None:
    final = tmp_path / "out" / "video.mp4"
    with pytest.raises(MediaError), atomic_output(final) as tmp:
        # Starts writing a real file, then fails on the broken second input.
        await run_ffmpeg(
            [
                "-f",
                "lavfi",
                "-i",
                "testsrc=size=64x64:rate=25:d=1",
                "-i",
                str(tmp_path / "missing.wav"),
                "-c:v",
                "libx264",
                str(tmp),
            ],
            timeout=30,
        )
    assert not final.exists()
    assert list(final.parent.iterdir()) == []


def test_atomic_output_keeps_the_previous_file_on_failure(tmp_path: Path) -> None:
    final = tmp_path / "video.mp4"
    final.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_output(final) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("boom")
    assert final.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["video.mp4"]


def test_atomic_output_without_output_is_a_media_error(tmp_path: Path) -> None:
    with pytest.raises(MediaError), atomic_output(tmp_path / "a.mp4"):
        pass
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ sizes and setup


@pytest.mark.parametrize(
    ("ratio", "long_side", "size"),
    [
        ("16:9", 1280, (1280, 720)),
        ("9:16", 1280, (720, 1280)),
        ("1:1", 1280, (1280, 1280)),
        ("4:3", 1280, (1280, 960)),
        ("3:4", 1280, (960, 1280)),
        ("16:9", 320, (320, 180)),
        ("21:9", 1000, (1000, 428)),
        (" 2.39:1 ", 640, (640, 268)),
    ],
)
def test_aspect_to_size_gives_even_sizes(ratio: str, long_side: int, size: tuple[int, int]) -> None:
    assert aspect_to_size(ratio, long_side) == size
    assert all(v % 2 == 0 for v in size)


@pytest.mark.parametrize("ratio", ["", "16", "16:0", "0:9", "a:b", "16:9:1", "-16:9", "100:1"])
def test_aspect_to_size_rejects_malformed_ratios(ratio: str) -> None:
    with pytest.raises(BadInput):
        aspect_to_size(ratio)


def test_ffmpeg_exe_is_cached() -> None:
    assert ffmpeg.ffmpeg_exe() is ffmpeg.ffmpeg_exe()


def test_media_info_is_frozen_and_keyword_only() -> None:
    info = MediaInfo(duration=1.0, has_video=True, has_audio=False, width=2, height=2)
    with pytest.raises(AttributeError):
        info.duration = 2.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        MediaInfo(1.0, True, False)  # type: ignore[misc]


# ------------------------------------------------------------------ MP4 rotation without decoding


@pytest.mark.parametrize("rotation", [0, 90, 180, 270, -90, 45])
def test_track_header_rotation_equals_what_the_decoder_reports(
    files: dict[str, Path], tmp_path: Path, rotation: int
) -> None:
    import av

    from mvcore.media.isobmff import track_rotation

    rotated = tmp_path / "r.mp4"
    ff(f"-display_rotation {rotation} -i {{}} -c copy {{}}", files["av.mp4"], rotated)
    with av.open(str(rotated)) as container:
        stream = container.streams.video[0]
        decoded = round(-next(container.decode(stream)).rotation) % 360
        track = stream.id
    assert track_rotation(rotated, track) == decoded
    assert probe_sync(rotated).rotation == decoded


def test_track_header_reader_survives_truncated_and_garbled_files(
    files: dict[str, Path], tmp_path: Path
) -> None:
    from mvcore.media.isobmff import track_rotation

    data = files["phone.mp4"].read_bytes()
    cut = tmp_path / "cut.mp4"
    for end in [0, 4, 8, 16, 100, *range(len(data) - 2000, len(data), 97)]:
        cut.write_bytes(data[:end])
        assert track_rotation(cut, 1) in (None, 0, 90, 180, 270)
    garbled = bytearray(data)
    for index in range(0, len(garbled), 53):
        garbled[index] ^= 0xFF
    cut.write_bytes(bytes(garbled))
    assert track_rotation(cut, 1) in (None, 0, 90, 180, 270)
