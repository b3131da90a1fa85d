"""The fake Replicate server checks inputs like Replicate; the provider sends deadlines and reads
``aborted``; what the provider sends is exactly what it reports."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mvcore.errors import DeadlineExceeded, ProviderError
from mvcore.providers.catalogue import shipped_catalogue
from mvcore.providers.replicate import ReplicateProvider
from mvcore.providers.replicate_call import cancel_after
from mvcore.testing.replicate_rules import parse_cancel_after
from mvcore.testing.replicate_server import FakeReplicateServer

TOKEN = "r8_schema_test_token"
MP4 = b"\x00\x00\x00\x18ftypmp42" + b"\x01" * 64
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


@pytest.fixture
def fake() -> Iterator[FakeReplicateServer]:
    with FakeReplicateServer(api_token=TOKEN, default_polls=1) as server:
        yield server


def create(fake: FakeReplicateServer, model: str, inp: dict[str, Any], **headers: str) -> httpx.Response:
    return httpx.post(
        f"{fake.base_url}/v1/models/{model}/predictions",
        json={"input": inp},
        headers={"Authorization": f"Bearer {TOKEN}", **headers},
        timeout=5,
    )


def get(fake: FakeReplicateServer, pid: str) -> dict[str, Any]:
    response = httpx.get(
        f"{fake.base_url}/v1/predictions/{pid}", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5
    )
    body: dict[str, Any] = response.json()
    return body


def _fake_cases() -> list[tuple[str, str, Any, bool]]:
    """Every enum and range input of every catalogued model: one accepted, one refused value."""
    cases = []
    for entry in shipped_catalogue().entries.values():
        for name, prop in entry.properties.items():
            if "enum" in prop:
                cases.append((entry.name, name, prop["enum"][-1], True))
                cases.append((entry.name, name, "nope" if prop.get("type") == "string" else 999, False))
            elif "maximum" in prop:
                cases.append((entry.name, name, prop["maximum"], True))
                cases.append((entry.name, name, prop["maximum"] + 1, False))
    return cases


def minimal_input(model: str) -> dict[str, Any]:
    entry = shipped_catalogue().get(model)
    assert entry is not None
    return {
        name: "https://example.test/x" if "video" in name or "audio" in name else "p"
        for name in entry.required
    }


@pytest.mark.parametrize(("model", "name", "value", "ok"), _fake_cases())
def test_the_fake_server_answers_422_like_replicate_for_a_refused_value(
    fake: FakeReplicateServer, model: str, name: str, value: Any, ok: bool
) -> None:
    fake.add_model(model, lambda inp: "ok")
    response = create(fake, model, {**minimal_input(model), name: value})
    if ok:
        assert response.status_code == 201, response.text
        return
    assert response.status_code == 422
    body = response.json()
    assert body["title"] == "Input validation failed" and body["status"] == 422
    assert body["detail"].startswith(f"- input.{name}: ")
    assert body["invalid_fields"][0]["field"] == f"input.{name}"
    assert fake.predictions == []  # refused before any prediction exists


def test_missing_required_and_unknown_inputs_are_refused(fake: FakeReplicateServer) -> None:
    fake.add_model("google/veo-3.1", lambda inp: "ok")
    body = create(fake, "google/veo-3.1", {"person_generation": "allow_all"}).json()
    kinds = {f["field"]: f["type"] for f in body["invalid_fields"]}
    assert kinds == {"input.prompt": "required", "input.person_generation": "additional_property_not_allowed"}


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("1m30s", 90),
        ("1h", 3600),
        ("500ms", 0.5),
        ("2m", 120),
        ("", None),
        ("5", None),
        ("1x", None),
    ],
)
def test_cancel_after_durations(text: str, seconds: float | None) -> None:
    assert parse_cancel_after(text) == seconds


def test_cancel_after_we_send_parses_back_to_the_deadline() -> None:
    for seconds in (0.2, 1.0, 59.5, 900):
        parsed = parse_cancel_after(cancel_after(seconds))
        assert parsed is not None and seconds <= parsed < seconds + 1


def test_a_queued_prediction_past_its_cancel_after_is_aborted_and_a_running_one_canceled(
    fake: FakeReplicateServer,
) -> None:
    fake.add_model("google/veo-3.1", lambda inp: "x", queued=None)  # never starts
    queued = create(fake, "google/veo-3.1", {"prompt": "p"}, **{"Cancel-After": "3s"}).json()
    fake.hang_model("google/imagen-4")  # starts, never finishes
    running = create(fake, "google/imagen-4", {"prompt": "p"}, **{"Cancel-After": "3s"}).json()
    assert get(fake, running["id"])["status"] == "processing"
    assert get(fake, queued["id"])["status"] == "starting"
    time.sleep(3.1)
    assert get(fake, queued["id"])["status"] == "aborted"
    assert get(fake, running["id"])["status"] == "canceled"
    bad = create(fake, "google/veo-3.1", {"prompt": "p"}, **{"Cancel-After": "soon"})
    assert bad.status_code == 400


# ------------------------------------------------------------------------------- the provider


def provider_for(fake: FakeReplicateServer, timeout_s: float = 10) -> ReplicateProvider:
    return ReplicateProvider(TOKEN, base_url=fake.base_url, timeout_s=timeout_s, poll_interval_s=0.01)


async def test_every_create_carries_the_remaining_deadline_as_cancel_after(
    fake: FakeReplicateServer, tmp_path: Path
) -> None:
    fake.add_model("google/veo-3.1", lambda inp: fake.add_asset("v.mp4", MP4, "video/mp4"))
    await provider_for(fake, timeout_s=30).generate_video(
        prompt="p", negative_prompt=None, params={"duration": 6}, reference_image=None, seed=1,
        out_path=tmp_path / "v.mp4",
    )  # fmt: skip
    (created,) = fake.create_requests
    seconds = parse_cancel_after(created.headers["cancel-after"])
    assert seconds is not None and 25 <= seconds <= 30
    polls = fake.requests_to("GET", r"/v1/predictions/.+")
    assert polls and all("cancel-after" not in r.headers for r in polls)


async def test_a_prediction_replicate_aborted_is_a_deadline_error_without_a_cancel(
    tmp_path: Path,
) -> None:
    with FakeReplicateServer(api_token=TOKEN, deadline_scale=0.05) as fake:  # Replicate's clock runs first
        fake.add_model("google/veo-3.1", lambda inp: "x", queued=None)
        with pytest.raises(DeadlineExceeded) as caught:
            await provider_for(fake, timeout_s=5).generate_video(
                prompt="p", negative_prompt=None, params={}, reference_image=None, seed=None,
                out_path=tmp_path / "v.mp4",
            )  # fmt: skip
        assert caught.value.details["status"] == "aborted"
        assert "nothing was charged" in caught.value.message
        assert fake.cancel_requests == []  # aborted is final: nothing to cancel
        assert fake.predictions[0]["status"] == "aborted"


async def test_the_provider_reports_exactly_what_it_sent_and_what_it_did_not(
    fake: FakeReplicateServer, tmp_path: Path
) -> None:
    png = fake.add_asset("i.png", PNG, "image/png")
    fake.add_model("google/imagen-4", lambda inp: png)
    params = {"aspect_ratio": "16:9", "output_format": "png", "person_generation": "allow_adult"}
    result = await provider_for(fake).generate_images(
        prompt="p", negative_prompt="blurry", num_images=1, params=params, seed=3, out_dir=tmp_path
    )
    sent = fake.create_requests[0].json["input"]  # type: ignore[index]
    assert sent == {"prompt": "p", "aspect_ratio": "16:9", "output_format": "png"}
    assert result.raw["input"] == sent
    assert result.raw["not_sent"] == {
        "person_generation": "allow_adult",
        "negative_prompt": "blurry",
        "seed": 3,
    }


async def test_a_value_the_model_refuses_comes_back_as_replicates_422_when_sent_anyway(
    fake: FakeReplicateServer, tmp_path: Path
) -> None:
    # the provider itself does not refuse (generators do, before calling): the fake still says 422
    fake.add_model("google/veo-3.1", lambda inp: "x")
    with pytest.raises(ProviderError) as caught:
        await provider_for(fake).generate_video(
            prompt="p", negative_prompt=None, params={"duration": 5}, reference_image=None, seed=None,
            out_path=tmp_path / "v.mp4",
        )  # fmt: skip
    assert caught.value.details["replicate_status"] == 422
    assert "input.duration" in caught.value.message
