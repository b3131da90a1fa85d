"""Pillow drawings of the offline provider: deterministic, sized as asked, encoded as asked."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image, ImageChops

from mvcore.errors import BadInput
from mvcore.providers.offline_art import (
    draw_character,
    draw_scene_background,
    draw_scene_card,
    draw_scene_overlay,
    encode_image,
)

DESCRIPTION = "A cheerful singer with long red hair, sunglasses and a gold crown, wearing a blue jacket"


def same(a: Image.Image, b: Image.Image) -> bool:
    return a.size == b.size and ImageChops.difference(a.convert("RGB"), b.convert("RGB")).getbbox() is None


@pytest.mark.parametrize(("width", "height"), [(256, 256), (192, 341), (400, 225), (16, 16)])
def test_draw_character_has_the_requested_size(width: int, height: int) -> None:
    image = draw_character(DESCRIPTION, width, height, seed=1, variant=0)
    assert image.size == (width, height) and image.mode == "RGB"


def test_draw_character_is_deterministic_per_seed_and_variant() -> None:
    first = draw_character(DESCRIPTION, 200, 200, seed=5, variant=0)
    assert same(first, draw_character(DESCRIPTION, 200, 200, seed=5, variant=0))
    assert not same(first, draw_character(DESCRIPTION, 200, 200, seed=5, variant=1))
    assert not same(first, draw_character(DESCRIPTION, 200, 200, seed=6, variant=0))
    assert not same(first, draw_character("a quiet drummer in a green hat", 200, 200, seed=5, variant=0))


def test_draw_character_uses_colours_named_in_the_description() -> None:
    image = draw_character("a dancer in a blue jacket", 300, 400, seed=None, variant=0)
    r, _, b = image.getpixel((150, 340))  # type: ignore[misc]  # the shoulders, above the caption band
    assert b > 150 and r < 100


def test_draw_character_writes_the_description() -> None:
    plain = draw_character("x", 300, 300, seed=1, variant=0).crop((0, 240, 300, 300))
    worded = draw_character("x " * 3 + "many more words here", 300, 300, seed=1, variant=0).crop(
        (0, 240, 300, 300)
    )
    assert not same(plain, worded)


@pytest.mark.parametrize(("width", "height"), [(320, 180), (180, 320), (64, 64)])
def test_draw_scene_card_size_and_determinism(width: int, height: int) -> None:
    card = draw_scene_card("a rain-soaked street at night", width, height, seed=3, reference_image=None)
    assert card.size == (width, height) and card.mode == "RGB"
    assert same(
        card, draw_scene_card("a rain-soaked street at night", width, height, seed=3, reference_image=None)
    )
    assert not same(
        card, draw_scene_card("a quiet beach at dawn", width, height, seed=3, reference_image=None)
    )


def test_scene_card_is_background_plus_overlay(tmp_path: Path) -> None:
    reference = tmp_path / "ref.jpg"
    Image.new("RGB", (90, 120), (0, 255, 0)).save(reference)
    card = draw_scene_card("a forest clearing", 320, 180, seed=2, reference_image=reference)
    background = draw_scene_background("a forest clearing", 320, 180, seed=2).convert("RGBA")
    overlay = draw_scene_overlay("a forest clearing", 320, 180, reference_image=reference)
    assert overlay.mode == "RGBA" and overlay.getpixel((160, 120))[3] == 0  # type: ignore[index]
    assert same(card, Image.alpha_composite(background, overlay))
    r, g, b = card.getpixel((320 - 30, 180 - 30))  # type: ignore[misc]
    assert g > 200 and r < 60 and b < 60  # the reference sits in the lower-right corner


def test_unreadable_reference_image_is_bad_input(tmp_path: Path) -> None:
    bogus = tmp_path / "ref.png"
    bogus.write_bytes(b"not an image")
    with pytest.raises(BadInput, match=r"ref\.png"):
        draw_scene_card("x", 64, 64, seed=None, reference_image=bogus)


@pytest.mark.parametrize("size", [(0, 10), (10, 10), (9000, 100)])
def test_out_of_range_sizes_are_bad_input(size: tuple[int, int]) -> None:
    with pytest.raises(BadInput):
        draw_character("x", *size, seed=None, variant=0)


@pytest.mark.parametrize(
    ("fmt", "ext", "pil_format"),
    [("png", "png", "PNG"), ("jpg", "jpg", "JPEG"), ("JPEG", "jpg", "JPEG"), (".webp", "webp", "WEBP")],
)
def test_encode_image_formats(fmt: str, ext: str, pil_format: str) -> None:
    image = draw_character("x", 64, 64, seed=1, variant=0).convert("RGBA")
    data, extension = encode_image(image, fmt)
    assert extension == ext
    with Image.open(io.BytesIO(data)) as decoded:
        assert decoded.format == pil_format and decoded.size == (64, 64)


@pytest.mark.parametrize("fmt", ["gif", "bmp", "", "png2"])
def test_encode_image_rejects_other_formats(fmt: str) -> None:
    with pytest.raises(BadInput) as err:
        encode_image(Image.new("RGB", (8, 8)), fmt)
    assert err.value.alternatives == ["jpeg", "jpg", "png", "webp"]
