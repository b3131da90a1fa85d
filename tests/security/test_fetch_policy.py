"""Server-side fetches (SSRF): the server never connects to an internal address on a caller's word.

Every test runs its own listener on 127.0.0.1 (``canary``) and asserts it accepted **zero**
connections -- whatever spelling of a local address the URL used, through redirects from a host the
test allowed, and with ``HTTP_PROXY`` pointing at it.  A refusal is one 400 message, the same for a
port where something listens and for one where nothing does.
"""

from __future__ import annotations

import asyncio
import io
import ipaddress
import socket
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from litestar.testing import TestClient
from reliability import Listener, make_settings

from mvcore.api.app import create_app
from mvcore.config.plugins import PluginHost
from mvcore.config.store import FlavorStore
from mvcore.errors import MvcoreError
from mvcore.settings import Settings
from mvcore.storage.fetch import REFUSED, FetchPolicy, FetchRefused, fetch_to_file, is_public


def local_spellings(port: int) -> list[str]:
    """One local listener, every way a URL can name it (or its neighbours)."""
    return [
        f"http://127.0.0.1:{port}/song.wav",
        f"http://localhost:{port}/song.wav",
        f"http://0:{port}/song.wav",
        f"http://0.0.0.0:{port}/song.wav",
        f"http://2130706433:{port}/song.wav",
        f"http://0x7f000001:{port}/song.wav",
        f"http://0x7f.0.0.1:{port}/song.wav",
        f"http://0177.0.0.1:{port}/song.wav",
        f"http://127.1:{port}/song.wav",
        f"http://[::1]:{port}/song.wav",
        f"http://[::ffff:127.0.0.1]:{port}/song.wav",
        f"http://[::ffff:7f00:1]:{port}/song.wav",
        f"http://LOCALHOST.:{port}/song.wav",
        f"https://127.0.0.1:{port}/song.wav",
    ]


def wav_bytes(seconds: float = 1.0) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\x01\x00" * int(8000 * seconds))
    return buffer.getvalue()


@pytest.fixture
def open_app(tmp_path: Path) -> Iterator[Any]:
    clients: list[TestClient] = []

    def open_with(**overrides: Any) -> TestClient:
        settings = make_settings(tmp_path / f"app{len(clients)}", **overrides)
        store = FlavorStore(list(settings.flavors_dirs), PluginHost(entry_points=False))
        client = TestClient(create_app(settings, store=store), raise_server_exceptions=False, timeout=30)
        client.__enter__()
        clients.append(client)
        return client

    try:
        yield open_with
    finally:
        for client in clients:
            client.__exit__(None, None, None)


def refused(response: Any, field: str) -> str:
    """A 400 naming ``field``: the one refusal message, or (for spellings httpx itself rejects,
    like ``0177.0.0.1``) a malformed-URL message -- either way, nothing was fetched."""
    assert response.status_code == 400, response.text
    detail = response.json()["detail"]
    assert detail["details"]["field"] == field, detail
    if detail["error"] == "INVALID_INPUT":
        assert detail["message"].startswith(f"{field} is not a valid URL"), detail
        return refusal_text(field)
    assert detail["error"] == "URL_REFUSED", detail
    assert detail["message"] == refusal_text(field), detail
    return str(detail["message"])


def refusal_text(field: str) -> str:
    return f"{field} {REFUSED}"


def lipsync_with(client: TestClient, field: str, url: str, audio_id: str, video_id: str) -> Any:
    body = {"video_id": video_id, "audio_url": url} if field == "audio_url" else {"video_url": url}
    if field == "video_url":
        body["audio_id"] = audio_id
    return client.post("/api/mv/lipsync", json=body)


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, str, str]]:
    """One default app for the module, with one stored song and one clip (so lipsync gets as far
    as its URLs).  Requests that are refused change nothing, so sharing it is safe."""
    settings = make_settings(tmp_path_factory.mktemp("fetch"))
    store = FlavorStore(list(settings.flavors_dirs), PluginHost(entry_points=False))
    with TestClient(create_app(settings, store=store), raise_server_exceptions=False, timeout=30) as client:
        song = client.post("/api/audio/upload", files={"data": ("s.wav", wav_bytes(2.0), "audio/wav")})
        assert song.status_code == 200, song.text
        clip = client.post("/api/mv/generate_video", json={"prompt": "p", "duration": 1})
        assert clip.status_code == 200, clip.text
        yield client, song.json()["audio_id"], clip.json()["video_id"]


