"""Hostile HTTP: traversal through every id and flavor name, oversized and mistyped bodies, fake
media uploads and slow clients.  Never a 500, never a byte of a file outside the data directory.

Traversal requests go over a raw socket to a live server, so the path arrives exactly as written
(an HTTP client library would normalise ``..`` and re-encode ``%2f`` first).
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import statistics
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import TestClient
from reliability import LiveServer, ServerProcess, make_settings, steady_gc

from mvcore.api.app import create_app
from mvcore.config.plugins import PluginHost
from mvcore.config.store import FlavorStore
from mvcore.settings import Settings

CANARY = f"CANARY-{uuid.uuid4().hex}"
Limits = tuple[TestClient, Settings]


def raw_request(port: int, request: bytes, timeout: float = 15.0) -> tuple[int, bytes]:
    """Send bytes as they are; return (status, whole raw response)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    raw = b"".join(chunks)
    status_line = raw.split(b"\r\n", 1)[0].split()
    return (int(status_line[1]) if len(status_line) > 1 else 0), raw


def raw_get(port: int, path: str, headers: str = "") -> tuple[int, bytes]:
    request = f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{headers}\r\n"
    return raw_request(port, request.encode("latin-1"))


def body_of(raw: bytes) -> bytes:
    return raw.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in raw else b""


def error_body(raw: bytes) -> dict[str, Any]:
    detail = json.loads(body_of(raw))["detail"]
    assert set(detail) == {"error", "message", "details"}, detail
    return detail  # type: ignore[no-any-return]


@pytest.fixture
def canary_tree(tmp_path: Path) -> Path:
    """Files a traversal would love to read: next to the data dir, in the flavors dir, at the root."""
    (tmp_path / "secret.txt").write_text(CANARY)
    (tmp_path / "secret.mp3").write_text(CANARY)
    return tmp_path


@pytest.fixture
def live(canary_tree: Path) -> Iterator[tuple[LiveServer, Settings]]:
    settings = make_settings(canary_tree)
    (settings.flavors_dirs[0] / "secret.yaml").write_text(f"camera_angle: {CANARY}\n")
    store = FlavorStore(list(settings.flavors_dirs), PluginHost(entry_points=False))
    with LiveServer(create_app(settings, store=store)) as server:
        yield server, settings


BENIGN = {"filename": "parameters.yaml", "entry": "1700000000000000000-0123abcd"}


def id_routes(app: Any) -> list[tuple[str, str]]:
    """(method, path template with ``{}`` for the parameter) of every route that takes an id or a name."""
    out = []
    benign = "3f2b8c1e-0d4a-4c4e-9b1a-2f6d8e7a9c10"
    for route in app.routes:
        if "{" not in route.path or route.path.startswith("/schema"):
            continue
        params = re.findall(r"\{[^}]+\}", route.path)
        for index in range(len(params)):  # the hostile value in each parameter, the others benign
            parts = re.split(r"\{[^}]+\}", route.path)
            template = parts[0]
            for position, param in enumerate(params):
                name = param.strip("{}").split(":")[0]
                value = (
                    "{}"
                    if position == index
                    else ("1" if param.endswith(":int}") else BENIGN.get(name, benign))
                )
                if position == index and param.endswith(":int}"):
                    value = None  # an int parameter never reaches a handler with text in it
                if value is None:
                    break
                template += value + parts[position + 1]
            else:
                for method in sorted(route.methods - {"OPTIONS", "HEAD"}):
                    out.append((method, template))
    return out


def hostile_values(tmp_path: Path) -> list[str]:
    return [
        "..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
        "%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2fsecret.txt",
        "%2e%2e/%2e%2e/%2e%2e/%2e%2e/secret.txt",
        "..%2f..%2f..%2f..%2fsecret.txt",
        "..%5c..%5c..%5csecret.txt",
        "%252e%252e%252f%252e%252e%252fsecret.txt",
        "..%c0%af..%c0%afsecret.txt",
        "....%2f%2f....%2f%2fsecret.txt",
        "..",
        "%2e%2e",
        ".",
        "%2fetc%2fpasswd",
        "%2f" + str(tmp_path / "secret.txt").lstrip("/").replace("/", "%2f"),
        "abc%00def",
        "%00",
        f"{uuid.uuid4()}%00.mp3",
        f"{uuid.uuid4()}%2f..%2f..%2fsecret",
        "x" * 10_000,
        "%ff%fe%fd",
        "%0d%0aX-Injected:%20yes",
        "secret",
        "default%2f..%2fsecret",
    ]


