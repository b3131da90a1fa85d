"""Ids are UUIDs, checked before they touch a key; keys are relative and clean."""

from __future__ import annotations

import uuid

import pytest

from mvcore.errors import BadInput, NotFound
from mvcore.storage import keys

VALID = "177adfe0-88fa-41d5-b18f-ba9a4455862f"
BAD_IDS = [
    "../../etc/passwd",
    "/etc/passwd",
    "a\x00b",
    "x" * 300,
    "..%2f..%2fetc",
    "",
    "abc",
    VALID + "\n",
    VALID + "/../x",
    "{" + VALID + "}",
    VALID.replace("-", ""),
    f"urn:uuid:{VALID}",
    None,
    42,
]


@pytest.mark.parametrize("value", BAD_IDS, ids=repr)
def test_malformed_ids_are_404_invalid_id(value: object) -> None:
    with pytest.raises(NotFound) as caught:
        keys.parse_id(value, "video")
    err = caught.value
    assert err.status_code == 404 and err.code == "INVALID_ID"
    assert err.message.startswith("Video ") and err.message.endswith(" not found")
    assert "\x00" not in err.message and len(err.message) < 120
    assert "UUID" in (err.hint or "")
    for build in (keys.video_key, keys.video_metadata_key, keys.audio_key, keys.audio_metadata_key):
        with pytest.raises(NotFound):
            build(value)  # type: ignore[arg-type]


def test_valid_ids_are_canonicalized() -> None:
    assert keys.parse_id(VALID, "video") == VALID
    assert keys.parse_id(VALID.upper(), "audio") == VALID
    assert keys.parse_id(uuid.UUID(VALID), "job") == VALID
    assert keys.is_id(VALID) and not keys.is_id("../x")


def test_kind_shapes_the_message() -> None:
    with pytest.raises(NotFound, match=r"^Character reference 'abc' not found$") as caught:
        keys.parse_id("abc", "character reference")
    assert "generate_character_reference" in (caught.value.hint or "")


def test_key_layout() -> None:
    assert keys.video_key(VALID) == f"mv/jobs/{VALID}/video.mp4"
    assert keys.video_metadata_key(VALID) == f"mv/jobs/{VALID}/metadata.json"
    assert keys.character_reference_key(VALID, ".PNG") == f"character_references/{VALID}.png"
    assert keys.audio_key(VALID) == f"audio/{VALID}.mp3"
    assert keys.audio_metadata_key(VALID) == f"audio/{VALID}.json"


@pytest.mark.parametrize("ext", ["", "png/../../x", "p\x00g", "toolongext"])
def test_character_reference_extension_is_checked(ext: str) -> None:
    with pytest.raises(BadInput):
        keys.character_reference_key(VALID, ext)


@pytest.mark.parametrize(
    "key",
    ["", "/etc/passwd", "../x", "a/../../x", "a//b", "a/./b", "a/", "a\\..\\b", "a\x00b", "a\nb", "x" * 1025],
    ids=repr,
)
def test_check_key_refuses(key: str) -> None:
    with pytest.raises(BadInput) as caught:
        keys.check_key(key)
    assert caught.value.code == "INVALID_KEY"


@pytest.mark.parametrize("key", ["audio/x.mp3", f"mv/jobs/{VALID}/video.mp4", "..%2f..%2fetc", "a/b..c/d"])
def test_check_key_accepts(key: str) -> None:
    assert keys.check_key(key) == key
