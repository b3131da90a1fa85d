"""Projects page: create a project from idea + character + song + flavor, follow it live to the
final video, regenerate a scene from the page."""

from __future__ import annotations

import re

from playwright.sync_api import expect


def _tiny_flavor(server) -> None:
    """A 3-scene, 1-second flavor so the whole pipeline runs in seconds (the server hot-reloads it)."""
    folder = server.flavors_dir / "projects_tiny"
    if folder.exists():
        return
    generation = server.generation
    folder.mkdir()
    (folder / "parameters.yaml").write_text("number_of_scenes: 3\n")
    (folder / "image_params.yaml").write_text("video_duration: 1\n")
    server.wait_generation_above(generation)


def test_projects_page_creates_follows_and_regenerates(page, guard, server, song, screenshots):
    _tiny_flavor(server)
    page.goto(server.url("/projects"))
    expect(page.get_by_test_id("nav-projects")).to_have_attribute("aria-current", "page")
    # the original's validation, shown next to the form (chromium logs the refused POST)
    guard.allow("status of 400")
    page.get_by_test_id("prompt").fill("too short")
    page.get_by_test_id("create-project").click()
    expect(page.get_by_test_id("create-error")).to_contain_text("Prompt too short")
    page.get_by_test_id("prompt").fill("A cat learns to surf at dawn and sings about it")
    page.get_by_test_id("character").fill("an orange tabby cat with a tiny red surfboard")
    page.get_by_test_id("song").set_input_files(str(song))
    page.get_by_test_id("flavor").select_option("projects_tiny")
    page.get_by_test_id("create-project").click()
    expect(page.get_by_test_id("create-status")).to_have_text("Project created successfully")
    view = page.get_by_test_id("project-view")
    expect(view).to_be_visible()
    expect(page.get_by_test_id("live-badge")).to_have_attribute("data-state", re.compile("^(live|idle)$"))
    expect(page.get_by_test_id("project-status")).to_have_text("completed", timeout=90_000)
    expect(page.get_by_test_id("final")).to_be_visible()
    for seq in (1, 2, 3):
        expect(page.get_by_test_id(f"scene-status-{seq}")).to_have_text("completed")
        expect(page.get_by_test_id(f"scene-info-{seq}")).to_contain_text("lipsynced")
    # the final video really plays: the browser loaded its metadata (a real duration)
    page.wait_for_function(
        "() => { const v = document.querySelector('[data-testid=final-video]');"
        " return v && v.duration > 2.5 }",
        timeout=20_000,
    )
    project_id = page.url.split("#", 1)[1]
    expect(page.get_by_test_id(f"project-row-{project_id}")).to_contain_text("completed")
    page.screenshot(path=str(screenshots / "projects.png"), full_page=True)
    # regenerate scene 2 from the page: the project goes back to work, then completes again
    page.get_by_test_id("regenerate-2").click()
    expect(page.get_by_test_id("project-status")).not_to_have_text("completed", timeout=10_000)
    expect(page.get_by_test_id("project-status")).to_have_text("completed", timeout=90_000)
    guard.assert_clean()
