"""Auth on every route, a constant-time key check, and no secret anywhere it could leak.

The routes are enumerated from the app itself (``app.routes``), so a route added later is covered
without touching this file.  Open: ``/health``, the UI pages and ``/static/*``; and OPTIONS (a CORS
preflight cannot carry the key).  The ``api_key`` query parameter works on media GETs and the SSE
stream only.
"""

from __future__ import annotations

import hashlib
import hmac
import inspect
import logging
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient
from reliability import make_settings

import mvcore.settings as settings_module
from mvcore import logs
from mvcore.api.app import create_app
from mvcore.config.plugins import PluginHost
from mvcore.config.store import FlavorStore
from mvcore.settings import Settings

KEY = "k-" + uuid.uuid4().hex
SECOND_KEY = "second-" + uuid.uuid4().hex
HASHED_KEY = "hashed-" + uuid.uuid4().hex
API_KEY_SETTING = f"{KEY},{SECOND_KEY},hash:{hashlib.sha256(HASHED_KEY.encode()).hexdigest()}"
OPEN = {"/health", "/", "/create", "/quick-gen", "/flavors", "/projects"}
MEDIA = re.compile(
    r"^/api/(mv/get_video/|mv/get_character_reference/|audio/get/)\{[^}]+\}$"
    # a project's media and its event stream (<video src>, EventSource) take ?api_key= too
    r"|^/api/mv/projects/\{[^}]+\}/(events|files/\{[^}]+\})$"
)
SSE = "/api/mv/flavors/events"


def concrete(path: str) -> str:
    """A request path for a route template (ids become fresh UUIDs, paths a static file)."""
    path = path.replace("{file_path:path}", "api.js")
    path = re.sub(r"\{[^}:]+:int\}", "1", path)  # e.g. a scene's sequence
    return re.sub(r"\{[^}]+\}", lambda _: str(uuid.uuid4()), path)


@pytest.fixture
def auth_client(tmp_path: Path) -> Iterator[TestClient]:
    settings = make_settings(tmp_path, api_key=API_KEY_SETTING)
    store = FlavorStore(list(settings.flavors_dirs), PluginHost(entry_points=False))
    with TestClient(create_app(settings, store=store), raise_server_exceptions=False, timeout=30) as client:
        yield client


WRONG_HEADERS: list[dict[str, str]] = [
    {},
    {"X-API-Key": "wrong"},
    {"X-API-Key": KEY + "x"},
    {"X-API-Key": KEY[:-1]},
    {"X-API-Key": ""},
    {"X-API-Key": HASHED_KEY.upper()},
    {"X-Api-Key": f" {KEY}"},
]


def every_route(app: Any) -> list[tuple[str, str]]:
    out = []
    for route in app.routes:
        for method in sorted(route.methods - {"OPTIONS"}):
            out.append((method, route.path))
    return out


def call(client: TestClient, method: str, path: str, **kwargs: Any) -> Any:
    return client.request(method, path, **kwargs)


def test_every_route_but_the_open_ones_rejects_a_missing_or_wrong_key(auth_client: TestClient) -> None:
    routes = every_route(auth_client.app)
    assert len(routes) > 25, routes
    protected = [(m, p) for m, p in routes if p not in OPEN and not p.startswith("/static")]
    assert ("POST", "/api/mv/create_scenes") in protected and ("GET", "/schema/openapi.json") in protected
    for method, template in protected:
        path = concrete(template)
        body = {"json": {}} if method in ("POST", "PUT", "PATCH") else {}
        for headers in WRONG_HEADERS:
            response = call(auth_client, method, path, headers=headers, **body)
            assert response.status_code == 401, (method, path, headers, response.status_code)
            if method != "HEAD" and path != SSE:
                detail = response.json()["detail"]
                assert detail["error"] == "UNAUTHORIZED", detail
                assert response.headers["www-authenticate"].startswith("ApiKey")
        # the key in the query string does not open non-media routes ...
        if not MEDIA.match(template) and template != SSE:
            response = call(auth_client, method, path, params={"api_key": KEY}, **body)
            assert response.status_code == 401, (method, path, "api_key query")
        # ... while the header does (whatever the route answers then, it is not 401); the endless
        # event stream cannot go through the buffering test client: see the live-server test below
        if path != SSE:
            response = call(auth_client, method, path, headers={"X-API-Key": KEY}, **body)
            assert response.status_code != 401, (method, path)
    for path in [*sorted(OPEN), "/static/api.js", "/static/style.css"]:
        assert auth_client.get(path).status_code == 200, path
    # OPTIONS (a CORS preflight) carries no key and must not be blocked; it reveals nothing
    preflight = auth_client.options("/api/mv/config/debug")
    assert preflight.status_code in (200, 204) and not preflight.content.strip(b"{}")