@pytest.mark.parametrize("field", ["video_url", "audio_url"])
def test_lipsync_urls_never_reach_a_local_listener(
    stored: tuple[TestClient, str, str], canary: Listener, field: str
) -> None:
    client, audio_id, video_id = stored
    messages = {
        refused(lipsync_with(client, field, url, audio_id, video_id), field)
        for url in local_spellings(canary.port)
    }
    # the same answer where nothing listens: a refusal tells nothing about the network
    messages.add(refused(lipsync_with(client, field, "http://127.0.0.1:9/x.wav", audio_id, video_id), field))
    messages.add(refused(lipsync_with(client, field, "http://10.255.255.1/x.wav", audio_id, video_id), field))
    assert len(messages) == 1, messages
    assert canary.connections == 0


def test_audio_download_takes_youtube_hosts_only(open_app: Any, canary: Listener) -> None:
    # even a host the dangerous setting allows is not a download source until ALLOW_HOSTS names it
    client = open_app(fetch_dangerously_allow_private=[f"127.0.0.1:{canary.port}"])
    for url in [f"http://127.0.0.1:{canary.port}/song.wav", "https://example.com/song.mp3"]:
        response = client.post("/api/audio/download", json={"url": url})
        assert response.status_code == 400, response.text
        detail = response.json()["detail"]
        assert (
            detail["details"]["field"] == "url" and detail["details"]["limit"] == "MVCORE_FETCH_ALLOW_HOSTS"
        )
        assert "youtube.com" in detail["details"]["valid"]
    assert canary.connections == 0


def test_allow_hosts_widens_download_by_name_but_never_to_a_local_address(
    open_app: Any, canary: Listener
) -> None:
    names = ["127.0.0.1", "localhost", "0", "2130706433", "0x7f000001", "127.1", "::1", "::ffff:127.0.0.1"]
    client = open_app(fetch_allow_hosts=names)
    for url in local_spellings(canary.port):
        if (
            "0177" in url
            or "0x7f.0" in url
            or "0.0.0.0" in url
            or "LOCALHOST." in url
            or "[::ffff:7f00" in url
        ):
            continue  # not named in the allow-list: refused earlier, by name
        refused(client.post("/api/audio/download", json={"url": url}), "url")
    assert canary.connections == 0


def test_a_local_source_needs_the_dangerous_setting_naming_it(open_app: Any, make_listener: Any) -> None:
    files = make_listener(body=wav_bytes(1.0))
    host = f"127.0.0.1:{files.port}"
    client = open_app(fetch_allow_hosts=[host], fetch_dangerously_allow_private=[host])
    song = client.post("/api/audio/download", json={"url": f"http://{host}/tone.wav"})
    assert song.status_code == 200, song.text
    assert song.json()["duration"] == pytest.approx(1.0, abs=0.1)
    assert files.requests == 1 and files.hosts == [host]


@pytest.mark.parametrize("target", ["127.0.0.1", "localhost", "[::ffff:127.0.0.1]", "2130706433", "0"])
def test_redirects_to_a_local_address_are_refused_at_the_hop(
    open_app: Any, canary: Listener, make_listener: Any, target: str
) -> None:
    """The first hop is allowed by name (host:port); the redirect target is checked again."""
    location = f"http://{target}:{canary.port}/song.wav"
    redirector = make_listener(lambda _path: (302, {"Location": location}, b""))
    first = f"127.0.0.1:{redirector.port}"
    client = open_app(fetch_allow_hosts=[first], fetch_dangerously_allow_private=[first])
    refused(client.post("/api/audio/download", json={"url": f"http://{first}/start"}), "url")
    assert redirector.requests == 1
    assert canary.connections == 0


