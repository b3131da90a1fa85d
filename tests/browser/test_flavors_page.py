"""Flavors page: list with status, provenance, and live updates when a flavor file changes."""

from __future__ import annotations

import re
import time

from playwright.sync_api import expect

from tests.reliability import steady_gc


def _value_row(page, config_type: str, key: str):
    return page.locator(f'[data-testid="value-row"][data-type="{config_type}"][data-key="{key}"]')


def _server_side(server, generation: int) -> str:
    """What the server did meanwhile (tells a slow watcher from a slow page)."""
    reloader = server.app.state["services"].reloader
    status = reloader.status() if reloader is not None else {}
    status.pop("watched", None)
    return f"server generation {server.generation} (was {generation}), reloader {status}"


def test_flavors_page_lists_flavors_with_provenance(page, guard, server):
    page.goto(server.url("/flavors"))
    rows = page.get_by_test_id("flavor-row")
    expect(rows.first).to_be_visible()
    names = rows.get_by_test_id("flavor-name").all_inner_texts()
    assert {"default", "example", "test_flavor"} <= set(names)
    example = page.locator('[data-testid="flavor-row"][data-name="example"]')
    expect(example.get_by_test_id("flavor-source")).to_contain_text("flavors/example")
    expect(example.get_by_test_id("status-badge")).to_have_text("ok")
    expect(page.get_by_test_id("no-errors")).to_be_visible()
    # test_flavor overrides a few keys only: every layer of the chain shows.
    page.locator('[data-testid="flavor-row"][data-name="test_flavor"]').click()
    expect(page.get_by_test_id("detail-title")).to_contain_text("test_flavor")
    assert page.url.endswith("#test_flavor")
    layers = set(page.get_by_test_id("layer").all_inner_texts())
    assert {"flavor", "default", "builtin"} <= layers, layers
    where = _value_row(page, "scene_prompts", "scene_model").get_by_test_id("where")
    expect(where).to_have_text(re.compile(r"scene_prompts\.yaml:\d+$"))
    guard.assert_clean()


def test_flavors_page_follows_edits_live(page, guard, server, screenshots):
    params = server.flavors_dir / "example" / "parameters.yaml"
    original = params.read_text()
    assert "camera_angle: wide" in original and "number_of_scenes: 6" in original
    page.goto(server.url("/flavors#example"))
    badge = page.get_by_test_id("live-badge")
    expect(badge).to_have_attribute("data-state", "live")
    expect(page.get_by_test_id("detail-title")).to_contain_text("example")
    row = _value_row(page, "parameters", "camera_angle")
    expect(row.get_by_test_id("value")).to_have_text("wide")
    expect(row.get_by_test_id("layer")).to_have_text("flavor")
    expect(row.get_by_test_id("where")).to_have_text(re.compile(r"flavors/example/parameters\.yaml:5$"))
    generation = server.generation
    expect(badge).to_contain_text(f"generation {generation}")
    try:
        # A valid edit shows up within 2 s, with a newer generation on the live badge.
        with steady_gc():  # the server shares this process's heap: keep its full collections out
            params.write_text(original.replace("camera_angle: wide", "camera_angle: close-up"))
            started = time.monotonic()
            try:
                expect(row.get_by_test_id("value")).to_have_text("close-up", timeout=2_000)
            except AssertionError as exc:
                where = _server_side(server, generation)
                raise AssertionError(f"page not updated within 2 s; {where}") from exc
            elapsed = time.monotonic() - started
        assert elapsed < 2.0
        assert int(badge.get_attribute("data-generation") or 0) > generation
        expect(badge).to_contain_text("live")

        # An invalid edit shows the error with file:line, and the flavor's status turns to error.
        generation = server.generation
        lines = original.replace("camera_angle: wide", "camera_angle: close-up").splitlines()
        line_no = next(i for i, line in enumerate(lines, 1) if line.startswith("number_of_scenes:"))
        params.write_text(
            original.replace("camera_angle: wide", "camera_angle: close-up").replace(
                "number_of_scenes: 6", 'number_of_scenes: "lots"'
            )
        )
        errors = page.get_by_test_id("error-list")
        try:
            expect(errors).to_contain_text(
                re.compile(rf"flavors/example/parameters\.yaml:{line_no}: .*number_of_scenes"), timeout=2_000
            )
        except AssertionError as exc:
            raise AssertionError(f"error not shown within 2 s; {_server_side(server, generation)}") from exc
        example = page.locator('[data-testid="flavor-row"][data-name="example"]')
        expect(example.get_by_test_id("status-badge")).to_have_text("error")
        expect(example.get_by_test_id("flavor-row-errors")).to_contain_text(f"parameters.yaml:{line_no}")
        # The reloader keeps serving the last valid version; the page says so.
        expect(example.get_by_test_id("flavor-serving")).to_contain_text("last valid version")
        expect(page.get_by_test_id("detail-note")).to_contain_text("last valid version")
        expect(row.get_by_test_id("value")).to_have_text("close-up")
        assert int(badge.get_attribute("data-generation") or 0) > generation
        guard.assert_clean()
        page.set_viewport_size({"width": 1280, "height": 1700})
        shot = screenshots / "flavors.png"
        page.screenshot(path=str(shot))
        assert shot.stat().st_size > 10_000
    finally:
        params.write_text(original)
    expect(page.get_by_test_id("no-errors")).to_be_visible(timeout=5_000)
    expect(row.get_by_test_id("value")).to_have_text("wide")
    guard.assert_clean()
