"""Flavor authoring in the browser: the editor (validate as you type, refused invalid save,
save, history, restore), the broken-flavor notice on Create and Quick-gen, the flavor list
reloading after an API key is entered, and the Quick-gen fixes (ask before regenerating
scenes and keep the previous set, Generate all clips, posters, form errors that follow)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from .conftest import LiveServer, live_server

JOB_TIMEOUT = 120_000


@pytest.fixture(scope="module")
def editing_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(
        tmp_path_factory.mktemp("editing-server"), flavor_editing=True, flavor_history=5
    ) as live:
        yield live


def test_the_editor_validates_as_you_type_refuses_invalid_saves_and_restores_history(
    page: Any, guard: Any, editing_server: LiveServer
) -> None:
    params = editing_server.flavors_dir / "example" / "parameters.yaml"
    original = params.read_bytes()
    page.goto(editing_server.url("/flavors#example"))
    editor = page.get_by_test_id("editor")
    expect(editor.get_by_test_id("editor-title")).to_have_text("Edit: example")
    editor.get_by_test_id("editor-file").select_option("parameters.yaml")
    text = editor.get_by_test_id("editor-text")
    expect(text).to_have_value(original.decode())
    state = editor.get_by_test_id("editor-state")

    # invalid: errors with file:line, Save disabled, nothing written
    text.fill("camera_angle: upside down\nnumber_of_scenes: lots\n")
    expect(state).to_have_attribute("data-state", "invalid")
    expect(editor.get_by_test_id("editor-error").first).to_contain_text(
        "flavors/example/parameters.yaml:2: number_of_scenes"
    )
    expect(editor.get_by_test_id("editor-save")).to_be_disabled()
    assert params.read_bytes() == original

    # valid: the preview renders the draft; saving makes it live
    text.fill("camera_angle: upside down\n")
    expect(state).to_have_attribute("data-state", "valid")
    prompt = editor.locator('[data-testid="editor-preview-item"][data-generator="create_scenes"]')
    expect(prompt.get_by_test_id("editor-preview-prompt")).to_contain_text("upside down")
    assert params.read_bytes() == original  # a preview writes nothing
    generation = editing_server.generation
    editor.get_by_test_id("editor-save").click()
    expect(state).to_have_attribute("data-state", "saved")
    assert params.read_text() == "camera_angle: upside down\n"
    assert editing_server.wait_generation_above(generation - 1) >= generation + 1
    row = page.locator('[data-testid="value-row"][data-type="parameters"][data-key="camera_angle"]')
    expect(row.get_by_test_id("value")).to_have_text("upside down")  # the page followed the reload

    # history: the previous version is listed and can be restored
    items = editor.get_by_test_id("editor-history-item")
    expect(items).to_have_count(1)
    items.first.get_by_test_id("editor-restore").click()
    expect(text).to_have_value(original.decode())
    assert params.read_bytes() == original
    expect(items).to_have_count(2)
    guard.assert_clean()


def test_the_editor_says_it_is_off_by_default(page: Any, guard: Any, server: LiveServer) -> None:
    page.goto(server.url("/flavors#example"))
    expect(page.get_by_test_id("editor-off")).to_contain_text("MVCORE_FLAVOR_EDITING=true")
    expect(page.get_by_test_id("editor-body")).to_be_hidden()
    guard.assert_clean()


def _break(server: LiveServer, path: Path, text: str) -> None:
    generation = server.generation
    path.write_text(text)
    server.wait_generation_above(generation)


@pytest.mark.parametrize("page_path", ["/create", "/quick-gen"])
def test_create_and_quick_gen_say_when_the_selected_flavor_is_broken(
    page: Any, guard: Any, server: LiveServer, page_path: str
) -> None:
    params = server.flavors_dir / "example" / "parameters.yaml"
    original = params.read_text()
    _break(server, params, original + "number_of_scenes: many\n")
    try:
        page.goto(server.url(page_path))
        page.get_by_test_id("config-toggle").click()
        select = page.get_by_test_id("config-flavor-select")
        expect(select).to_be_enabled()
        select.select_option("example")
        notice = page.get_by_test_id("config-broken")
        expect(notice).to_be_visible()
        expect(notice.get_by_test_id("config-broken-status")).to_have_text(
            "Flavor 'example' is broken (error)"
        )
        expect(notice).to_contain_text("last valid version")
        expect(notice.get_by_test_id("config-broken-error")).to_contain_text(
            "flavors/example/parameters.yaml:"
        )
        expect(notice.get_by_test_id("config-broken-link")).to_have_attribute("href", "/flavors#example")
        select.select_option("default")
        expect(notice).to_be_hidden()
        # fixed on disk: coming back to the tab clears the notice
        select.select_option("example")
        _break(server, params, original)
        page.evaluate("() => window.dispatchEvent(new Event('focus'))")
        expect(notice).to_be_hidden()
    finally:
        if params.read_text() != original:
            _break(server, params, original)
    guard.assert_clean()


def test_a_flavor_that_never_loaded_is_explained_instead_of_silently_replaced(
    page: Any, guard: Any, server: LiveServer
) -> None:
    broken = server.flavors_dir / "half_done"
    broken.mkdir()
    try:
        _break(server, broken / "parameters.yaml", "camera_angle: [\n")
        page.goto(server.url("/"))
        data = {"videoDescription": "x", "characterDescription": "y", "configFlavor": "half_done"}
        page.evaluate("(d) => sessionStorage.setItem('quickJobData', JSON.stringify(d))", data)
        page.goto(server.url("/quick-gen"))
        expect(page.get_by_test_id("config-note")).to_contain_text("it is broken")
        notice = page.get_by_test_id("config-broken")
        expect(notice.get_by_test_id("config-broken-status")).to_have_text(
            "Flavor 'half_done' is broken (invalid)"
        )
        expect(notice).to_contain_text("requests for it get 'default'")
    finally:
        generation = server.generation
        for child in broken.iterdir():
            child.unlink()
        broken.rmdir()
        server.wait_generation_above(generation)
    guard.assert_clean()


def test_after_entering_the_api_key_the_flavor_list_loads_without_a_page_reload(
    page: Any, guard: Any, keyed_server: LiveServer, api_key: str
) -> None:
    guard.allow("status of 401")
    page.goto(keyed_server.url("/create"))
    expect(page.get_by_test_id("config-error")).to_contain_text("Could not load the flavor list")
    page.evaluate("() => { window.__sameDocument = true; }")
    key_field = page.get_by_test_id("api-key")
    key_field.fill(api_key)
    key_field.press("Enter")
    expect(page.get_by_test_id("config-error")).to_be_hidden()
    page.get_by_test_id("config-toggle").click()
    expect(page.get_by_test_id("config-flavor-select").locator("option[value=example]")).to_have_count(1)
    assert page.evaluate("() => window.__sameDocument") is True  # no reload happened
    guard.assert_clean()


def test_the_missing_fields_error_goes_away_once_they_are_filled(
    page: Any, guard: Any, server: LiveServer
) -> None:
    page.goto(server.url("/create"))
    page.get_by_test_id("idea").fill("")
    page.get_by_test_id("character-description").fill("")
    page.get_by_test_id("continue").click()
    error = page.get_by_test_id("continue-error")
    expect(error).to_have_text("Add a video description and a character description first.")
    page.get_by_test_id("idea").fill("a heist")
    expect(error).to_have_text("Add a character description first.")
    page.get_by_test_id("character-description").fill("a raccoon")
    expect(error).to_be_hidden()
    guard.assert_clean()


def test_quick_gen_generates_all_clips_shows_posters_and_asks_before_regenerating_scenes(
    page: Any, guard: Any, server: LiveServer
) -> None:
    page.goto(server.url("/"))
    data = {"videoDescription": "a robot dances", "characterDescription": "a silver robot"}
    data |= {"numberOfScenes": 2, "configFlavor": "default"}
    page.evaluate(
        "(d) => { sessionStorage.clear(); sessionStorage.setItem('quickJobData', JSON.stringify(d)); }", data
    )
    page.goto(server.url("/quick-gen"))
    page.get_by_test_id("generate-scenes").click()
    cards = page.get_by_test_id("scene-card")
    expect(cards).to_have_count(2, timeout=JOB_TIMEOUT)
    all_clips = page.get_by_test_id("generate-all-clips")
    expect(all_clips).to_have_text("Generate all clips (2)")
    with page.expect_request(lambda r: "/api/mv/generate_video" in r.url):
        all_clips.click()
    videos = page.get_by_test_id("scene-video")
    expect(videos).to_have_count(2, timeout=JOB_TIMEOUT)
    expect(all_clips).to_be_disabled()
    clip_ids = [v.get_attribute("data-video-id") for v in videos.all()]
    # posters: a decoded frame (not black) before anything is played
    for video in videos.all():
        expect(video).to_have_attribute("poster", re.compile(r"^data:image/jpeg"), timeout=30_000)
        assert video.evaluate("(v) => v.paused && v.currentTime === 0")
        brightness = video.evaluate(
            "(v) => new Promise((ok) => { const img = new Image(); img.onload = () => {"
            " const c = document.createElement('canvas'); c.width = img.width; c.height = img.height;"
            " const x = c.getContext('2d'); x.drawImage(img, 0, 0);"
            " const d = x.getImageData(0, 0, c.width, c.height).data; let s = 0;"
            " for (let i = 0; i < d.length; i += 4) s += d[i] + d[i+1] + d[i+2];"
            " ok(s / (3 * d.length / 4)); }; img.src = v.poster; })"
        )
        assert brightness > 12, brightness

    # Regenerate asks first; "keep" changes nothing
    page.get_by_test_id("generate-scenes").click()
    confirm = page.get_by_test_id("regenerate-confirm")
    expect(confirm).to_be_visible()
    expect(confirm).to_contain_text("2 scenes, 2 clips")
    page.get_by_test_id("regenerate-confirm-no").click()
    expect(confirm).to_be_hidden()
    assert [v.get_attribute("data-video-id") for v in videos.all()] == clip_ids
    # ... "yes" replaces them, and the previous set can be restored
    with page.expect_response(lambda r: "/api/mv/create_scenes" in r.url):
        page.get_by_test_id("generate-scenes").click()
        page.get_by_test_id("regenerate-confirm-yes").click()
    expect(videos).to_have_count(0, timeout=JOB_TIMEOUT)
    restore = page.get_by_test_id("restore-scenes-box")
    expect(restore).to_contain_text("2 scene(s), 2 clip(s)")
    page.get_by_test_id("restore-scenes").click()
    expect(videos).to_have_count(2)
    assert [v.get_attribute("data-video-id") for v in videos.all()] == clip_ids
    saved = json.loads(page.evaluate("() => sessionStorage.getItem('quickGenState')"))
    assert saved["previous"] and len(saved["previous"]["scenes"]) == 2  # the replaced set, restorable again
    guard.assert_clean()