@pytest.mark.parametrize("key", [KEY, SECOND_KEY, HASHED_KEY])
def test_each_configured_key_works_plain_or_hashed(auth_client: TestClient, key: str) -> None:
    assert auth_client.get("/api/mv/get_config_flavors", headers={"X-API-Key": key}).status_code == 200
    # the hash itself is not a key
    digest = hashlib.sha256(HASHED_KEY.encode()).hexdigest()
    assert auth_client.get("/api/mv/get_config_flavors", headers={"X-API-Key": digest}).status_code == 401
    hashed = auth_client.get("/api/mv/get_config_flavors", headers={"X-API-Key": f"hash:{digest}"})
    assert hashed.status_code == 401


def test_api_key_query_parameter_only_on_media_gets_and_the_event_stream(auth_client: TestClient) -> None:
    media = [template for _, template in every_route(auth_client.app) if MEDIA.match(template)]
    assert len(set(media)) == 5, media  # 3 media GETs + a project's files and its event stream
    for template in set(media):
        path = concrete(template)
        assert auth_client.get(path, params={"api_key": KEY}).status_code == 404  # in: unknown id
        assert auth_client.get(path, params={"api_key": "wrong"}).status_code == 401
        assert auth_client.head(path, params={"api_key": KEY}).status_code != 401
    # not on metadata, not on anything that changes state
    vid = str(uuid.uuid4())
    assert auth_client.get(f"/api/mv/get_video/{vid}/info", params={"api_key": KEY}).status_code == 401
    assert auth_client.get(f"/api/audio/info/{vid}", params={"api_key": KEY}).status_code == 401
    assert auth_client.delete(f"/api/mv/jobs/{vid}", params={"api_key": KEY}).status_code == 401
    assert auth_client.get(f"/api/mv/projects/{vid}", params={"api_key": KEY}).status_code == 401
    assert auth_client.delete(f"/api/mv/projects/{vid}", params={"api_key": KEY}).status_code == 401
    scenes = auth_client.post(
        "/api/mv/create_scenes", params={"api_key": KEY}, json={"idea": "i", "character_description": "c"}
    )
    assert scenes.status_code == 401


def test_event_stream_takes_the_header_or_the_query_key(tmp_path: Path) -> None:
    import httpx
    from reliability import LiveServer

    settings = make_settings(tmp_path, api_key=KEY)
    with LiveServer(create_app(settings)) as server, httpx.Client(base_url=server.url, timeout=10) as client:
        for kwargs in ({"headers": {"X-API-Key": KEY}}, {"params": {"api_key": KEY}}):
            with client.stream("GET", SSE, **kwargs) as stream:
                assert stream.status_code == 200
                assert next(stream.iter_lines()).startswith(("event:", "data:", "id:", ":"))
        for kwargs in ({}, {"headers": {"X-API-Key": "wrong"}}, {"params": {"api_key": "wrong"}}):
            with client.stream("GET", SSE, **kwargs) as stream:
                assert stream.status_code == 401


