"""Pillow drawings for the offline provider: character portraits and video scene cards.

The offline provider has to return *pictures*, not placeholders, so a demo
or a test run looks like the real thing: a stylised portrait whose colours
and accessories follow the description, and a landscape/skyline card per
scene.  Everything is deterministic for the same text, size, seed and
variant (randomness comes from a SHA-256 of those), so re-running a job
gives byte-identical images and tests can compare them.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import math
import random
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont, ImageOps, UnidentifiedImageError

from mvcore.errors import BadInput

RGB = tuple[int, int, int]
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont

_COLOR_WORDS: dict[str, RGB] = {
    "red": (214, 48, 49),
    "crimson": (180, 20, 60),
    "orange": (240, 140, 40),
    "yellow": (245, 205, 50),
    "gold": (212, 175, 55),
    "golden": (212, 175, 55),
    "green": (46, 160, 90),
    "teal": (0, 128, 128),
    "cyan": (40, 200, 220),
    "blue": (45, 100, 210),
    "navy": (25, 40, 100),
    "purple": (130, 60, 180),
    "violet": (140, 90, 220),
    "pink": (240, 120, 170),
    "magenta": (210, 40, 160),
    "brown": (120, 75, 40),
    "black": (30, 30, 35),
    "white": (235, 235, 240),
    "silver": (190, 195, 205),
    "grey": (128, 128, 135),
    "gray": (128, 128, 135),
    "neon": (60, 255, 180),
    "pastel": (250, 200, 220),
}
_GARMENTS = {
    "jacket",
    "coat",
    "shirt",
    "t-shirt",
    "dress",
    "hoodie",
    "suit",
    "sweater",
    "top",
    "jumpsuit",
    "outfit",
    "uniform",
    "blouse",
    "vest",
    "gown",
    "robe",
    "cardigan",
    "kimono",
}
_SKIN = [(255, 224, 196), (241, 194, 155), (224, 172, 125), (198, 134, 90), (141, 85, 54), (98, 60, 40)]
_HAIR = [(40, 30, 25), (90, 55, 30), (200, 160, 90), (170, 60, 30), (30, 30, 30), (220, 220, 225)]
_NIGHT = ("night", "neon", "moon", "dark", "midnight", "star", "arcade", "dusk")
_CITY = ("city", "street", "rooftop", "neon", "arcade", "market", "platform", "train", "urban", "downtown")
_FORMATS = {"png": ("PNG", "png"), "jpg": ("JPEG", "jpg"), "jpeg": ("JPEG", "jpg"), "webp": ("WEBP", "webp")}


def _rng(*parts: object) -> random.Random:
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode("utf-8")).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _palette(text: str, rng: random.Random, count: int) -> list[RGB]:
    """Colours named in the text first (so "a girl in a red coat" is red), then random hues."""
    words = [w.strip(".,;:!?()\"'").lower() for w in text.split()]
    named = [_COLOR_WORDS[w] for w in words if w in _COLOR_WORDS]
    colours = list(dict.fromkeys(named))
    while len(colours) < count:
        hue = rng.random()
        colours.append(_hsv(hue, 0.45 + 0.4 * rng.random(), 0.55 + 0.4 * rng.random()))
    return colours[:count]


def _hsv(h: float, s: float, v: float) -> RGB:
    i = int(h * 6) % 6
    f = h * 6 - int(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    r, g, b = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]
    return int(r * 255), int(g * 255), int(b * 255)


def _mix(a: RGB, b: RGB, k: float) -> RGB:
    return (int(a[0] + (b[0] - a[0]) * k), int(a[1] + (b[1] - a[1]) * k), int(a[2] + (b[2] - a[2]) * k))


def _vertical_gradient(width: int, height: int, top: RGB, bottom: RGB) -> Image.Image:
    mask = Image.linear_gradient("L").resize((width, height), Image.Resampling.BILINEAR)
    return Image.composite(
        Image.new("RGB", (width, height), bottom), Image.new("RGB", (width, height), top), mask
    )


def _glow(base: Image.Image, centre: tuple[int, int], radius: int, colour: RGB, strength: float) -> None:
    """Soft radial light pasted in place -- cheap depth without per-pixel Python loops."""
    size = max(2, radius * 2)
    # radial_gradient is 0 at the centre and 181 on the inscribed circle (255 only in the corners).
    falloff = Image.radial_gradient("L").point(lambda v: int(255 * strength * max(0.0, 1 - v / 181) ** 2))
    mask = falloff.resize((size, size), Image.Resampling.BILINEAR)
    base.paste(Image.new("RGB", (size, size), colour), (centre[0] - radius, centre[1] - radius), mask)


def _font(size: int) -> Font:
    return ImageFont.load_default(size=max(8, size))


def _wrap(draw: ImageDraw.ImageDraw, text: str, font: Font, max_width: float, max_lines: int) -> list[str]:
    lines: list[str] = []
    current = ""
    words = text.split()
    for word in words:
        trial = f"{current} {word}".strip()
        if draw.textlength(trial, font=font) <= max_width or not current:
            current = trial
            continue
        lines.append(current)
        current = word
        if len(lines) == max_lines:
            last = lines[-1]
            while last and draw.textlength(last + "…", font=font) > max_width:
                last = last[:-1]
            lines[-1] = last.rstrip() + "…"
            return lines
    if current:
        lines.append(current)
    return lines[:max_lines]


def _caption(img: Image.Image, text: str, *, top: bool, max_lines: int) -> None:
    """Wrapped text on a translucent band, so the description is readable over any colours."""
    width, height = img.size
    unit = min(width, height)
    font = _font(unit // 18)
    draw = ImageDraw.Draw(img)
    pad = max(4, unit // 40)
    lines = _wrap(draw, " ".join(text.split()) or "untitled", font, width - 4 * pad, max_lines)
    line_h = int(font.size * 1.25) if isinstance(font, ImageFont.FreeTypeFont) else 12
    band_h = line_h * len(lines) + 2 * pad
    y0 = pad if top else height - band_h - pad
    band = Image.new("RGBA", img.size, (0, 0, 0, 0))
    band_draw = ImageDraw.Draw(band)
    band_draw.rounded_rectangle((pad, y0, width - pad, y0 + band_h), radius=pad, fill=(10, 10, 20, 150))
    for index, line in enumerate(lines):
        band_draw.text((2 * pad, y0 + pad + index * line_h), line, font=font, fill=(245, 245, 250, 255))
    img.paste(Image.alpha_composite(img.convert("RGBA"), band).convert(img.mode))


@dataclass(frozen=True)
class _Figure:
    """Where the portrait's head sits and what it wears: shared by the body, face and accessories."""

    cx: int
    cy: int
    head_r: int
    skin: RGB
    hair: RGB
    clothes: RGB
    accent: RGB
    text: str

    @property
    def eyes(self) -> tuple[int, int, int]:
        """(eye y, eye x offset from the centre, eye radius)."""
        return self.cy + self.head_r // 8, int(self.head_r * 0.4), max(2, self.head_r // 6)