def test_traversal_through_every_id_and_flavor_name(
    live: tuple[LiveServer, Settings], tmp_path: Path
) -> None:
    server, _ = live
    routes = id_routes(server.app)
    assert len(routes) >= 9, routes  # video, info, reference, audio, audio info, job (get/delete), flavor
    seen: dict[int, int] = {}
    checked = 0
    for method, template in routes:
        for value in hostile_values(tmp_path):
            path = template.format(value)
            for suffix in ("", "?redirect=false", "?type=..%2f..%2fsecret"):
                if suffix and "{}" not in template:
                    continue
                request = f"{method} {path}{suffix} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
                status, raw = raw_request(server.port, request.encode("latin-1"))
                checked += 1
                seen[status] = seen.get(status, 0) + 1
                assert CANARY.encode() not in raw, (method, path, raw[:300])
                assert b"root:x:" not in raw, (method, path)
                assert b"X-Injected" not in raw.split(b"\r\n\r\n", 1)[0], (method, path)
                assert status < 500, (method, path, raw[:500])
                if template.startswith("/api/mv/flavors/") and method in ("POST", "PUT"):
                    # the flavor authoring endpoints: a bad name, or no body at all (422)
                    assert status in (400, 404, 422), (method, path, status)
                elif template.startswith("/api/mv/flavors/"):
                    # an unknown flavor name falls back to default (200) or, strict, 404/400
                    assert status in (200, 400, 404), (path, status)
                    if status == 200:
                        assert json.loads(body_of(raw))["flavor_used"] == "default", (path, raw[:300])
                elif status != 404 or b"No route" not in raw:
                    assert status in (400, 404), (method, path, status, raw[:300])
                    error_body(raw)
    assert checked > 300 and not [s for s in seen if s >= 500], seen
    # and the static files and pages stay inside their directory too
    for value in hostile_values(tmp_path):
        for template in ("/static/{}", "/static/css/{}", "/{}", "/create/{}"):
            status, raw = raw_get(server.port, template.format(value))
            assert status in (400, 404), (template, value[:60], status, raw[:300])
            assert CANARY.encode() not in raw and b"root:x:" not in raw
    assert raw_get(server.port, "/health")[0] == 200


def files_outside(root: Path, data_dir: Path) -> set[Path]:
    return {p for p in root.rglob("*") if not p.is_relative_to(data_dir)}


SCENES = {"idea": "i", "character_description": "c"}


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/mv/create_scenes", {**SCENES, "project_id": "../../../pwned"}),
        ("/api/mv/create_scenes", {**SCENES, "project_id": "/tmp/pwned"}),
        ("/api/mv/create_scenes", {**SCENES, "project_id": "a\x00b"}),
        ("/api/mv/create_scenes", {**SCENES, "config_flavor": "../secret"}),
        ("/api/mv/generate_video", {"prompt": "p", "character_reference_id": "../../secret.txt"}),
        ("/api/mv/generate_video", {"prompt": "p", "character_reference_id": "/etc/passwd"}),
        ("/api/mv/lipsync", {"video_id": "../../secret", "audio_id": "../../secret"}),
        ("/api/mv/lipsync", {"video_url": "file:///etc/passwd", "audio_url": "/etc/passwd"}),
        ("/api/mv/lipsync", {"video_url": "/api/mv/get_video/../../secret.txt", "audio_id": "x"}),
        ("/api/mv/stitch-videos", {"video_ids": ["../../secret.txt"]}),
        ("/api/mv/stitch-videos", {"video_ids": [str(uuid.uuid4())], "audio_overlay_id": "../secret.mp3"}),
        ("/api/audio/download", {"url": "file:///etc/passwd"}),
        ("/api/audio/download", {"url": "../../secret.mp3"}),
    ],
)
def test_traversal_through_request_bodies(tmp_path: Path, path: str, body: dict[str, Any]) -> None:
    (tmp_path / "secret.txt").write_text(CANARY)
    settings = make_settings(tmp_path)
    before = files_outside(tmp_path, settings.data_dir)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        response = client.post(path, json=body)
    assert response.status_code in (200, 400, 404, 422), response.text
    assert CANARY not in response.text
    assert files_outside(tmp_path, settings.data_dir) == before
    assert not Path("/tmp/pwned").exists()
    if response.status_code != 200:
        detail = response.json()["detail"]
        assert detail["error"] and detail["message"]
    else:  # only the unknown flavor name is fine: it falls back to default
        assert response.json()["metadata"]["config"]["fallback"] is True


