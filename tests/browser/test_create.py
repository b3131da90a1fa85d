"""Create page: character reference images are generated, shown and picked; the hand-over to quick-gen."""

from __future__ import annotations

import json

from playwright.sync_api import expect


def test_create_generates_character_references_and_picks_one(page, guard, server):
    page.goto(server.url("/create"))
    page.get_by_test_id("character-description").fill("a small silver robot with round blue eyes")
    button = page.get_by_test_id("generate-refs")
    with page.expect_request(lambda r: "/api/mv/generate_character_reference" in r.url) as request_info:
        button.click()
    request = request_info.value
    assert "async=true" in request.url
    assert json.loads(request.post_data or "{}")["config_flavor"] == "default"
    expect(button).to_be_disabled()  # while its job runs
    images = page.get_by_test_id("ref-image")
    expect(images).to_have_count(4, timeout=60_000)
    expect(button).to_be_enabled()
    # Every image really loaded from /api/mv/get_character_reference/{id}.
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=ref-image] img')]"
        ".every((img) => img.complete && img.naturalWidth > 0)"
    )
    src = images.nth(0).locator("img").get_attribute("src") or ""
    assert src.startswith("/api/mv/get_character_reference/")
    second = images.nth(1)
    picked = second.get_attribute("data-image-id")
    second.click()
    expect(second).to_have_attribute("aria-pressed", "true")
    expect(images.nth(0)).to_have_attribute("aria-pressed", "false")
    expect(page.get_by_test_id("ref-selected")).to_contain_text("image 2")

    page.get_by_test_id("idea").fill("A robot learns to dance on a rooftop")
    page.get_by_test_id("video-type").fill("music video")
    page.get_by_test_id("continue").click()
    page.wait_for_url("**/quick-gen")
    data = page.evaluate("() => JSON.parse(sessionStorage.getItem('quickJobData'))")
    assert data["characterReferenceImageId"] == picked
    assert data["videoDescription"] == "A robot learns to dance on a rooftop"
    assert data["characterDescription"] == "a small silver robot with round blue eyes"
    assert data["configFlavor"] == "default"
    assert data["videoType"] == "music video"
    assert data["numberOfScenes"] is None
    assert set(data) >= {"audioId", "audioUrl", "audioTitle", "audioDuration"}
    # Quick-gen shows the picked image in its Input Data panel.
    image = page.get_by_test_id("input-reference-image")
    expect(image).to_be_visible()
    assert picked in (image.get_attribute("src") or "")
    expect(page.get_by_test_id("input-video-type")).to_have_text("music video")
    guard.assert_clean()


def test_continue_needs_description_and_character(page, guard, server):
    page.goto(server.url("/create"))
    page.get_by_test_id("continue").click()
    error = page.get_by_test_id("continue-error")
    expect(error).to_contain_text("video description")
    expect(error).to_contain_text("character description")
    assert page.url.endswith("/create")
    guard.assert_clean()
