"""The whole quick-gen flow in the browser: flavor → scenes → clips → lipsync → auto re-stitch → final."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager

from playwright.sync_api import expect

CLIP_SECONDS = 6  # flavors/example/image_params.yaml: video_duration
JOB_TIMEOUT = 120_000
FINAL_READY = "() => (document.querySelector('[data-testid=final-video]') || {}).readyState >= 2"


class _Held:
    def __init__(self, page) -> None:
        self.page = page
        self.route = None

    def body(self) -> dict:
        deadline = time.monotonic() + 15
        while self.route is None:
            assert time.monotonic() < deadline, "the request was not sent"
            self.page.wait_for_timeout(20)
        return json.loads(self.route.request.post_data or "{}")


@contextmanager
def held_request(page, path: str) -> Iterator[_Held]:
    """Hold the first POST to ``path`` until the block ends, so the page's busy state can be checked."""
    held = _Held(page)

    def hold(route) -> None:
        if route.request.method == "POST" and held.route is None:
            held.route = route  # answered when the block ends
        else:
            route.continue_()

    pattern = f"**{path}*"
    page.route(pattern, hold)
    try:
        yield held
    finally:
        if held.route is not None:
            held.route.continue_()
        page.unroute(pattern, hold)


def _duration(locator) -> float:
    locator.evaluate(
        "(v) => v.readyState >= 1 ? null : new Promise((ok, bad) => {"
        " v.addEventListener('loadedmetadata', ok, {once: true});"
        " v.addEventListener('error', () => bad(new Error('video failed to load')), {once: true}); })"
    )
    return float(locator.evaluate("(v) => v.duration"))


