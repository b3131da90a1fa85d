"""A server with API_KEY set: the pages explain the 401 and work once the key is entered in the header."""

from __future__ import annotations

from playwright.sync_api import expect


def test_flavors_page_asks_for_the_key_then_goes_live(page, guard, keyed_server, api_key):
    guard.allow("status of 401")  # chromium logs the refused fetches; the page explains them
    guard.allow("EventSource")  # and the refused event stream
    page.goto(keyed_server.url("/flavors"))
    error = page.get_by_test_id("list-error")
    expect(error).to_contain_text("Missing API key")
    expect(error).to_contain_text("Enter the API key")
    key_field = page.get_by_test_id("api-key")
    key_field.fill(api_key)
    key_field.press("Enter")
    expect(page.get_by_test_id("live-badge")).to_have_attribute("data-state", "live")
    expect(error).to_be_hidden()
    expect(page.get_by_test_id("flavor-row")).not_to_have_count(0)
    expect(page.get_by_test_id("no-errors")).to_be_visible()
    guard.assert_clean()


def test_media_urls_carry_the_key(page, guard, keyed_server, api_key):
    page.goto(keyed_server.url("/"))  # open page: /health needs no key
    page.evaluate("(key) => localStorage.setItem('mvcoreApiKey', key)", api_key)
    page.goto(keyed_server.url("/create"))
    expect(page.get_by_test_id("api-key-state")).to_have_text("key set")
    expect(page.get_by_test_id("config-flavor-select")).to_be_enabled()
    expect(page.get_by_test_id("config-error")).to_be_hidden()
    page.get_by_test_id("character-description").fill("a small silver robot")
    page.get_by_test_id("generate-refs").click()
    images = page.get_by_test_id("ref-image")
    expect(images).to_have_count(4, timeout=60_000)
    src = images.nth(0).locator("img").get_attribute("src") or ""
    assert src.endswith(f"?api_key={api_key}")
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=ref-image] img')]"
        ".every((img) => img.complete && img.naturalWidth > 0)"
    )
    guard.assert_clean()
