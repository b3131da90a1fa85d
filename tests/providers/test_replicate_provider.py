"""ReplicateProvider driven through the real ``replicate`` client against a fake Replicate API."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from mvcore.errors import DeadlineExceeded, MvcoreError, ProviderError
from mvcore.providers.base import Provider, Scene
from mvcore.providers.replicate import ReplicateProvider, extract_scenes
from mvcore.providers.replicate_call import CallPolicy, PredictionCall
from mvcore.testing.replicate_server import FakeReplicateServer, PredictionFailure

TOKEN = "r8_secret_TOKEN_1234567890"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(range(64))
MP4 = b"\x00\x00\x00\x18ftypmp42" + b"\x01" * 200
LLM = "openai/gpt-4o-mini"

SCENES_JSON = json.dumps(
    {"scenes": [{"description": f"scene {i}", "negative_description": f"no blur {i}"} for i in range(1, 5)]}
)


@pytest.fixture
def fake() -> Iterator[FakeReplicateServer]:
    with FakeReplicateServer(api_token=TOKEN) as server:
        yield server


def make_provider(
    fake: FakeReplicateServer, *, token: str = TOKEN, timeout_s: float = 10
) -> ReplicateProvider:
    provider = ReplicateProvider(token, base_url=fake.base_url, timeout_s=timeout_s, poll_interval_s=0.01)
    provider.policy = replace(provider.policy, retry_base_delay_s=0.01, retry_max_delay_s=0.02)
    return provider


@pytest.fixture
def provider(fake: FakeReplicateServer) -> ReplicateProvider:
    return make_provider(fake)


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[float, str]] = []

    def __call__(self, fraction: float, message: str) -> None:
        self.calls.append((fraction, message))

    @property
    def fractions(self) -> list[float]:
        return [f for f, _ in self.calls]


def tokens(text: str, size: int = 3) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


async def scenes(provider: ReplicateProvider, n: int = 4, progress: Any = None) -> list[Scene]:
    kwargs: dict[str, Any] = {"progress": progress} if progress else {}
    return await provider.generate_scenes(
        prompt="Make {n} scenes", inputs={"idea": "x"}, number_of_scenes=n, model=LLM, **kwargs
    )


def assert_no_token(err: BaseException) -> None:
    assert TOKEN not in str(err)
    assert TOKEN not in repr(err)
    if isinstance(err, MvcoreError):
        assert TOKEN not in json.dumps(err.to_detail(), default=str)


# ---------------------------------------------------------------------------------- basics


def test_is_a_provider(provider: ReplicateProvider) -> None:
    assert isinstance(provider, Provider)
    assert provider.name == "replicate"
    assert TOKEN not in repr(provider)


def test_empty_token_rejected() -> None:
    with pytest.raises(ProviderError) as info:
        ReplicateProvider("  ")
    assert info.value.code == "AUTHENTICATION_ERROR"


# ---------------------------------------------------------------------------------- scenes


async def test_scenes_from_token_list(fake: FakeReplicateServer, provider: ReplicateProvider) -> None:
    fake.add_model(LLM, lambda inp: tokens(SCENES_JSON))
    progress = Recorder()
    result = await scenes(provider, progress=progress)
    assert [s.description for s in result] == ["scene 1", "scene 2", "scene 3", "scene 4"]
    assert result[0].negative_description == "no blur 1"

    (create,) = fake.create_requests
    assert create.path == "/v1/models/openai/gpt-4o-mini/predictions"
    assert create.authorization == f"Bearer {TOKEN}"
    assert create.json["input"]["prompt"] == "Make {n} scenes"
    assert "JSON" in create.json["input"]["system_prompt"]
    assert progress.fractions[-1] == 1.0
    assert progress.fractions == sorted(progress.fractions)


async def test_scenes_code_fenced_with_chatter(
    fake: FakeReplicateServer, provider: ReplicateProvider
) -> None:
    text = f"Sure! Here are your scenes:\n```json\n{SCENES_JSON}\n```\nEnjoy {{the}} video."
    fake.add_model(LLM, lambda inp: tokens(text, 5))
    result = await scenes(provider)
    assert len(result) == 4 and result[3].description == "scene 4"


async def test_scenes_more_than_asked_are_truncated(
    fake: FakeReplicateServer, provider: ReplicateProvider
) -> None:
    fake.add_model(LLM, lambda inp: SCENES_JSON)
    result = await scenes(provider, n=2)
    assert [s.description for s in result] == ["scene 1", "scene 2"]


async def test_scenes_fewer_than_asked_is_an_error(
    fake: FakeReplicateServer, provider: ReplicateProvider
) -> None:
    fake.add_model(LLM, lambda inp: tokens(SCENES_JSON))
    with pytest.raises(ProviderError) as info:
        await scenes(provider, n=6)
    assert info.value.code == "UNKNOWN_ERROR"
    assert "got 4 scene(s), expected 6" in info.value.message
    assert info.value.details["expected_scenes"] == 6


async def test_scenes_unparsable_is_an_error(fake: FakeReplicateServer, provider: ReplicateProvider) -> None:
    fake.add_model(LLM, lambda inp: ["I cannot ", "do that."])
    with pytest.raises(ProviderError) as info:
        await scenes(provider)
    assert info.value.code == "UNKNOWN_ERROR"
    assert "did not return usable scenes" in info.value.message


@pytest.mark.parametrize(
    "text",
    [
        SCENES_JSON,
        f"```\n{SCENES_JSON}\n```",
        f"prefix {SCENES_JSON} suffix with a stray }}",
        f'{{"note": "broken"\n{SCENES_JSON}',
        json.dumps([{"description": f"d{i}"} for i in range(4)]),
    ],
)
def test_extract_scenes_tolerates_noise(text: str) -> None:
    assert len(extract_scenes(text, 4)) == 4


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("", "empty"),
        ('{"scenes": "nope"}', 'no "scenes" list'),
        ('{"scenes": [{"negative_description": "x"}]}', 'no "description"'),
        ('{"scenes": [1]}', "not an object"),
    ],
)
def test_extract_scenes_rejects(text: str, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        extract_scenes(text, 1)


async def test_scenes_empty_model_uses_default(
    fake: FakeReplicateServer, provider: ReplicateProvider
) -> None:
    fake.add_model(LLM, lambda inp: SCENES_JSON)
    result = await provider.generate_scenes(prompt="p", inputs={}, number_of_scenes=1, model="")
    assert len(result) == 1
    assert fake.create_requests[0].path == f"/v1/models/{LLM}/predictions"


# ---------------------------------------------------------------------------------- images


async def test_images_one_prediction_per_image(
    fake: FakeReplicateServer, provider: ReplicateProvider, tmp_path: Path
) -> None:
    png_url = fake.add_asset("out.png", PNG, "image/png")
    fake.add_model("google/imagen-4", lambda inp: png_url)
    progress = Recorder()
    result = await provider.generate_images(
        prompt="a singer",
        negative_prompt="blurry",
        num_images=3,
        params={
            "model": "google/imagen-4",
            "aspect_ratio": "1:1",
            "safety_filter_level": "block_medium_and_above",
            "person_generation": "allow_adult",
            "output_format": "png",
        },
        seed=7,
        out_dir=tmp_path / "imgs",
        progress=progress,
    )
    assert result.model_used == "google/imagen-4"
    assert [p.name for p in result.paths] == ["0.png", "1.png", "2.png"]
    assert all(p.read_bytes() == PNG for p in result.paths)
    assert not list((tmp_path / "imgs").glob(".*part"))

    creates = fake.create_requests
    assert len(creates) == 3
    # imagen-4's schema has no seed / negative_prompt / person_generation: they are not sent
    assert creates[0].json["input"] == {
        "prompt": "a singer",
        "aspect_ratio": "1:1",
        "safety_filter_level": "block_medium_and_above",
        "output_format": "png",
    }
    assert progress.fractions == sorted(progress.fractions) and progress.fractions[-1] == 1.0
    # downloads never carry the API token
    assert all(r.authorization is None for r in fake.requests_to("GET", r"/assets/.*"))


async def test_images_other_model_gets_every_key_and_distinct_seeds(
    fake: FakeReplicateServer, provider: ReplicateProvider, tmp_path: Path
) -> None:
    jpg_url = fake.add_asset("x.jpg", b"JPEGDATA", "image/jpeg")
    fake.add_model("acme/painter", lambda inp: [jpg_url])
    result = await provider.generate_images(
        prompt="p",
        negative_prompt="n",
        num_images=2,
        params={"model": "acme/painter", "output_format": "jpg", "extra_input": {"steps": 4}},
        seed=10,
        out_dir=tmp_path,
    )
    assert [p.name for p in result.paths] == ["0.jpg", "1.jpg"]
    inputs = sorted((r.json["input"] for r in fake.create_requests), key=lambda i: i["seed"])
    assert [i["seed"] for i in inputs] == [10, 11]
    assert inputs[0]["negative_prompt"] == "n" and inputs[0]["steps"] == 4


async def test_images_data_uri_output(
    fake: FakeReplicateServer, provider: ReplicateProvider, tmp_path: Path
) -> None:
    import base64

    fake.add_model("acme/inline", lambda inp: "data:image/png;base64," + base64.b64encode(PNG).decode())
    result = await provider.generate_images(
        prompt="p",
        negative_prompt=None,
        num_images=1,
        params={"model": "acme/inline"},
        seed=None,
        out_dir=tmp_path,
    )
    assert result.paths[0].read_bytes() == PNG


# ---------------------------------------------------------------------------------- video


async def test_video_uploads_reference_image(
    fake: FakeReplicateServer, provider: ReplicateProvider, tmp_path: Path
) -> None:
    ref = tmp_path / "character.png"
    ref.write_bytes(PNG)
    mp4_url = fake.add_asset("clip.mp4", MP4, "video/mp4")
    fake.add_model("google/veo-3.1", lambda inp: mp4_url, logs=" 50%|#####     | 5/10\n")
    progress = Recorder()
    out = tmp_path / "out" / "video.mp4"
    result = await provider.generate_video(
        prompt="dance",
        negative_prompt="text",
        params={
            "model": "google/veo-3.1",
            "aspect_ratio": "16:9",
            "duration": 8,
            "generate_audio": True,
            "person_generation": "allow_all",
        },
        reference_image=ref,
        seed=3,
        out_path=out,
        progress=progress,
    )
    assert result.paths == [out] and out.read_bytes() == MP4
    assert result.model_used == "google/veo-3.1"

    (upload,) = fake.requests_to("POST", "/v1/files")
    assert upload.authorization == f"Bearer {TOKEN}"
    assert PNG in upload.body  # the open file handle was uploaded as multipart
    (create,) = fake.create_requests
    inp = create.json["input"]
    assert inp["prompt"] == "dance" and inp["negative_prompt"] == "text"
    assert inp["duration"] == 8 and inp["generate_audio"] is True and inp["seed"] == 3
    assert "person_generation" not in inp  # not in veo-3.1's schema
    assert len(inp["reference_images"]) == 1
    assert fake.file_bytes(inp["reference_images"][0]) == PNG
    assert (upload_name := next(iter(fake.uploads.values())).name) == "character.png", upload_name
    # progress parsed from the model's tqdm-style logs
    assert any(0.5 <= f < 1.0 and "processing" in m for f, m in progress.calls)


async def test_video_portrait_uses_image_input(
    fake: FakeReplicateServer, provider: ReplicateProvider, tmp_path: Path
) -> None:
    ref = tmp_path / "c.png"
    ref.write_bytes(PNG)
    mp4_url = fake.add_asset("clip.mp4", MP4, "video/mp4")
    fake.add_model("google/veo-3.1", lambda inp: mp4_url)
    await provider.generate_video(
        prompt="p",
        negative_prompt=None,
        params={"model": "google/veo-3.1", "aspect_ratio": "9:16", "duration": 6},
        reference_image=ref,
        seed=None,
        out_path=tmp_path / "v.mp4",
    )
    inp = fake.create_requests[0].json["input"]
    assert "reference_images" not in inp and "negative_prompt" not in inp and "seed" not in inp
    assert fake.file_bytes(inp["image"]) == PNG


async def test_video_missing_reference_file(provider: ReplicateProvider, tmp_path: Path) -> None:
    with pytest.raises(MvcoreError) as info:
        await provider.generate_video(
            prompt="p",
            negative_prompt=None,
            params={"model": "google/veo-3.1"},
            reference_image=tmp_path / "nope.png",
            seed=None,
            out_path=tmp_path / "v.mp4",
        )
    assert info.value.status_code == 404
    assert str(tmp_path) not in info.value.message


# ---------------------------------------------------------------------------------- lipsync


async def test_lipsync_uploads_both_files(
    fake: FakeReplicateServer, provider: ReplicateProvider, tmp_path: Path
) -> None:
    video, audio = tmp_path / "in.mp4", tmp_path / "voice.mp3"
    video.write_bytes(MP4)
    audio.write_bytes(b"ID3" + b"\x02" * 100)
    synced = MP4 + b"synced"
    seen: dict[str, Any] = {}

    def handler(inp: dict[str, Any]) -> str:
        seen["video"] = fake.file_bytes(inp["video"])
        seen["audio"] = fake.file_bytes(inp["audio"])
        return fake.add_asset("synced.mp4", synced, "video/mp4")

    fake.add_model("sync/lipsync-2-pro", handler)
    out = tmp_path / "lipsynced.mp4"
    result = await provider.lipsync(
        video=video,
        audio=audio,
        params={"temperature": 0.4, "occlusion_detection_enabled": True, "active_speaker_detection": True},
        out_path=out,
    )
    assert result.model_used == "sync/lipsync-2-pro"
    assert out.read_bytes() == synced
    assert seen == {"video": MP4, "audio": audio.read_bytes()}
    assert len(fake.requests_to("POST", "/v1/files")) == 2
    inp = fake.create_requests[0].json["input"]
    assert inp["temperature"] == 0.4 and inp["active_speaker"] is True
    assert fake.create_requests[0].path == "/v1/models/sync/lipsync-2-pro/predictions"


# ---------------------------------------------------------------------------------- retries


async def test_429_on_create_is_retried(fake: FakeReplicateServer, provider: ReplicateProvider) -> None:
    fake.add_model(LLM, lambda inp: SCENES_JSON)
    fake.fail_next_creates(429, times=2, detail="Request was throttled.")
    assert len(await scenes(provider)) == 4
    assert len(fake.create_requests) == 3
    assert len(fake.predictions) == 1


async def test_5xx_on_create_is_retried(fake: FakeReplicateServer, provider: ReplicateProvider) -> None:
    fake.add_model(LLM, lambda inp: SCENES_JSON)
    fake.fail_next_creates(502)
    assert len(await scenes(provider)) == 4
    assert len(fake.create_requests) == 2


async def test_429_gives_up_after_three_attempts(
    fake: FakeReplicateServer, provider: ReplicateProvider
) -> None:
    fake.add_model(LLM, lambda inp: SCENES_JSON)
    fake.fail_next_creates(429, times=5)
    with pytest.raises(ProviderError) as info:
        await scenes(provider)
    assert info.value.code == "RATE_LIMIT_EXCEEDED" and info.value.status_code == 429
    assert len(fake.create_requests) == 3
    assert fake.predictions == []


async def test_upload_retried_but_create_not_reuploaded(
    fake: FakeReplicateServer, provider: ReplicateProvider, tmp_path: Path
) -> None:
    video, audio = tmp_path / "v.mp4", tmp_path / "a.wav"
    video.write_bytes(MP4)
    audio.write_bytes(b"RIFF" + b"\x00" * 40)
    out_url = fake.add_asset("o.mp4", MP4, "video/mp4")
    fake.add_model("sync/lipsync-2-pro", lambda inp: out_url)
    fake.fail_next_uploads(503)
    fake.fail_next_creates(500)
    await provider.lipsync(video=video, audio=audio, params={}, out_path=tmp_path / "o.mp4")
    assert len(fake.requests_to("POST", "/v1/files")) == 3  # one retried upload + one
    assert len(fake.uploads) == 2
    assert len(fake.create_requests) == 2


async def test_500_after_creation_is_not_recreated(
    fake: FakeReplicateServer, provider: ReplicateProvider
) -> None:
    fake.add_model(LLM, lambda inp: SCENES_JSON, polls=5)
    fake.fail_next_gets(500, times=10)
    with pytest.raises(ProviderError) as info:
        await scenes(provider)
    assert info.value.code == "UNKNOWN_ERROR" and info.value.status_code == 502
    assert info.value.details["prediction_id"]
    assert len(fake.create_requests) == 1
    # the orphaned prediction is canceled, best effort
    assert len(fake.cancel_requests) == 1


async def test_transient_poll_error_is_tolerated(
    fake: FakeReplicateServer, provider: ReplicateProvider
) -> None:
    fake.add_model(LLM, lambda inp: SCENES_JSON)
    fake.fail_next_gets(500, times=1)
    assert len(await scenes(provider)) == 4
    assert len(fake.create_requests) == 1


# ---------------------------------------------------------------------------------- error mapping


@pytest.mark.parametrize(
    "error",
    [
        "NSFW content detected. Try running it again, or try a different prompt.",
        "The input or output was flagged as sensitive. Please try again with different inputs. (E005)",
    ],
)
async def test_content_policy_failure(
    fake: FakeReplicateServer, provider: ReplicateProvider, error: str
) -> None:
    fake.fail_model(LLM, error)
    with pytest.raises(ProviderError) as info:
        await scenes(provider)
    assert info.value.code == "CONTENT_POLICY_VIOLATION" and info.value.status_code == 400
    assert len(fake.cancel_requests) == 0  # failed is terminal: nothing to cancel


async def test_handler_failure_maps_to_policy(
    fake: FakeReplicateServer, provider: ReplicateProvider, tmp_path: Path
) -> None:
    def refuse(inp: dict[str, Any]) -> str:
        raise PredictionFailure("Prompt blocked by safety filter")

    fake.add_model("google/imagen-4", refuse)
    with pytest.raises(ProviderError) as info:
        await provider.generate_images(
            prompt="p", negative_prompt=None, num_images=2, params={}, seed=None, out_dir=tmp_path
        )
    assert info.value.code == "CONTENT_POLICY_VIOLATION"


async def test_other_failure_is_unknown(fake: FakeReplicateServer, provider: ReplicateProvider) -> None:
    fake.fail_model(LLM, "CUDA out of memory")
    with pytest.raises(ProviderError) as info:
        await scenes(provider)
    assert info.value.code == "UNKNOWN_ERROR" and info.value.status_code == 502
    assert "CUDA out of memory" in info.value.message


async def test_wrong_token_is_authentication_error(fake: FakeReplicateServer) -> None:
    fake.add_model(LLM, lambda inp: SCENES_JSON)
    provider = make_provider(fake, token="r8_wrong_token_abcdef")
    with pytest.raises(ProviderError) as info:
        await scenes(provider)
    assert info.value.code == "AUTHENTICATION_ERROR" and info.value.status_code == 502
    assert "r8_wrong_token_abcdef" not in str(info.value.to_detail())
    assert len(fake.create_requests) == 1  # 401 is not retried


async def test_unknown_model_is_unknown_error(fake: FakeReplicateServer, provider: ReplicateProvider) -> None:
    with pytest.raises(ProviderError) as info:
        await scenes(provider)
    assert info.value.code == "UNKNOWN_ERROR"
    assert "exists on Replicate" in (info.value.hint or "")


async def test_version_reference_uses_predictions_endpoint(
    fake: FakeReplicateServer, provider: ReplicateProvider
) -> None:
    fake.add_model("meta/meta-llama-3-70b-instruct", lambda inp: tokens(SCENES_JSON), version="abc123")
    result = await provider.generate_scenes(
        prompt="p", inputs={}, number_of_scenes=4, model="meta/meta-llama-3-70b-instruct:abc123"
    )
    assert len(result) == 4
    (create,) = fake.create_requests
    assert create.path == "/v1/predictions" and create.json["version"] == "abc123"


# ---------------------------------------------------------------------------------- deadlines


async def test_deadline_cancels_prediction(fake: FakeReplicateServer) -> None:
    fake.hang_model(LLM)
    # 2 s: the create itself must finish (a cold one can take 0.3 s on a loaded machine) so that the
    # deadline falls while polling, where there is a prediction to cancel
    provider = make_provider(fake, timeout_s=2.0)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(DeadlineExceeded) as info:
        await scenes(provider)
    assert loop.time() - started < 6.0
    assert info.value.status_code == 504
    assert len(fake.cancel_requests) == 1
    assert fake.predictions[0]["status"] == "canceled"
    assert info.value.details["prediction_id"] == fake.predictions[0]["id"]


async def test_caller_cancellation_cancels_prediction(fake: FakeReplicateServer) -> None:
    fake.hang_model(LLM)
    provider = make_provider(fake, timeout_s=60)  # the caller's cancel, not the deadline, ends it
    task = asyncio.create_task(scenes(provider))
    for _ in range(2000):  # bounded: 20 s for the create to reach 'processing' on a loaded machine
        await asyncio.sleep(0.01)
        if fake.predictions and fake.predictions[0]["status"] == "processing":
            break
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(fake.cancel_requests) == 1


async def test_a_cancel_that_lands_as_a_poll_finishes_is_not_lost() -> None:
    """The race behind a CI flake of the test above: the caller's cancel and the end of a status
    poll in the same loop turn.  ``asyncio.wait_for`` (Python 3.11) returned the poll's result and
    dropped the cancel, so the job polled on until its deadline; the deadline wrapper must not."""
    call = PredictionCall(CallPolicy(token="t", timeout_s=60), lambda fraction, message: None)
    try:
        poll: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(call.within_deadline(poll, "status"))
        await asyncio.sleep(0)  # the task is now waiting on the poll
        poll.set_result("processing")  # the poll answers ...
        task.cancel()  # ... and the caller cancels, before the task runs again
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        await call.__aexit__(None, None, None)


async def test_deadline_during_create_backoff(fake: FakeReplicateServer) -> None:
    fake.add_model(LLM, lambda inp: SCENES_JSON)
    fake.fail_next_creates(503, times=3)
    # the deadline (2 s) falls inside the first backoff (30 s): roomy enough for a cold first create
    provider = make_provider(fake, timeout_s=2.0)
    provider.policy = replace(provider.policy, retry_base_delay_s=30.0, retry_max_delay_s=30.0)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(DeadlineExceeded):
        await scenes(provider)
    assert loop.time() - started < 10.0  # it did not sleep the backoff out
    assert len(fake.create_requests) == 1


# ---------------------------------------------------------------------------------- secrets


async def test_token_never_in_error_messages(fake: FakeReplicateServer, tmp_path: Path) -> None:
    # A roomy deadline for the calls that must fail on their own; only the hang uses a short one
    # (a cold first call can take longer than 0.3 s on a loaded machine).
    provider = make_provider(fake, timeout_s=10)
    hanging = make_provider(fake, timeout_s=0.3)
    errors: list[BaseException] = []

    async def capture(coro: Any) -> None:
        try:
            await coro
        except BaseException as exc:
            errors.append(exc)

    fake.fail_model(LLM, f"upstream said: invalid key {TOKEN}")
    await capture(scenes(provider))
    fake.fail_next_creates(429, times=3, detail=f"throttled for token {TOKEN}")
    await capture(scenes(provider))
    fake.fail_next_creates(422, detail=f"- input.prompt: bad ({TOKEN})")
    await capture(scenes(provider))
    fake.hang_model(LLM)
    await capture(scenes(hanging))
    fake.fail_next_uploads(400, detail=TOKEN)
    ref = tmp_path / "r.png"
    ref.write_bytes(PNG)
    await capture(
        provider.generate_video(
            prompt="p",
            negative_prompt=None,
            params={},
            reference_image=ref,
            seed=None,
            out_path=tmp_path / "o",
        )
    )
    assert len(errors) == 5
    assert [type(e).__name__ for e in errors] == [
        "ProviderError",
        "ProviderError",
        "ProviderError",
        "DeadlineExceeded",
        "ProviderError",
    ]
    for err in errors:
        assert_no_token(err)
    assert "[redacted]" in str(errors[0])