def test_quick_gen_whole_flow(page, guard, server, song, screenshots):
    # ---- create page: description, character, song, 2 scenes, flavor 'example'
    page.goto(server.url("/create"))
    page.get_by_test_id("idea").fill("A robot learns to dance on a rooftop at night")
    page.get_by_test_id("character-description").fill("a small silver robot with round blue eyes")
    page.get_by_test_id("number-of-scenes").fill("2")
    page.get_by_test_id("generate-refs").click()
    refs = page.get_by_test_id("ref-image")
    expect(refs).to_have_count(4, timeout=JOB_TIMEOUT)
    reference_id = refs.nth(0).get_attribute("data-image-id")
    refs.nth(0).click()
    page.get_by_test_id("config-toggle").click()
    select = page.get_by_test_id("config-flavor-select")
    expect(select).to_be_enabled()
    select.select_option("example")
    expect(page.get_by_test_id("preview-video_duration")).to_contain_text(str(CLIP_SECONDS))
    page.get_by_test_id("audio-file").set_input_files(song)
    expect(page.get_by_test_id("audio-title")).to_have_text("sine-song", timeout=30_000)
    expect(page.get_by_test_id("audio-duration")).to_have_text("20 s")
    page.get_by_test_id("continue").click()
    page.wait_for_url("**/quick-gen")

    # ---- quick-gen: Input Data shows what will be sent
    expect(page.get_by_test_id("input-config-flavor")).to_have_text("example")
    expect(page.get_by_test_id("config-summary")).to_have_text("Flavor: example")
    expect(page.get_by_test_id("input-audio")).to_contain_text("sine-song")
    expect(page.get_by_test_id("input-number-of-scenes")).to_have_text("2")
    expect(page.get_by_test_id("input-reference-image")).to_be_visible()

    with page.expect_request(lambda r: "/api/mv/create_scenes" in r.url) as request_info:
        page.get_by_test_id("generate-scenes").click()
    body = json.loads(request_info.value.post_data or "{}")
    assert body["config_flavor"] == "example" and body["number_of_scenes"] == 2
    cards = page.get_by_test_id("scene-card")
    expect(cards).to_have_count(2, timeout=JOB_TIMEOUT)
    expect(page.get_by_test_id("scenes-status")).to_contain_text("flavor example")
    for index in range(2):
        card = cards.nth(index)
        expect(card.get_by_test_id("scene-description")).not_to_have_value("")
        expect(card.get_by_test_id("scene-negative")).not_to_have_value("")
        expect(card.get_by_test_id("scene-lipsync-checkbox")).to_be_disabled()  # no clip yet
        expect(card.get_by_test_id("scene-lipsync")).to_have_attribute("title", re.compile("clip first"))

    # ---- a clip per scene (both jobs run at once)
    first, second = cards.nth(0), cards.nth(1)
    with held_request(page, "/api/mv/generate_video") as held:
        first.get_by_test_id("scene-video-button").click()
        body = held.body()
        expect(first.get_by_test_id("scene-video-button")).to_be_disabled()  # while its job runs
        expect(first.get_by_test_id("scene-video-button")).to_have_text("Generating…")
        expect(second.get_by_test_id("scene-video-button")).to_be_enabled()
        expect(page.get_by_test_id("generate-scenes")).to_be_disabled()
    assert body["config_flavor"] == "example" and body["prompt"] and body["negative_prompt"]
    assert body["character_reference_id"] == reference_id
    second.get_by_test_id("scene-video-button").click()
    for card in (first, second):
        expect(card.get_by_test_id("scene-video")).to_have_count(1, timeout=JOB_TIMEOUT)
        expect(card.get_by_test_id("scene-video-button")).to_have_text("Regenerate")
        expect(card.get_by_test_id("scene-video-button")).to_be_enabled()
    clip_ids = [c.get_by_test_id("scene-video").get_attribute("data-video-id") for c in (first, second)]

    # ---- lipsync the second clip: song range defaults to where the clip sits in the timeline
    checkbox = second.get_by_test_id("scene-lipsync-checkbox")
    expect(checkbox).to_be_enabled()
    checkbox.check()
    button = second.get_by_test_id("scene-video-button")
    expect(button).to_have_text("Regenerate with lipsync")
    expect(first.get_by_test_id("scene-video-button")).to_have_text("Regenerate")
    expect(second.get_by_test_id("scene-start")).to_have_value(str(CLIP_SECONDS))
    expect(second.get_by_test_id("scene-end")).to_have_value(str(2 * CLIP_SECONDS))
    with held_request(page, "/api/mv/lipsync") as held:
        button.click()
        body = held.body()
        expect(checkbox).to_be_disabled()  # while the lipsync job runs
        expect(button).to_be_disabled()
        expect(button).to_have_text("Lipsyncing…")
    assert body["video_id"] == clip_ids[1]
    assert body["audio_id"] and body["config_flavor"] == "example"
    assert (body["start_time"], body["end_time"]) == (CLIP_SECONDS, 2 * CLIP_SECONDS)

    # ---- lipsync done → the clip is replaced and the final video re-stitched automatically
    expect(second.get_by_test_id("scene-badge")).to_have_text("lipsynced", timeout=JOB_TIMEOUT)
    lipsynced_id = second.get_by_test_id("scene-video").get_attribute("data-video-id")
    assert lipsynced_id and lipsynced_id != clip_ids[1]
    expect(second.get_by_test_id("scene-history")).to_contain_text("v2 (lipsync)")
    final = page.get_by_test_id("final-video")
    expect(final).to_have_count(1, timeout=JOB_TIMEOUT)
    expect(page.get_by_test_id("stitch-status")).to_contain_text("Stitched 2 clip(s)")
    page.wait_for_function(FINAL_READY, timeout=30_000)
    clip_durations = [_duration(c.get_by_test_id("scene-video")) for c in (first, second)]
    expected = sum(clip_durations)
    assert abs(expected - 2 * CLIP_SECONDS) < 0.2, clip_durations
    final_duration = float(final.evaluate("(v) => v.duration"))
    assert abs(final_duration - expected) <= 0.2, (final_duration, clip_durations)
    assert final.evaluate("(v) => v.readyState") >= 2
    download = page.get_by_test_id("final-download")
    expect(download).to_be_visible()
    assert final.get_attribute("data-video-id") in (download.get_attribute("href") or "")

    # ---- manual re-stitch with the song as soundtrack
    first_final = final.get_attribute("data-video-id")
    page.get_by_test_id("use-song-soundtrack").check()
    with page.expect_request(lambda r: "/api/mv/stitch-videos" in r.url) as request_info:
        page.get_by_test_id("restitch").click()
    body = json.loads(request_info.value.post_data or "{}")
    assert body["video_ids"] == [clip_ids[0], lipsynced_id]
    assert body["audio_overlay_id"] and body["suppress_video_audio"] is True
    expect(final).not_to_have_attribute("data-video-id", first_final or "", timeout=JOB_TIMEOUT)
    expect(page.get_by_test_id("final-meta")).to_contain_text("song as soundtrack")
    page.wait_for_function(FINAL_READY, timeout=30_000)
    guard.assert_clean()

    # The offline clips fade in from black: play each (muted) for a moment so the screenshot shows a frame
    # from inside the clip.  (Playing, not seeking: the media GETs do not answer Range requests yet.)
    page.evaluate(
        "() => Promise.all([...document.querySelectorAll('video')].map(async (v) => {"
        " v.muted = true; await v.play();"
        " await new Promise((ok) => {"
        "   const tick = () => (v.currentTime >= 2.5 ? ok() : setTimeout(tick, 50)); tick(); });"
        " v.pause(); }))"
    )
    shot = screenshots / "quick-gen.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000

    # ---- a reload keeps the scenes, the clip history and the final video (sessionStorage)
    final_id = final.get_attribute("data-video-id")
    assert final_id and final_id != first_final
    page.reload()
    expect(cards).to_have_count(2)
    expect(second.get_by_test_id("scene-badge")).to_have_text("lipsynced")
    expect(second.get_by_test_id("scene-video")).to_have_attribute("data-video-id", lipsynced_id)
    expect(final).to_have_attribute("data-video-id", final_id)
    page.wait_for_function(FINAL_READY, timeout=30_000)
    guard.assert_clean()