def test_open_prefixes_do_not_open_anything_else(tmp_path: Path) -> None:
    """``/static/..`` or ``/health/..`` must not reach an API route without the key (raw paths)."""
    from reliability import LiveServer

    from .test_hostile_http import raw_get

    settings = make_settings(tmp_path, api_key=KEY)
    with LiveServer(create_app(settings)) as server:
        for path in (
            "/static/../api/mv/config/debug",
            "/static/..%2fapi%2fmv%2fconfig%2fdebug",
            "/static/%2e%2e/api/mv/get_config_flavors",
            "/health/../api/mv/config/debug",
            "/health/%2e%2e/api/mv/config/debug",
            "//api/mv/config/debug",
            "/./api/mv/config/debug",
            "/api/mv/../mv/config/debug",
            "/API/MV/CONFIG/DEBUG",
            "/flavors/../api/mv/config/debug",
            "/api/mv/config/debug?x=/health",
            "/api/mv/config/debug#/health",
            "/api/mv/config/debug;/health",
        ):
            status, raw = raw_get(server.port, path)
            assert status in (400, 401, 404), (path, status, raw[:300])
            assert b'"default_config"' not in raw and b'"flavors":["default"' not in raw, path


def test_key_check_is_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every configured key is compared with hmac.compare_digest, with no early exit on a match."""
    calls: list[tuple[bytes | str, bytes | str]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(settings_module.hmac, "compare_digest", spy)
    settings = Settings(api_key=API_KEY_SETTING)
    for presented, expected in ((KEY, True), (SECOND_KEY, True), (HASHED_KEY, True), ("nope", False),
                                (KEY + "-longer-than-any-key", False), ("x", False)):  # fmt: skip
        calls.clear()
        assert settings.check_api_key(presented) is expected, presented
        assert len(calls) == 3, (presented, calls)  # all three keys, whichever matched
    # and no plain comparison of the secret anywhere in the check
    source = inspect.getsource(Settings.check_api_key)
    assert "compare_digest" in source
    assert not re.search(r"(==|!=|\bin\b)\s*(presented|key\b)|(presented|key)\s*(==|!=)", source), source


SECRETS = {
    "REPLICATE_API_TOKEN": "r8_" + uuid.uuid4().hex,
    "API_KEY": "api-" + uuid.uuid4().hex,
    "AWS_SECRET_ACCESS_KEY": "aws-secret-" + uuid.uuid4().hex,
}


def test_no_secret_in_logs_error_bodies_or_debug_config(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A run of requests -- good, unauthorized, invalid, failing upstream -- with every secret set,
    MV_DEBUG_MODE on and logging at DEBUG: no secret in any log line, response or config/debug."""
    settings = make_settings(
        tmp_path,
        debug_mode=True,
        replicate_api_token=SECRETS["REPLICATE_API_TOKEN"],
        replicate_base_url="http://127.0.0.1:9/v1",  # nothing listens: every Replicate call fails
        provider="replicate",
        api_key=SECRETS["API_KEY"],
        storage_bucket="mvcore-secret-test",
        aws_endpoint_url="http://127.0.0.1:9",  # unreachable too: uploads fail with a warning
        aws_access_key_id="AKIA" + uuid.uuid4().hex[:16].upper(),
        aws_secret_access_key=SECRETS["AWS_SECRET_ACCESS_KEY"],
        provider_timeout_s=5,
    )
    texts: list[str] = []
    key = {"X-API-Key": SECRETS["API_KEY"]}
    in_query = {"params": {"api_key": SECRETS["API_KEY"]}}
    auth = {"headers": key}
    scenes = {"idea": "i", "character_description": "c"}
    reference = {"character_description": SECRETS["AWS_SECRET_ACCESS_KEY"], "num_images": 99}
    with TestClient(create_app(settings), raise_server_exceptions=False, timeout=60) as client:
        # building the app (re)configured the root logger, replacing its handlers -- pytest's too
        root = logging.getLogger()
        server_handlers = list(root.handlers)
        root.addHandler(caplog.handler)
        caplog.set_level(logging.DEBUG)
        services = client.app.state["services"]
        from mvcore.storage.media_store import MediaStore

        services.ctx.media = MediaStore.from_settings(settings, max_attempts=1, connect_timeout=0.5)
        requests: list[tuple[str, str, dict[str, Any]]] = [
            ("GET", "/api/mv/config/debug", {"headers": key}),
            ("GET", "/api/mv/flavors/status", {"headers": key}),
            ("GET", "/api/mv/flavors/default", {"headers": key}),
            ("GET", "/api/mv/config/debug", {"headers": {"X-API-Key": SECRETS["API_KEY"] + "x"}}),
            ("GET", "/api/mv/config/debug", in_query),
            ("GET", f"/api/mv/get_video/{uuid.uuid4()}", in_query),
            ("GET", f"/api/mv/flavors/{SECRETS['API_KEY']}", {**auth, "params": {"strict_flavor": "1"}}),
            ("POST", "/api/mv/create_scenes", {**auth, "json": scenes}),
            ("POST", "/api/mv/create_scenes", {**auth, "json": {"idea": SECRETS["REPLICATE_API_TOKEN"]}}),
            ("POST", "/api/mv/generate_video", {**auth, "json": {"prompt": "p", "backend": "replicate"}}),
            ("POST", "/api/mv/generate_video", {**auth, "json": {"prompt": "p", "backend": "offline"}}),
            ("POST", "/api/mv/generate_character_reference", {**auth, "json": reference}),  # invalid: 422
            ("POST", "/api/audio/download", {**auth, "json": {"url": "http://127.0.0.1:9/song.mp3"}}),
            ("GET", "/api/mv/jobs", {"headers": key}),
            ("GET", "/health", {}),
        ]
        statuses = []
        for method, path, kwargs in requests:
            response = client.request(method, path, **kwargs)
            statuses.append(response.status_code)
            texts.append(response.text)
            texts.extend(f"{k}: {v}" for k, v in response.headers.items())
        debug = client.get("/api/mv/config/debug", headers=key)
        assert debug.status_code == 200 and debug.json()["replicate_token_configured"] is True
        texts.append(debug.text)
    assert 401 in statuses and 200 in statuses and any(s >= 500 for s in statuses), statuses
    assert any(s == 200 for s in statuses[10:11]), statuses  # the offline video was stored locally

    logging.getLogger().removeHandler(caplog.handler)
    # whoever logs (a library, a traceback), the server's own handlers scrub every secret
    assert server_handlers and all(
        any(isinstance(f, logs.ScrubbingFilter) for f in handler.filters) for handler in server_handlers
    ), [(h, h.filters) for h in server_handlers]
    for handler in server_handlers:
        for name, secret in SECRETS.items():
            try:
                raise RuntimeError(f"upstream said {secret}")
            except RuntimeError as exc:
                failure = (RuntimeError, exc, None)
                record = logging.getLogger("some.library").makeRecord(
                    "some.library", logging.ERROR, __file__, 1, "token=%s", (secret,), failure
                )
            assert handler.filter(record)
            line = logging.Formatter("%(message)s").format(record)
            assert secret not in line and "upstream said ***" in line, (name, line)

    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    server_lines = []
    for record in caplog.records:
        line = formatter.format(record)  # message + any traceback
        if record.name.startswith("httpx") and "testserver" in line:
            continue  # the test's own HTTP client logging the URL it requested
        server_lines.append(line)
    assert len(server_lines) > 20, len(server_lines)
    for name, secret in SECRETS.items():
        leaked_logs = [line for line in server_lines if secret in line]
        assert not leaked_logs, (name, leaked_logs[:3])
        leaked_bodies = [text for text in texts if secret in text]
        assert not leaked_bodies, (name, leaked_bodies[:3])