# --------------------------------------------------------------------------- body sizes and types
@pytest.fixture
def small_limits(tmp_path: Path) -> Iterator[tuple[TestClient, Settings]]:
    settings = make_settings(tmp_path, max_json_bytes=2_000, max_upload_bytes=60_000)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client, settings


def _problem(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert detail["error"] == code and detail["message"] and detail["details"].get("hint"), detail


BIG = json.dumps({"idea": "x" * 5_000, "character_description": "c"}).encode()
SMALL = json.dumps({"idea": "x", "character_description": "c"}).encode()


def chunked(data: bytes, size: int = 500) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        "APPLICATION/JSON",
        None,
        "application/merge-patch+json",
    ],
)
def test_oversized_json_is_413_however_it_is_sent(small_limits: Limits, content_type: str | None) -> None:
    client, _ = small_limits
    headers = {"content-type": content_type} if content_type else {}
    _problem(client.post("/api/mv/create_scenes", content=BIG, headers=headers), 413, "PAYLOAD_TOO_LARGE")
    # without a Content-Length (chunked transfer) the bytes are counted as they arrive
    streamed = client.post("/api/mv/create_scenes", content=chunked(BIG), headers=headers)
    _problem(streamed, 413, "PAYLOAD_TOO_LARGE")
    # and a body under the cap still works, streamed or not
    assert client.post("/api/mv/create_scenes", content=SMALL, headers=headers).status_code == 200
    assert client.post("/api/mv/create_scenes", content=chunked(SMALL, 7), headers=headers).status_code == 200


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/xml",
        "text/html",
        "application/octet-stream",
        "image/png",
    ],
)
def test_wrong_content_types_are_415(small_limits: Limits, content_type: str) -> None:
    client, _ = small_limits
    for path in ("/api/mv/create_scenes", "/api/mv/generate_video", "/api/audio/download"):
        response = client.post(path, content=SMALL, headers={"content-type": content_type})
        _problem(response, 415, "UNSUPPORTED_MEDIA_TYPE")
    # the upload endpoint wants multipart, and says so
    wrong = client.post("/api/audio/upload", content=SMALL, headers={"content-type": "application/json"})
    assert wrong.status_code == 400 and "multipart" in wrong.json()["detail"]["message"].lower(), wrong.text


def test_oversized_multipart_upload_is_413(small_limits: Limits) -> None:
    client, settings = small_limits
    blob = b"\xff\xfb" + b"\0" * 100_000
    declared = client.post("/api/audio/upload", files={"data": ("big.mp3", blob, "audio/mpeg")})
    _problem(declared, 413, "PAYLOAD_TOO_LARGE")
    boundary = "b0undary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="data"; filename="big.mp3"\r\n'
            "Content-Type: audio/mpeg\r\n\r\n"
        ).encode()
        + blob
        + f"\r\n--{boundary}--\r\n".encode()
    )
    streamed = client.post(
        "/api/audio/upload",
        content=chunked(body, 8192),
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
    )
    _problem(streamed, 413, "PAYLOAD_TOO_LARGE")
    assert not stored_audio(settings)


def stored_audio(settings: Settings) -> list[Path]:
    folder = settings.data_dir / "audio"
    return list(folder.glob("*")) if folder.exists() else []


FAKES = {
    "text.mp3": b"this is not audio at all\n" * 40,
    "html.mp3": b"<html><body>" + b"<p>nope</p>" * 100 + b"</body></html>",
    "png.mp3": b"\x89PNG\r\n\x1a\n" + b"\0" * 2000,
    "id3-then-junk.mp3": b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes(range(256)) * 8,
    "mpeg-sync-then-junk.mp3": b"\xff\xfb\x90\x00" + b"\x13\x37" * 1000,
    "zeros.wav": b"RIFF\x00\x00\x00\x00WAVE" + b"\0" * 2000,
    "empty.mp3": b"",
    "script.mp3": b"#!/bin/sh\nrm -rf /\n",
}


@pytest.mark.parametrize("name", list(FAKES))
def test_upload_claiming_to_be_audio_but_not_is_400(small_limits: Limits, name: str) -> None:
    client, settings = small_limits
    response = client.post("/api/audio/upload", files={"data": (name, FAKES[name], "audio/mpeg")})
    _problem(response, 400, "INVALID_INPUT")
    assert "Traceback" not in response.text and str(settings.data_dir) not in response.text
    assert not stored_audio(settings)
    scratch = settings.data_dir / "tmp"
    assert not (list(scratch.rglob("*")) if scratch.exists() else [])