def test_redirects_are_bounded(open_app: Any, make_listener: Any) -> None:
    loop = make_listener(lambda path: (302, {"Location": f"/r{len(path)}"}, b""))
    first = f"127.0.0.1:{loop.port}"
    client = open_app(
        fetch_allow_hosts=[first], fetch_dangerously_allow_private=[first], fetch_max_redirects=3
    )
    response = client.post("/api/audio/download", json={"url": f"http://{first}/r"})
    assert response.status_code == 400, response.text
    assert response.json()["detail"]["details"]["limit"] == "MVCORE_FETCH_MAX_REDIRECTS"
    assert loop.requests == 4  # the first request and three redirects


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "HTTPS_PROXY"])
def test_environment_proxies_are_ignored(
    stored: tuple[TestClient, str, str], canary: Listener, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv(variable, f"http://127.0.0.1:{canary.port}")
    client, audio_id, video_id = stored
    for url in [
        "http://10.0.0.1/a.wav",
        "https://169.254.169.254/latest/meta-data/",
        "http://[fd00::1]/a",
    ]:
        refused(lipsync_with(client, "audio_url", url, audio_id, video_id), "audio_url")
    assert canary.connections == 0


def test_proxies_are_used_only_when_the_setting_says_so(
    tmp_path: Path, canary: Listener, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{canary.port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    policy = FetchPolicy(use_env_proxies=True, allow_private=("media.test",), resolver=_fixed("127.0.0.1"))
    target = asyncio.run(fetch_to_file("http://media.test/a.bin", tmp_path / "a.bin", policy))
    assert target.read_bytes() == b"canary"
    assert canary.paths == ["http://media.test/a.bin"]  # a proxy request, with the checked name


def _fixed(*addresses: str) -> Any:
    calls: list[str] = []

    async def resolve(host: str, port: int) -> list[str]:
        calls.append(host)
        return list(addresses)

    resolve.calls = calls  # type: ignore[attr-defined]
    return resolve


def test_the_connection_goes_to_the_checked_address(tmp_path: Path, make_listener: Any) -> None:
    """A name no DNS knows, resolved once by the policy: the request reaches the listener with its
    own Host header, so the socket went to the checked address and nothing resolved the name again."""
    files = make_listener(body=b"pinned")
    resolver = _fixed("127.0.0.1")
    policy = FetchPolicy(allow_private=("media.invalid",), resolver=resolver)
    url = f"http://media.invalid:{files.port}/x.bin"
    target = asyncio.run(fetch_to_file(url, tmp_path / "x.bin", policy))
    assert target.read_bytes() == b"pinned"
    assert files.hosts == [f"media.invalid:{files.port}"]
    assert resolver.calls == ["media.invalid"]


def test_every_resolved_address_must_be_public(tmp_path: Path, canary: Listener) -> None:
    """A name answering one public and one local address (DNS rebinding's usual trick) is refused."""
    policy = FetchPolicy(resolver=_fixed("93.184.215.14", "127.0.0.1"))
    with pytest.raises(FetchRefused):
        asyncio.run(fetch_to_file(f"http://mixed.test:{canary.port}/", tmp_path / "x", policy))
    policy = FetchPolicy(resolver=_fixed("127.0.0.1"))
    with pytest.raises(FetchRefused):
        asyncio.run(fetch_to_file(f"http://public-looking.test:{canary.port}/", tmp_path / "x", policy))
    assert canary.connections == 0
    assert not (tmp_path / "x").exists() and not (tmp_path / "x.part").exists()


def test_unknown_hosts_and_closed_ports_get_the_same_refusal(tmp_path: Path) -> None:
    """Even where local addresses are allowed, nothing listening and no such name answer alike."""

    async def unknown(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
    port = closed.getsockname()[1]
    messages = set()
    try:
        for policy, url in [
            (FetchPolicy(resolver=unknown), "http://no-such-host.test/a"),
            (FetchPolicy(allow_private=(f"127.0.0.1:{port}",)), f"http://127.0.0.1:{port}/a"),
            (FetchPolicy(), f"http://127.0.0.1:{port}/a"),
        ]:
            with pytest.raises(FetchRefused) as caught:
                asyncio.run(fetch_to_file(url, tmp_path / "a", policy, field_name="video_url"))
            messages.add(caught.value.message)
    finally:
        closed.close()
    assert messages == {f"video_url {REFUSED}"}


def test_size_cap_keeps_nothing(tmp_path: Path, make_listener: Any) -> None:
    big = make_listener(body=b"x" * 300_000)
    policy = FetchPolicy(allow_private=(f"127.0.0.1:{big.port}",), max_bytes=100_000)
    with pytest.raises(MvcoreError) as caught:
        asyncio.run(fetch_to_file(f"http://127.0.0.1:{big.port}/big", tmp_path / "big", policy))
    assert caught.value.status_code == 413
    assert caught.value.details["limit"] == "MVCORE_MAX_UPLOAD_BYTES"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.255.255.254",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "239.255.255.250",
        "240.0.0.1",
        "255.255.255.255",
        "192.0.2.1",
        "198.18.0.1",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "fd12:3456::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "::127.0.0.1",
        "2002:7f00:1::",
        "2002:a00:1::",
        "64:ff9b::7f00:1",
        "64:ff9b::a00:1",
        "2001:db8::1",
        "2001::1",
    ],
)
def test_non_public_addresses(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses(address: str) -> None:
    assert is_public(ipaddress.ip_address(address))


_PRIVATE_V4 = st.sampled_from(
    ["127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"]
)


@given(network=_PRIVATE_V4, offset=st.integers(min_value=0, max_value=2**24 - 1))
def test_an_embedded_private_ipv4_is_never_public(network: str, offset: int) -> None:
    """Law: every IPv6 form that carries an IPv4 address (mapped, 6to4, NAT64) is as private as it."""
    net = ipaddress.ip_network(network)
    v4 = net[offset % net.num_addresses]
    for embedded in (
        ipaddress.IPv6Address(f"::ffff:{v4}"),
        ipaddress.IPv6Address((0x2002 << 112) | (int(v4) << 80)),
        ipaddress.IPv6Address(int(ipaddress.IPv6Address("64:ff9b::")) | int(v4)),
    ):
        assert not is_public(embedded), (v4, embedded)


def test_our_own_urls_map_to_ids_without_a_fetch(
    stored: tuple[TestClient, str, str], canary: Listener
) -> None:
    client, audio_id, video_id = stored
    body = {
        "video_url": f"http://127.0.0.1:{canary.port}/api/mv/get_video/{video_id}",
        "audio_url": f"http://127.0.0.1:{canary.port}/api/audio/get/{audio_id}",
    }
    response = client.post("/api/mv/lipsync", json=body)
    assert response.status_code == 200, response.text
    meta = response.json()["metadata"]
    assert meta["source_video_id"] == video_id and meta["source_audio_id"] == audio_id
    assert canary.connections == 0


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://[::1", "valid URL"),
        ("http://[::1/x", "valid URL"),
        ("http://example.com:99999/a.mp3", "valid URL"),
        ("http://example.com:port/a.mp3", "valid URL"),
        ("http://exa\x00mple.com/a.mp3", "control character"),
        ("http://example.com/a\nb.mp3", "control character"),
        ("http://example.com/a b.mp3", "space"),
        ("ftp://example.com/a.mp3", "http and https"),
        ("file:///etc/passwd", "http and https"),
        ("gopher://127.0.0.1:6379/_INFO", "http and https"),
        ("http:///a.mp3", "no host"),
        ("http://user:pw@example.com/a.mp3", "user:password"),
        ("http://youtube.com@127.0.0.1/a.mp3", "user:password"),
    ],
)
@pytest.mark.parametrize("field", ["url", "video_url", "audio_url"])
def test_malformed_urls_are_400_naming_the_field(
    stored: tuple[TestClient, str, str], canary: Listener, url: str, says: str, field: str
) -> None:
    client, audio_id, video_id = stored
    if field == "url":
        response = client.post("/api/audio/download", json={"url": url})
    else:
        response = lipsync_with(client, field, url, audio_id, video_id)
    assert response.status_code == 400, response.text
    detail = response.json()["detail"]
    assert detail["details"]["field"] == field and field in detail["message"], detail
    assert says in detail["message"], detail
    assert canary.connections == 0


def test_settings_document_the_dangerous_opt_in() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "settings.md").read_text()
    line = next(line for line in doc.splitlines() if "MVCORE_FETCH_DANGEROUSLY_ALLOW_PRIVATE" in line)
    assert "DANGEROUS" in line
    assert Settings().fetch_dangerously_allow_private == []  # off by default
