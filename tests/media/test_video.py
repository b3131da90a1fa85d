"""Offline clip rendering, audio muxing and stitching, checked on the files ffmpeg writes."""

from __future__ import annotations

import re
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageChops

from mvcore.errors import BadInput
from mvcore.media import ffmpeg, video
from mvcore.media.video import mux_audio, stitch
from mvcore.providers.offline_video import render_clip
from tests.media import signals

FF = ffmpeg.ffmpeg_exe()


def ff(command: str, *paths: Path | str) -> None:
    """Run ffmpeg; each ``{}`` token of ``command`` is replaced by the next path (safe with spaces)."""
    queue = list(paths)
    args = [str(queue.pop(0)) if token == "{}" else token for token in command.split()]
    subprocess.run([FF, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def decoded_seconds(path: Path, stream: str) -> float:
    """Length of one stream, measured by decoding it (independent of the container's header)."""
    out = subprocess.run(
        [
            FF,
            "-nostdin",
            "-nostats",
            "-i",
            str(path),
            "-map",
            f"0:{stream}:0",
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
    return [int(v) for v in re.findall(r"^out_time_us=(\d+)$", out, re.MULTILINE)][-1] / 1e6


def max_volume(path: Path, start: float, length: float) -> float:
    """Peak level in dB of the audio between start and start+length (-91 dB is digital silence)."""
    err = subprocess.run(
        [
            FF,
            "-nostdin",
            "-hide_banner",
            "-ss",
            str(start),
            "-t",
            str(length),
            "-i",
            str(path),
            "-map",
            "0:a:0",
            "-af",
            "volumedetect",
            "-f",
            "null",
            "-",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    return float(re.findall(r"max_volume: (-?[\d.]+|-inf) dB", err)[-1].replace("-inf", "-200"))


def stream_counts(path: Path) -> tuple[int, int]:
    err = subprocess.run([FF, "-hide_banner", "-i", str(path)], capture_output=True, text=True).stderr
    return len(re.findall(r"Stream #0:\d+.*: Video:", err)), len(re.findall(r"Stream #0:\d+.*: Audio:", err))


def frame_at(path: Path, second: float, out: Path) -> Image.Image:
    ff("-ss {} -i {} -frames:v 1 {}", str(second), str(path), str(out))
    return Image.open(out).convert("RGB")


def video_md5(path: Path) -> str:
    return subprocess.run(
        [
            FF,
            "-nostdin",
            "-loglevel",
            "error",
            "-i",
            str(path),
            "-map",
            "0:v:0",
            "-c",
            "copy",
            "-f",
            "md5",
            "-",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Small sources made by plain ffmpeg so the stitch tests don't depend on render_clip."""
    d = tmp_path_factory.mktemp("clips")
    made = {}

    def make(name: str, size: str, rate: int, seconds: float, tone: int | None) -> None:
        sound = f"-f lavfi -i sine=f={tone}:sample_rate=44100:d={seconds} -c:a aac" if tone else ""
        picture = f"-f lavfi -i testsrc=size={size}:rate={rate}:d={seconds}"
        ff(f"{picture} {sound} -c:v libx264 -preset ultrafast -pix_fmt yuv420p -shortest {{}}", d / name)
        made[name] = d / name

    make("wide_a.mp4", "320x180", 24, 1.5, 440)
    make("tall_silent.mp4", "180x320", 24, 1.0, None)
    make("wide_30fps.mp4", "320x180", 30, 1.2, 660)
    make("square_a.mp4", "240x240", 25, 0.8, 550)
    ff("-f lavfi -i sine=f=220:d=1 {}", str(d / "short_song.wav"))
    ff("-f lavfi -i sine=f=880:d=6 -ac 2 -c:a aac {}", str(d / "long_song.m4a"))
    made["short_song.wav"] = d / "short_song.wav"
    made["long_song.m4a"] = d / "long_song.m4a"
    return made


# ------------------------------------------------------------------ render_clip


@pytest.mark.parametrize(
    ("aspect", "duration", "with_audio", "fps", "size"),
    [
        ("16:9", 1.0, True, 24, (320, 180)),
        ("9:16", 1.5, False, 24, (180, 320)),
        ("1:1", 2.0, True, 12, (320, 320)),
        ("4:3", 1.3, False, 30, (320, 240)),
    ],
)
async def test_render_clip_has_requested_duration_size_and_audio(
    tmp_path: Path, aspect: str, duration: float, with_audio: bool, fps: int, size: tuple[int, int]
) -> None:
    out = tmp_path / "clip.mp4"
    progress: list[float] = []
    info = await render_clip(
        out,
        prompt="a singer on a rooftop at dusk",
        duration=duration,
        aspect_ratio=aspect,
        fps=fps,
        long_side=320,
        with_audio=with_audio,
        seed=7,
        timeout=60,
        progress=lambda fraction, message: progress.append(fraction),
    )
    assert info == await ffmpeg.probe(out)
    assert info.duration == pytest.approx(duration, abs=0.1)
    assert decoded_seconds(out, "v") == pytest.approx(duration, abs=0.1)
    assert (info.width, info.height) == size
    assert (info.video_codec, info.pixel_format, info.fps) == ("h264", "yuv420p", fps)
    assert info.has_audio is with_audio
    assert stream_counts(out) == (1, 1 if with_audio else 0)
    if with_audio:
        assert info.audio_codec == "aac"
        assert decoded_seconds(out, "a") == pytest.approx(duration, abs=0.1)
        assert max_volume(out, duration / 2 - 0.2, 0.4) > -40
    assert progress and progress[-1] == 1.0
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]


async def test_rendered_frames_move_and_follow_the_reference_image(tmp_path: Path) -> None:
    reference = tmp_path / "ref.png"
    Image.new("RGB", (200, 200), (255, 0, 255)).save(reference)
    out = tmp_path / "clip.mp4"
    await render_clip(
        out,
        prompt="a neon city street at night",
        duration=2.0,
        aspect_ratio="16:9",
        long_side=320,
        with_audio=False,
        reference_image=reference,
        timeout=60,
    )
    early, late = frame_at(out, 0.5, tmp_path / "a.png"), frame_at(out, 1.5, tmp_path / "b.png")
    assert ImageChops.difference(early, late).getbbox() is not None
    # The magenta reference sits in the lower-right corner, fixed while the landscape pans.
    r, g, b = late.getpixel((320 - 40, 180 - 30))  # type: ignore[misc]
    assert r > 180 and b > 180 and g < 90


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"duration": 0.0}, "duration"),
        ({"duration": 10_000.0}, "duration"),
        ({"aspect_ratio": "wide"}, "aspect ratio"),
        ({"fps": 0}, "fps"),
    ],
)
async def test_render_clip_rejects_bad_parameters(
    tmp_path: Path, kwargs: dict[str, object], needle: str
) -> None:
    params: dict[str, object] = {
        "prompt": "x",
        "duration": 1.0,
        "aspect_ratio": "16:9",
        "with_audio": False,
        "long_side": 320,
        "timeout": 30,
        **kwargs,
    }
    with pytest.raises(BadInput, match=needle):
        await render_clip(tmp_path / "x.mp4", **params)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ mux_audio


@pytest.mark.parametrize("song", ["short_song.wav", "long_song.m4a"])
async def test_mux_audio_output_is_as_long_as_the_video(
    clips: dict[str, Path], tmp_path: Path, song: str
) -> None:
    source = clips["wide_a.mp4"]
    out = tmp_path / "lipsync.mp4"
    info = await mux_audio(source, clips[song], out, timeout=30)
    assert info.duration == pytest.approx(1.5, abs=0.1)
    assert decoded_seconds(out, "a") == pytest.approx(1.5, abs=0.1)
    assert (info.audio_codec, info.audio_channels, info.audio_sample_rate) == ("aac", 2, 48000)
    assert stream_counts(out) == (1, 1)
    assert video_md5(out) == video_md5(source)  # the picture is copied, not re-encoded


async def test_mux_audio_onto_a_silent_video(clips: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "lipsync.mp4"
    info = await mux_audio(clips["tall_silent.mp4"], clips["long_song.m4a"], out, timeout=30)
    assert info.has_audio and info.duration == pytest.approx(1.0, abs=0.1)
    assert max_volume(out, 0.6, 0.3) > -30


@pytest.mark.parametrize(
    ("video_name", "audio_name", "needle"),
    [
        ("short_song.wav", "long_song.m4a", "not a video"),
        ("wide_a.mp4", "tall_silent.mp4", "not an audio file"),
    ],
)
async def test_mux_audio_rejects_inputs_without_the_needed_stream(
    clips: dict[str, Path], tmp_path: Path, video_name: str, audio_name: str, needle: str
) -> None:
    with pytest.raises(BadInput, match=needle):
        await mux_audio(clips[video_name], clips[audio_name], tmp_path / "o.mp4", timeout=30)


# ------------------------------------------------------------------ stitch

STITCH_CASES = [
    # clips, overlay, suppress, expected size, song audible at the end
    (["wide_a.mp4", "tall_silent.mp4"], None, False, (320, 180), False),
    (["tall_silent.mp4", "wide_a.mp4", "square_a.mp4"], None, False, (180, 320), False),
    (["wide_a.mp4", "wide_30fps.mp4"], None, False, (320, 180), False),
    (["wide_a.mp4", "tall_silent.mp4"], "short_song.wav", False, (320, 180), False),
    (["tall_silent.mp4", "wide_a.mp4"], "long_song.m4a", False, (180, 320), True),
    (["wide_a.mp4", "tall_silent.mp4", "wide_a.mp4"], "long_song.m4a", True, (320, 180), True),
    (["wide_a.mp4", "square_a.mp4"], "short_song.wav", True, (320, 180), False),
    (["wide_a.mp4", "tall_silent.mp4"], None, True, (320, 180), False),
]


@pytest.mark.parametrize(("names", "overlay", "suppress", "size", "song_at_end"), STITCH_CASES)
async def test_stitch_duration_is_the_sum_with_one_video_and_one_full_length_audio_stream(
    clips: dict[str, Path],
    tmp_path: Path,
    names: list[str],
    overlay: str | None,
    suppress: bool,
    size: tuple[int, int],
    song_at_end: bool,
) -> None:
    sources = [clips[n] for n in names]
    total = sum([(await ffmpeg.probe(p)).duration for p in sources])
    out = tmp_path / "stitched.mp4"
    info = await stitch(
        sources,
        out,
        audio_overlay=clips[overlay] if overlay else None,
        suppress_video_audio=suppress,
        timeout=60,
    )
    assert info.duration == pytest.approx(total, abs=0.15)
    assert decoded_seconds(out, "v") == pytest.approx(total, abs=0.15)
    assert decoded_seconds(out, "a") == pytest.approx(total, abs=0.15)
    assert stream_counts(out) == (1, 1)
    assert (info.width, info.height, info.fps) == (*size, (await ffmpeg.probe(sources[0])).fps)
    assert (info.audio_codec, info.audio_channels, info.audio_sample_rate) == ("aac", 2, 48000)
    last_second = max_volume(out, total - 1.0, 0.9)
    if song_at_end:
        assert last_second > -30
    if suppress and overlay is None:
        assert last_second < -80  # a silent track, not the clips' sound
    assert [p.name for p in tmp_path.iterdir()] == ["stitched.mp4"]


async def test_stitch_overlay_replaces_clip_sound_when_suppressed(
    clips: dict[str, Path], tmp_path: Path
) -> None:
    # The short song covers the first second, then only padding silence: the clip's tone must not leak in.
    out = tmp_path / "s.mp4"
    await stitch(
        [clips["wide_a.mp4"]],
        out,
        audio_overlay=clips["short_song.wav"],
        suppress_video_audio=True,
        timeout=30,
    )
    assert max_volume(out, 0.2, 0.5) > -30
    assert max_volume(out, 1.15, 0.3) < -80


async def test_stitch_of_matching_clips_is_lossless(
    clips: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[list[str]] = []
    real = ffmpeg.run_ffmpeg

    async def spy(args: list[str], **kwargs: Any) -> None:
        calls.append(args)
        await real(args, **kwargs)

    monkeypatch.setattr(ffmpeg, "run_ffmpeg", spy)
    out = tmp_path / "s.mp4"
    info = await stitch([clips["wide_a.mp4"]] * 3, out, timeout=30)
    assert len(calls) == 1 and "copy" in calls[0] and "-filter_complex" not in calls[0]
    assert info.duration == pytest.approx(4.5, abs=0.15)
    assert decoded_seconds(out, "a") == pytest.approx(4.5, abs=0.15)
    assert max_volume(out, 3.6, 0.8) > -30
    assert (info.width, info.height) == (320, 180)


async def test_stitch_of_rendered_clips_keeps_them_in_order(tmp_path: Path) -> None:
    first, second = tmp_path / "1.mp4", tmp_path / "2.mp4"
    for path, aspect in ((first, "16:9"), (second, "9:16")):
        await render_clip(
            path,
            prompt=f"scene {aspect}",
            duration=1.0,
            aspect_ratio=aspect,
            long_side=320,
            with_audio=aspect == "16:9",
            timeout=60,
        )
    info = await stitch([first, second], tmp_path / "s.mp4", timeout=60)
    assert info.duration == pytest.approx(2.0, abs=0.15)
    # The portrait clip is letterboxed (pillarboxed) into the first clip's landscape frame.
    frame = frame_at(tmp_path / "s.mp4", 1.5, tmp_path / "f.png")
    assert frame.size == (320, 180)
    assert max(frame.getpixel((5, 90))) < 20  # type: ignore[arg-type]


async def test_stitch_follows_the_displayed_orientation_of_phone_clips(
    clips: dict[str, Path], tmp_path: Path
) -> None:
    phone = tmp_path / "phone.mp4"
    ff("-display_rotation 90 -i {} -c copy {}", str(clips["wide_a.mp4"]), str(phone))
    info = await stitch([phone, clips["wide_a.mp4"]], tmp_path / "s.mp4", timeout=30)
    assert (info.width, info.height) == (180, 320)
    assert info.duration == pytest.approx(3.0, abs=0.15)


async def test_stitch_with_no_clips_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="empty"):
        await stitch([], tmp_path / "s.mp4", timeout=30)


async def test_stitch_rejects_an_audio_file_as_a_clip(clips: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(BadInput, match=r"Clip 2 \(short_song.wav\) has no video"):
        await stitch([clips["wide_a.mp4"], clips["short_song.wav"]], tmp_path / "s.mp4", timeout=30)
    assert not (tmp_path / "s.mp4").exists()


async def test_stitch_progress_reaches_one(clips: dict[str, Path], tmp_path: Path) -> None:
    seen: list[float] = []
    await stitch(
        [clips["wide_a.mp4"], clips["tall_silent.mp4"]],
        tmp_path / "s.mp4",
        timeout=30,
        progress=lambda fraction, message: seen.append(fraction),
    )
    assert seen[-1] == 1.0 and seen == sorted(seen)


def test_copy_compatibility_requires_identical_streams() -> None:
    base = ffmpeg.MediaInfo(
        duration=1.0,
        has_video=True,
        has_audio=True,
        width=320,
        height=180,
        fps=24.0,
        video_codec="h264",
        audio_codec="aac",
        audio_channels=2,
        audio_sample_rate=48000,
        pixel_format="yuv420p",
        video_profile="High",
        video_config="sps-a",
    )
    other_fps = replace(base, fps=30.0)
    silent = replace(base, has_audio=False, audio_codec=None, audio_channels=None, audio_sample_rate=None)
    other_encoder = replace(base, video_config="sps-b")
    assert video._copy_compatible([base, base])
    assert not video._copy_compatible([base, other_fps])
    assert not video._copy_compatible([base, silent])
    assert video._video_copyable([base, silent])  # the picture can still be copied
    assert not video._video_copyable([base, other_encoder])


# ------------------------------------------------------------------ stitch: what the output contains

FPS = 24


@pytest.fixture(scope="module")
def matching(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Three 1 s clips from one encoder setup (so one SPS/PPS), each with its own 440 Hz sound,
    different pictures; a noise "song" (a signal nothing else resembles) and a 1 kHz tone song."""
    d = tmp_path_factory.mktemp("matching")
    clips = []
    for index, source in enumerate(("testsrc2", "testsrc", "rgbtestsrc")):
        clip = d / f"m{index}.mp4"
        ff(
            f"-f lavfi -i {source}=size=320x180:rate={FPS}:d=1 -f lavfi -i sine=f=440:sample_rate=48000:d=1 "
            "-c:v libx264 -preset ultrafast -pix_fmt yuv420p -c:a aac -ac 2 -shortest {}",
            clip,
        )
        clips.append(clip)
    noise, tone = d / "noise_song.wav", d / "tone_song.wav"
    ff("-f lavfi -i anoisesrc=d=6:c=pink:a=0.5:seed=7:r=48000 -af lowpass=f=3000 {}", noise)
    ff("-f lavfi -i sine=f=1000:sample_rate=48000:d=6 {}", tone)
    return {"clips": clips, "noise": noise, "tone": tone}


async def test_overlay_stitch_of_matching_clips_copies_every_video_packet_and_plays_the_song(
    matching: dict[str, Any], tmp_path: Path
) -> None:
    clips: list[Path] = matching["clips"]
    out = tmp_path / "s.mp4"
    info = await stitch(clips, out, audio_overlay=matching["noise"], suppress_video_audio=True, timeout=60)
    assert info.stitch_path is video.StitchPath.COPY_VIDEO
    # The picture is the clips' own packets, byte for byte, in order; one decoder configuration.
    assert signals.video_packet_hashes(out) == [h for c in clips for h in signals.video_packet_hashes(c)]
    assert signals.video_config(out) == signals.video_config(clips[0])
    total = sum([(await ffmpeg.probe(c)).duration for c in clips])
    assert abs(info.duration - total) <= 1 / FPS
    assert abs(signals.stream_seconds(out, "video") - total) <= 1 / FPS
    # The sound is the song from its start, in every clip, and not some other part of it.
    heard, song = signals.mono_samples(out), signals.mono_samples(matching["noise"])
    for start in (0.1, 1.1, 2.1):
        here = signals.window(heard, start, start + 0.8)
        assert signals.correlation(here, signals.window(song, start, start + 0.8)) > 0.95, start
        assert signals.correlation(here, signals.window(song, start + 1.5, start + 2.3)) < 0.3, start
    assert len(heard) / signals.RATE == pytest.approx(total, abs=1 / FPS)


MIX_CASES = [
    # clips, how stitch must make them
    (["m0", "m1", "m2"], video.StitchPath.COPY_VIDEO),
    (["m0", "wide_30fps.mp4", "m2"], video.StitchPath.RE_ENCODE),
]


@pytest.mark.parametrize(("names", "path"), MIX_CASES)
async def test_song_is_heard_over_the_clips_own_sound_in_every_clip(
    matching: dict[str, Any], clips: dict[str, Path], tmp_path: Path, names: list[str], path: video.StitchPath
) -> None:
    by_name = {**clips, **{f"m{i}": c for i, c in enumerate(matching["clips"])}}
    sources = [by_name[n] for n in names]
    out = tmp_path / "s.mp4"
    info = await stitch(sources, out, audio_overlay=matching["tone"], timeout=60)
    assert info.stitch_path is path
    heard, song = signals.mono_samples(out), signals.mono_samples(matching["tone"])
    song_power = signals.tone_power(signals.window(song, 0.5, 1.0), 1000)
    start = 0.0
    for source in sources:
        length = (await ffmpeg.probe(source)).duration
        span = signals.window(heard, start + 0.15, start + length - 0.15)
        assert signals.tone_power(span, 1000) > 0.3 * song_power, f"song missing in {source.name}"
        own = 440 if source.name.startswith("m") or source.name == "wide_a.mp4" else 660
        assert signals.tone_power(span, own) > 0.02 * song_power, f"clip sound missing in {source.name}"
        start += length


async def test_mismatched_clips_are_normalised_in_one_encode(
    clips: dict[str, Path], matching: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[list[str]] = []
    real = ffmpeg.run_ffmpeg

    async def spy(args: list[str], **kwargs: Any) -> None:
        calls.append(args)
        await real(args, **kwargs)

    monkeypatch.setattr(ffmpeg, "run_ffmpeg", spy)
    sources = [clips["wide_a.mp4"], clips["tall_silent.mp4"], clips["wide_30fps.mp4"], matching["clips"][0]]
    out = tmp_path / "s.mp4"
    info = await stitch(sources, out, audio_overlay=matching["tone"], suppress_video_audio=True, timeout=60)
    assert info.stitch_path is video.StitchPath.RE_ENCODE
    assert len(calls) == 1 and calls[0].count("libx264") == 1
    assert (info.width, info.height, info.fps, info.pixel_format) == (320, 180, 24.0, "yuv420p")
    total = sum([(await ffmpeg.probe(p)).duration for p in sources])
    assert info.duration == pytest.approx(total, abs=0.1)
    assert signals.stream_seconds(out, "video") == pytest.approx(total, abs=0.1)


# ------------------------------------------------------------------ disk full


async def test_ffmpeg_writing_to_a_full_disk_is_disk_full_not_a_media_error(tmp_path: Path) -> None:
    from mvcore.errors import StorageError

    args = [
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=64x64:rate=25:d=2",
        "-c:v",
        "libx264",
        "-f",
        "mpegts",
        "/dev/full",
    ]
    with pytest.raises(StorageError) as err:
        await ffmpeg.run_ffmpeg(args, timeout=30)
    assert err.value.code == "DISK_FULL" and err.value.status_code == 507
    assert "disk full" in err.value.message


@pytest.fixture
def small_disk(tmp_path: Path) -> Any:
    """A real 64 KiB tmpfs (root only): ffmpeg hits ENOSPC in the middle of its output."""
    import os
    import shutil

    target = tmp_path / "small"
    target.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(target)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode()[-200:]}")
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], capture_output=True, timeout=30)


@pytest.mark.parametrize("overlay", [False, True])
async def test_stitch_onto_a_full_disk_is_disk_full_and_leaves_nothing(
    matching: dict[str, Any], small_disk: Path, overlay: bool
) -> None:
    from mvcore.errors import StorageError

    with pytest.raises(StorageError) as err:
        await stitch(
            matching["clips"] * 4,
            small_disk / "s.mp4",
            audio_overlay=matching["noise"] if overlay else None,
            suppress_video_audio=overlay,
            timeout=60,
        )
    assert err.value.code == "DISK_FULL"
    assert list(small_disk.iterdir()) == []