@pytest.mark.parametrize(
    "form",
    [
        {"files": {"other": ("a.mp3", b"x" * 10, "audio/mpeg")}},
        {"data": {"data": "just text"}},
        {"files": [("data", ("a.mp3", b"x", "audio/mpeg")), ("data", ("b.mp3", b"y", "audio/mpeg"))]},
        {"files": {"data": ("../../../etc/passwd.mp3", b"x" * 10, "audio/mpeg")}},
        {"files": {"data": ("a\x00.mp3", b"x" * 10, "audio/mpeg")}},
    ],
)
def test_malformed_upload_forms_are_4xx(small_limits: Limits, form: dict[str, Any]) -> None:
    client, _ = small_limits
    response = client.post("/api/audio/upload", **form)
    assert response.status_code in (400, 415, 422), response.text
    assert set(response.json()["detail"]) == {"error", "message", "details"}


# --------------------------------------------------------------------------- slow clients
TRICKLE_STEP_S = 0.05
SLOW_BODY_BYTES = 400  # at one byte per step, a slow body needs 20 s to arrive


def _open_slow_clients(port: int) -> list[socket.socket]:
    """12 clients that send headers and then trickle a body, 4 that never finish their headers."""
    slow = []
    for _ in range(12):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.sendall(
            b"POST /api/mv/create_scenes HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n{" % SLOW_BODY_BYTES
        )
        slow.append(sock)
    for _ in range(4):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        slow.append(sock)
    return slow


def _trickle(slow: list[socket.socket], stop: threading.Event) -> None:
    while not stop.is_set():
        for sock in slow:
            with contextlib.suppress(OSError):
                sock.sendall(b" ")
        time.sleep(TRICKLE_STEP_S)


def _round_trips(client: httpx.Client, *, count: int = 0, window_s: float = 0.0) -> list[float]:
    """Latencies of ``/health`` + ``create_scenes`` pairs: ``count`` of them, or for ``window_s``."""
    latencies: list[float] = []
    started = time.monotonic()
    while len(latencies) < count or time.monotonic() - started < window_s:
        t0 = time.monotonic()
        assert client.get("/health").status_code == 200
        scenes = client.post("/api/mv/create_scenes", json=SCENES)
        assert scenes.status_code == 200, scenes.text
        latencies.append(time.monotonic() - t0)
    return latencies


def _unanswered(sock: socket.socket) -> bool:
    """True while the server has sent nothing back on ``sock`` (and not closed it)."""
    sock.setblocking(False)
    try:
        sock.recv(1, socket.MSG_PEEK)
    except BlockingIOError:
        return True
    finally:
        sock.setblocking(True)
    return False


def test_slow_clients_do_not_block_anyone_else(tmp_path: Path) -> None:
    """16 slowloris connections stay open while ordinary callers are served at their usual pace.

    The server is a real process, so its event loop does not share this process's heap (a full
    collection of the suite's objects once put a 1 s pause inside a measured request).  The bound
    on the typical round trip is relative: the same round trip measured on the same server just
    before the slow clients connect.  A server that waited for the slow bodies would need 20 s.
    """
    slow: list[socket.socket] = []
    stop = threading.Event()
    with ServerProcess(tmp_path) as server, httpx.Client(base_url=server.url, timeout=10) as client:
        try:
            with steady_gc():
                baseline = statistics.median(_round_trips(client, count=10))
            slow = _open_slow_clients(server.port)
            dripper = threading.Thread(target=_trickle, args=(slow, stop), daemon=True)
            dripper.start()
            with steady_gc():
                latencies = _round_trips(client, window_s=2.5)
            assert all(_unanswered(sock) for sock in slow), "a slow client was cut off or answered early"
            stop.set()
            dripper.join(5)
            assert len(latencies) >= 10, latencies
            assert statistics.median(latencies) < 3 * baseline + 0.05, (baseline, latencies)
            # blocked callers would wait for the slow bodies: 20 s, or the client's 10 s timeout
            assert max(latencies) < SLOW_BODY_BYTES * TRICKLE_STEP_S / 4, (baseline, latencies)
            # the slow ones, once they finish, get a proper answer (here: their body is not JSON)
            first = slow[0]
            first.sendall(b"x" * (SLOW_BODY_BYTES + 100))
            first.settimeout(10)
            answer = first.recv(65536)
            assert answer.startswith(b"HTTP/1.1 4"), answer[:200]
        finally:
            stop.set()
            for sock in slow:
                sock.close()