def draw_character(
    description: str, width: int, height: int, *, seed: int | None, variant: int
) -> Image.Image:
    """A stylised portrait: gradient backdrop, head and shoulders, hair, face, keyword accessories."""
    _check_size(width, height)
    rng = _rng("character", description, width, height, seed, variant)
    text = description.lower()
    clothes, accent, bg_top, bg_bottom = _character_palette(description, rng)
    img = _vertical_gradient(
        width, height, _mix(bg_top, (255, 255, 255), 0.25), _mix(bg_bottom, (0, 0, 0), 0.3)
    )
    unit = min(width, height)
    cx = width // 2 + int((rng.random() - 0.5) * unit * 0.12)
    head_r = int(unit * (0.17 + 0.03 * rng.random()))
    cy = int(height * 0.42)
    _glow(img, (cx, cy), int(unit * 0.45), _mix(accent, (255, 255, 255), 0.5), 0.55)
    draw = ImageDraw.Draw(img)
    for _ in range(6 + variant % 5):  # background confetti varies per variant
        x, y, r = rng.randrange(width), rng.randrange(height), rng.randint(unit // 60 + 1, unit // 18 + 2)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=_mix(accent, bg_top, rng.random()))
    skin = _SKIN[rng.randrange(len(_SKIN))]
    hair = _HAIR[rng.randrange(len(_HAIR))]
    for word, colour in _COLOR_WORDS.items():
        if f"{word} hair" in text or f"{word}-haired" in text:
            hair = colour
    long_hair = "long" in text or (variant + rng.randrange(2)) % 2 == 0
    figure = _Figure(cx, cy, head_r, skin, hair, clothes, accent, text)
    _draw_body(draw, figure, height, long_hair=long_hair)
    _draw_face(draw, figure)
    for accessory in _ACCESSORIES:
        accessory(draw, figure)
    _caption(img, description, top=False, max_lines=3)
    return img


def _character_palette(description: str, rng: random.Random) -> tuple[RGB, RGB, RGB, RGB]:
    """(clothes, accent, backdrop top, backdrop bottom): a colour named with a garment wins."""
    clothes, accent, bg_top, bg_bottom = _palette(description, rng, 4)
    words = [w.strip(".,;:!?()\"'").lower() for w in description.split()]
    for word, following in itertools.pairwise(words):
        if word in _COLOR_WORDS and following in _GARMENTS:  # "a blue jacket" wins over other colours
            clothes = _COLOR_WORDS[word]
            break
    if sum(abs(a - b) for a, b in zip(bg_top, clothes, strict=True)) < 150:  # keep the figure visible
        bg_top = _mix(bg_top, (255, 255, 255) if sum(clothes) < 380 else (0, 0, 0), 0.55)
    return clothes, accent, bg_top, bg_bottom


def _draw_body(draw: ImageDraw.ImageDraw, f: _Figure, height: int, *, long_hair: bool) -> None:
    """Shoulders, neck, long hair behind the head, the head itself and the hair on top."""
    cx, cy, head_r = f.cx, f.cy, f.head_r
    shoulders_top = cy + int(head_r * 1.25)
    draw.ellipse(
        (cx - int(head_r * 2.4), shoulders_top, cx + int(head_r * 2.4), height + head_r * 2), fill=f.clothes
    )
    draw.rectangle(
        (cx - head_r // 3, cy + head_r // 2, cx + head_r // 3, shoulders_top + head_r // 4), fill=f.skin
    )
    if long_hair:
        draw.rounded_rectangle(
            (cx - int(head_r * 1.2), cy - int(head_r * 1.1), cx + int(head_r * 1.2), cy + int(head_r * 1.5)),
            radius=head_r,
            fill=f.hair,
        )
    draw.ellipse((cx - head_r, cy - int(head_r * 1.15), cx + head_r, cy + int(head_r * 1.15)), fill=f.skin)
    draw.pieslice(
        (cx - int(head_r * 1.08), cy - int(head_r * 1.3), cx + int(head_r * 1.08), cy + int(head_r * 0.6)),
        180,
        360,
        fill=f.hair,
    )


def _draw_face(draw: ImageDraw.ImageDraw, f: _Figure) -> None:
    eye_y, eye_dx, eye_r = f.eyes
    for side in (-1, 1):
        ex = f.cx + side * eye_dx
        draw.ellipse((ex - eye_r, eye_y - eye_r, ex + eye_r, eye_y + eye_r), fill=(250, 250, 250))
        pr = max(1, eye_r // 2)
        draw.ellipse((ex - pr, eye_y - pr, ex + pr, eye_y + pr), fill=(30, 30, 40))
        draw.line(
            (ex - eye_r, eye_y - eye_r * 2, ex + eye_r, eye_y - int(eye_r * 2.3)),
            fill=f.hair,
            width=max(1, eye_r // 2),
        )
    head_r = f.head_r
    mouth = (f.cx - head_r // 3, f.cy + head_r // 3, f.cx + head_r // 3, f.cy + int(head_r * 0.7))
    draw.arc(mouth, 10, 170, fill=(150, 40, 50), width=max(1, head_r // 12))


def _draw_glasses(draw: ImageDraw.ImageDraw, f: _Figure) -> None:
    if "glasses" not in f.text and "sunglasses" not in f.text:
        return
    eye_y, eye_dx, eye_r = f.eyes
    dark = "sunglasses" in f.text
    for side in (-1, 1):
        ex = f.cx + side * eye_dx
        box = (ex - eye_r * 2, eye_y - eye_r * 2, ex + eye_r * 2, eye_y + eye_r * 2)
        draw.ellipse(box, outline=(20, 20, 20), width=max(1, eye_r // 2), fill=(20, 20, 30) if dark else None)
    draw.line(
        (f.cx - eye_dx + eye_r * 2, eye_y, f.cx + eye_dx - eye_r * 2, eye_y), fill=(20, 20, 20), width=2
    )


def _draw_hat(draw: ImageDraw.ImageDraw, f: _Figure) -> None:
    if "hat" not in f.text and "cap" not in f.text.split():
        return
    cx, cy, head_r = f.cx, f.cy, f.head_r
    brim = (cx - int(head_r * 1.4), cy - int(head_r * 1.05), cx + int(head_r * 1.4), cy - int(head_r * 0.85))
    draw.rectangle(brim, fill=f.accent)
    draw.rectangle(
        (cx - head_r * 0.8, cy - int(head_r * 1.8), cx + head_r * 0.8, cy - int(head_r * 0.95)), fill=f.accent
    )


def _draw_crown(draw: ImageDraw.ImageDraw, f: _Figure) -> None:
    if "crown" not in f.text:
        return
    cx, cy, head_r = f.cx, f.cy, f.head_r
    points = [(cx - head_r * 0.8, cy - head_r * 1.1)]
    for i in range(5):
        points += [
            (cx - head_r * 0.8 + i * head_r * 0.4, cy - head_r * 1.7),
            (cx - head_r * 0.6 + i * head_r * 0.4, cy - head_r * 1.3),
        ]
    points[-1] = (cx + head_r * 0.8, cy - head_r * 1.1)
    draw.polygon(points, fill=(230, 190, 40))


def _draw_headphones(draw: ImageDraw.ImageDraw, f: _Figure) -> None:
    if not any(word in f.text for word in ("headphones", "singer", "microphone")):
        return
    cx, cy, head_r = f.cx, f.cy, f.head_r
    band = (cx - int(head_r * 1.2), cy - int(head_r * 1.4), cx + int(head_r * 1.2), cy + head_r)
    draw.arc(band, 180, 360, fill=f.accent, width=max(2, head_r // 8))
    for side in (-1, 1):
        x = cx + side * int(head_r * 1.1)
        draw.rounded_rectangle(
            (x - head_r // 5, cy - head_r // 4, x + head_r // 5, cy + head_r // 3),
            radius=head_r // 10,
            fill=f.accent,
        )


#: Drawn in this order, each when its keyword is in the description.
_ACCESSORIES = (_draw_glasses, _draw_hat, _draw_crown, _draw_headphones)


def draw_scene_card(
    prompt: str, width: int, height: int, *, seed: int | None, reference_image: Path | None
) -> Image.Image:
    """A landscape or skyline picture for a scene with its caption and the reference image.

    This is :func:`draw_scene_background` with :func:`draw_scene_overlay`
    composited on top; the video renderer uses the two layers separately so
    it can pan the landscape while the caption and reference stay put.
    """
    card = draw_scene_background(prompt, width, height, seed=seed).convert("RGBA")
    return Image.alpha_composite(
        card, draw_scene_overlay(prompt, width, height, reference_image=reference_image)
    ).convert("RGB")


def draw_scene_background(prompt: str, width: int, height: int, *, seed: int | None) -> Image.Image:
    """The landscape alone: night words give a dark sky with stars and a moon, city words a skyline."""
    _check_size(width, height)
    rng = _rng("scene", prompt, seed)
    text = prompt.lower()
    night = any(word in text for word in _NIGHT)
    sky_a, sky_b, land, accent = _palette(prompt, rng, 4)
    if night:
        sky_a, sky_b = _mix(sky_a, (5, 5, 25), 0.8), _mix(sky_b, (40, 20, 70), 0.6)
    else:
        sky_a, sky_b = _mix(sky_a, (120, 180, 255), 0.5), _mix(sky_b, (255, 220, 180), 0.5)
    img = _vertical_gradient(width, height, sky_a, sky_b)
    unit = min(width, height)
    sun = (int(width * (0.2 + 0.6 * rng.random())), int(height * (0.15 + 0.2 * rng.random())))
    _glow(img, sun, int(unit * 0.35), (255, 240, 200) if not night else (200, 210, 255), 0.6)
    draw = ImageDraw.Draw(img)
    radius = int(unit * 0.07)
    draw.ellipse(
        (sun[0] - radius, sun[1] - radius, sun[0] + radius, sun[1] + radius),
        fill=(255, 230, 150) if not night else (235, 235, 250),
    )
    if night:
        for _ in range(60):
            draw.point((rng.randrange(width), rng.randrange(int(height * 0.6))), fill=(255, 255, 255))
    city = any(word in text for word in _CITY)
    for layer in range(3):
        base_y = height * (0.55 + 0.12 * layer)
        colour = _mix(land, (0, 0, 0) if night else (20, 30, 20), 0.2 + 0.25 * layer)
        amp, freq, phase = unit * (0.08 - 0.02 * layer), 1.5 + rng.random() * 2, rng.random() * math.tau
        points = [
            (x, base_y + amp * math.sin(freq * x / width * math.tau + phase)) for x in range(0, width + 8, 8)
        ]
        draw.polygon([(0, height), *points, (width, height)], fill=colour)
        if layer == 0 and city:
            _skyline(draw, rng, width, height, base_y, colour, accent)
    return img


def _skyline(
    draw: ImageDraw.ImageDraw,
    rng: random.Random,
    width: int,
    height: int,
    base_y: float,
    colour: RGB,
    accent: RGB,
) -> None:
    unit = min(width, height)
    x = 0
    while x < width:
        bw, bh = rng.randint(unit // 20 + 2, unit // 8 + 3), rng.randint(unit // 8, unit // 3)
        draw.rectangle((x, base_y - bh, x + bw, height), fill=_mix(colour, (0, 0, 0), 0.3))
        for wy in range(int(base_y - bh + 4), int(height * 0.9), max(6, unit // 30)):
            if rng.random() < 0.35:
                draw.rectangle((x + 3, wy, x + bw - 3, wy + 2), fill=_mix(accent, (255, 240, 150), 0.6))
        x += bw + rng.randint(1, unit // 40 + 2)


def draw_scene_overlay(prompt: str, width: int, height: int, *, reference_image: Path | None) -> Image.Image:
    """Transparent RGBA layer with the wrapped prompt (top) and the framed reference image (lower right)."""
    _check_size(width, height)
    layer = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    if reference_image is not None:
        _paste_reference(layer, Path(reference_image))
    _caption(layer, prompt, top=True, max_lines=3)
    return layer


def _paste_reference(img: Image.Image, path: Path) -> None:
    try:
        with Image.open(path) as ref:
            ref.load()
            thumb = ImageOps.exif_transpose(ref).convert("RGB")
    except (OSError, UnidentifiedImageError, ValueError):
        raise BadInput(
            f"Reference image {path.name} is not a readable image",
            hint="Use a png, jpg or webp image.",
            details={"file": path.name},
        ) from None
    width, height = img.size
    box = max(8, int(min(width, height) * 0.3))
    thumb.thumbnail((box, box), Image.Resampling.LANCZOS)
    border = max(2, box // 40)
    framed = ImageOps.expand(thumb, border=border, fill=(250, 250, 250))
    margin = max(4, min(width, height) // 30)
    img.paste(framed.convert(img.mode), (width - framed.width - margin, height - framed.height - margin))


def _check_size(width: int, height: int) -> None:
    if not (16 <= width <= 8192 and 16 <= height <= 8192):
        raise BadInput(f"Image size {width}x{height} is out of range (16..8192 per side)")


def encode_image(img: Image.Image, output_format: str) -> tuple[bytes, str]:
    """Encode to png/jpg/jpeg/webp; returns the bytes and the canonical extension ("jpeg" -> "jpg")."""
    key = str(output_format).strip().lower().lstrip(".")
    if key not in _FORMATS:
        raise BadInput(f"Unsupported image format {output_format!r}", alternatives=sorted(_FORMATS))
    pil_format, ext = _FORMATS[key]
    buffer = io.BytesIO()
    image = img.convert("RGB") if pil_format == "JPEG" and img.mode != "RGB" else img
    options: dict[str, object] = {"quality": 92} if pil_format in ("JPEG", "WEBP") else {"optimize": False}
    image.save(buffer, format=pil_format, **options)
    return buffer.getvalue(), ext
