"""Every page loads offline with no console errors; header, API key and the shared Configuration section."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import expect

PAGES = {
    "/": "link-create",
    "/create": "continue",
    "/quick-gen": "generate-scenes",
    "/flavors": "flavor-table",
}


@pytest.mark.parametrize("path", list(PAGES))
def test_page_loads_with_no_errors_and_no_outside_requests(page, guard, server, path):
    page.goto(server.url(path))
    expect(page.get_by_test_id(PAGES[path])).to_be_visible()
    nav = page.get_by_test_id("nav")
    for label in ("Create", "Quick-gen", "Flavors"):
        expect(nav.get_by_role("link", name=label)).to_be_visible()
    expect(page.get_by_test_id("api-key")).to_be_visible()
    if path in ("/create", "/quick-gen"):
        expect(page.get_by_test_id("config-flavor-select")).to_be_enabled()
    if path == "/flavors":
        expect(page.get_by_test_id("live-badge")).to_have_attribute("data-state", "live")
        expect(page.get_by_test_id("flavor-row")).not_to_have_count(0)
    if path == "/":
        expect(page.get_by_test_id("health")).to_contain_text("provider offline")
    page.wait_for_load_state("networkidle")
    guard.assert_clean()


def test_outside_requests_are_blocked_and_reported(page, guard, server):
    """The guard itself works: a request to another host is blocked and recorded."""
    page.goto(server.url("/"))
    page.evaluate("() => fetch('https://example.com/x').catch(() => null)")
    assert guard.blocked == ["https://example.com/x"]
    guard.blocked.clear()
    guard.console_errors.clear()  # chromium logs the blocked fetch


def test_api_key_is_stored_and_sent(page, guard, server):
    page.goto(server.url("/create"))
    expect(page.get_by_test_id("api-key-state")).to_have_text("no key")
    key_field = page.get_by_test_id("api-key")
    key_field.fill("secret-key-1")
    key_field.press("Enter")
    expect(page.get_by_test_id("api-key-state")).to_have_text("key set")
    assert page.evaluate("() => localStorage.getItem('mvcoreApiKey')") == "secret-key-1"
    with page.expect_request("**/api/mv/get_config_flavors") as request_info:
        page.reload()
    assert request_info.value.headers.get("x-api-key") == "secret-key-1"
    media = page.evaluate("async () => (await import('/static/api.js')).mediaUrl('/api/mv/get_video/x')")
    assert media == "/api/mv/get_video/x?api_key=secret-key-1"
    page.evaluate("() => localStorage.removeItem('mvcoreApiKey')")
    page.reload()
    media = page.evaluate("async () => (await import('/static/api.js')).mediaUrl('/api/mv/get_video/x')")
    assert media == "/api/mv/get_video/x"
    guard.assert_clean()


def test_configuration_section_is_collapsed_and_lists_flavors(page, guard, server):
    page.goto(server.url("/create"))
    toggle = page.get_by_test_id("config-toggle")
    expect(toggle).to_contain_text("Configuration")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    expect(page.get_by_test_id("config-body")).to_be_hidden()
    select = page.get_by_test_id("config-flavor-select")
    expect(select).to_be_enabled()
    assert select.input_value() == "default"
    options = select.locator("option").all_inner_texts()
    assert options[0] == "default" and "example" in options
    toggle.click()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(page.get_by_test_id("config-body")).to_be_visible()
    expect(page.get_by_text("Config Flavor", exact=True)).to_be_visible()
    expect(page.get_by_test_id("preview-number_of_scenes")).to_contain_text("4")
    select.select_option("example")
    expect(page.get_by_test_id("preview-number_of_scenes")).to_contain_text("6")
    expect(page.get_by_test_id("preview-camera_angle")).to_contain_text("wide")
    expect(page.get_by_test_id("config-summary")).to_have_text("Flavor: example")
    guard.assert_clean()


def test_flavor_list_failure_falls_back_to_default_with_a_message(page, guard, server):
    page.route(
        "**/api/mv/get_config_flavors",
        lambda route: route.fulfill(
            status=503,
            content_type="application/json",
            body=json.dumps(
                {
                    "detail": {
                        "error": "UNAVAILABLE",
                        "message": "Flavor store is down",
                        "details": {"hint": "Try again later."},
                    }
                }
            ),
        ),
    )
    guard.allow("status of 503")
    page.goto(server.url("/create"))
    error = page.get_by_test_id("config-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("Flavor store is down")
    expect(error).to_contain_text("using 'default'")
    select = page.get_by_test_id("config-flavor-select")
    expect(select).to_be_enabled()
    assert select.locator("option").all_inner_texts() == ["default"]
    guard.assert_clean()


def _start_quick_gen(page, server, **overrides):
    data = {
        "videoDescription": "A robot learns to dance",
        "characterDescription": "a small silver robot",
        "characterReferenceImageId": "",
        "audioId": "",
        "audioUrl": "",
        "audioTitle": "",
        "audioDuration": None,
        "configFlavor": "default",
        "numberOfScenes": 1,
        "videoType": "",
    }
    data.update(overrides)
    page.goto(server.url("/quick-gen"))
    page.evaluate(
        "(d) => { sessionStorage.clear(); sessionStorage.setItem('quickJobData', JSON.stringify(d)); }", data
    )
    page.reload()
    return data


def test_quick_gen_unknown_flavor_from_session_falls_back_to_default(page, guard, server):
    _start_quick_gen(page, server, configFlavor="no_such_flavor")
    note = page.get_by_test_id("config-note")
    expect(note).to_be_visible()
    expect(note).to_contain_text("no_such_flavor")
    expect(note).to_contain_text("'default'")
    assert page.get_by_test_id("config-flavor-select").input_value() == "default"
    expect(page.get_by_test_id("input-config-flavor")).to_have_text("default")
    guard.assert_clean()


def test_quick_gen_without_create_data_explains_what_to_do(page, guard, server):
    page.goto(server.url("/quick-gen"))
    page.evaluate("() => sessionStorage.clear()")
    page.reload()
    expect(page.get_by_test_id("input-data-missing")).to_be_visible()
    expect(page.get_by_test_id("generate-scenes")).to_be_disabled()
    guard.assert_clean()


def test_lipsync_checkbox_is_disabled_with_a_reason_when_there_is_no_song(page, guard, server):
    _start_quick_gen(page, server, numberOfScenes=1)
    expect(page.get_by_test_id("input-audio")).to_contain_text("none")
    page.get_by_test_id("generate-scenes").click()
    card = page.get_by_test_id("scene-card")
    expect(card).to_have_count(1)
    expect(card.get_by_test_id("scene-video-button")).to_have_text("Generate video")
    expect(card.get_by_test_id("scene-video-button")).to_be_enabled()
    expect(card.get_by_test_id("scene-lipsync-checkbox")).to_be_disabled()
    expect(card.get_by_test_id("scene-lipsync")).to_have_attribute("title", re.compile("No song"))
    expect(page.get_by_test_id("use-song-soundtrack")).to_be_disabled()
    expect(page.get_by_test_id("restitch")).to_be_disabled()
    guard.assert_clean()


def test_api_errors_are_readable_next_to_the_control(page, guard, server):
    guard.allow("status of 400")  # chromium logs the failed fetch; the page must explain it
    page.goto(server.url("/create"))
    page.get_by_test_id("audio-url").fill("http://127.0.0.1:9/song.mp3")
    page.get_by_test_id("audio-download").click()
    error = page.get_by_test_id("audio-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("YouTube only")  # the fetch policy refuses a local URL, and says why
    expect(error).to_contain_text("127.0.0.1")
    assert "[object" not in error.inner_text()
    expect(page.get_by_test_id("audio-download")).to_be_enabled()
    guard.assert_clean()
