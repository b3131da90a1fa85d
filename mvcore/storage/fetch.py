"""The one fetch policy for every outbound URL a request can make the server fetch (DESIGN §12).

A caller-supplied URL (``/api/audio/download``, ``/api/mv/lipsync`` ``video_url``/``audio_url``) is a
request *from the server*, inside its network.  So:

* only ``http``/``https`` URLs that parse cleanly (no control characters, no userinfo, a valid
  port) are accepted -- anything else is a 400 naming the field;
* the host is resolved and **every** address it resolves to must be public: loopback, private,
  link-local, multicast, reserved, unspecified and shared addresses are refused, in IPv4, IPv6 and
  the forms that embed an IPv4 address (``::ffff:127.0.0.1``, 6to4, Teredo, NAT64).  Numeric
  shorthands (``0``, ``2130706433``, ``0x7f000001``, ``127.1``) resolve to what they mean and are
  checked as such;
* the check happens in the transport, for the first request and for every redirect hop (at most
  ``MVCORE_FETCH_MAX_REDIRECTS``), and the connection goes to the very address that was checked
  (the URL is rewritten to the IP; ``Host`` and TLS SNI/certificate checks keep the name), so a
  DNS answer that changes between check and connect cannot redirect us;
* size (``MVCORE_MAX_UPLOAD_BYTES``) and total time (``MVCORE_FETCH_TIMEOUT``) are capped;
* environment proxies (``HTTP_PROXY`` ...) are ignored unless ``MVCORE_FETCH_USE_ENV_PROXIES`` is set;
* every refusal -- refused address, unknown host, nothing listening -- answers one and the same
  400 message, so the API cannot be used to map what listens inside the network.

``MVCORE_FETCH_DANGEROUSLY_ALLOW_PRIVATE`` (off: empty) lists ``host`` or ``host:port`` entries (or
``*``) whose non-public addresses are accepted anyway -- for tests and for deployments that really
fetch from an internal media server.  An entry applies only to URLs naming that host (and port),
so a redirect from an allowed host to another internal address is still refused.

This lives in ``storage`` (beside the other ways bytes reach local files) so that generators and
providers can both use it without importing each other.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from mvcore.errors import BadInput, DeadlineExceeded, PayloadTooLarge
from mvcore.settings import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: The one answer to every refused fetch (address not public, host unknown, nothing answers).
REFUSED = "cannot be fetched: give a public http(s) URL that serves the file"
_REFUSED_HINT = "The server only fetches from public internet addresses; or upload the file instead."
_SHARED = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class FetchRefused(BadInput):
    """A URL the policy will not fetch; always the same message for a given field."""

    code = "URL_REFUSED"

    def __init__(self, field_name: str) -> None:
        super().__init__(f"{field_name} {REFUSED}", hint=_REFUSED_HINT, details={"field": field_name})


def bad_url(field_name: str, why: str) -> BadInput:
    return BadInput(
        f"{field_name} is not a valid URL: {why}",
        hint="Give an http(s) URL (spaces encoded as %20), or an id returned by this API.",
        details={"field": field_name},
    )


def is_public(ip: IPAddress) -> bool:
    """True when ``ip`` is a global unicast address (and so is any IPv4 address it embeds)."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded: list[ipaddress.IPv4Address] = []
        if ip.ipv4_mapped is not None:
            embedded.append(ip.ipv4_mapped)
        if ip.sixtofour is not None:
            embedded.append(ip.sixtofour)
        if ip.teredo is not None:
            embedded.extend(ip.teredo)
        if ip in _NAT64:
            embedded.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        if any(not is_public(inner) for inner in embedded):
            return False
    if isinstance(ip, ipaddress.IPv4Address) and ip in _SHARED:
        return False
    return ip.is_global and not (
        ip.is_multicast
        or ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_reserved
        or ip.is_unspecified
    )


def parse_url(url: str, field_name: str) -> httpx.URL:
    """``url`` as an ``httpx.URL`` when it is a well-formed http(s) URL, else a 400 naming the field."""
    if any(ord(ch) < 0x21 or ord(ch) == 0x7F for ch in url):
        raise bad_url(field_name, "it contains a space or a control character")
    try:
        parts = urlsplit(url)
        port = parts.port  # ValueError for 99999 or "abc"
        host = parts.hostname
    except ValueError as exc:
        raise bad_url(field_name, str(exc)[:100]) from None
    if parts.scheme.lower() not in ("http", "https"):
        raise bad_url(field_name, "only http and https URLs are fetched")
    if not host:
        raise bad_url(field_name, "it has no host")
    if parts.username is not None or parts.password is not None:
        raise bad_url(field_name, "user:password@ in URLs is not accepted")
    if port == 0:
        raise bad_url(field_name, "port 0 is not a port")
    try:
        return httpx.URL(url)
    except (httpx.InvalidURL, ValueError) as exc:
        raise bad_url(field_name, str(exc)[:100]) from None


def _split_entry(entry: str) -> tuple[str, int | None]:
    """``host``, ``host:port``, ``[v6]`` or ``[v6]:port`` as (host, port or None)."""
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif entry.count(":") == 1:
        host, _, port = entry.partition(":")
    else:
        host, port = entry, ""
    return host, int(port) if port.isdigit() else None


def host_matches(entries: Iterable[str], url: httpx.URL) -> bool:
    """Whether ``url``'s host (and port) is named by one of ``entries`` (``host``, ``host:port``, ``*``)."""
    host = url.host.lower()
    port = url.port or (443 if url.scheme == "https" else 80)
    for entry in entries:
        entry = entry.strip().lower()
        if entry == "*":
            return True
        name, entry_port = _split_entry(entry)
        if name == host and entry_port in (None, port):
            return True
    return False


@dataclass(frozen=True)
class FetchPolicy:
    """What the server may fetch; built from Settings (``FetchPolicy.from_settings``)."""

    allow_private: tuple[str, ...] = ()
    use_env_proxies: bool = False
    max_redirects: int = 5
    timeout_s: float = 120.0
    max_bytes: int = 100 * 1024 * 1024
    resolver: Any = field(default=None, compare=False)  # tests: async (host, port) -> [addresses]

    @classmethod
    def from_settings(cls, settings: Settings) -> FetchPolicy:
        return cls(
            allow_private=tuple(settings.fetch_dangerously_allow_private),
            use_env_proxies=settings.fetch_use_env_proxies,
            max_redirects=settings.fetch_max_redirects,
            timeout_s=settings.fetch_timeout_s,
            max_bytes=settings.max_upload_bytes,
        )

    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        if self.resolver is not None:
            return [ipaddress.ip_address(a) for a in await self.resolver(host, port)]
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
        return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]

    async def checked_address(self, url: httpx.URL, field_name: str) -> IPAddress:
        """The address to connect to for ``url``: every resolved address checked, one used."""
        if url.scheme not in ("http", "https") or not url.host:
            raise FetchRefused(field_name)
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            addresses = await self.resolve(url.host, port)
        except (OSError, UnicodeError, ValueError):
            raise FetchRefused(field_name) from None
        if not addresses:
            raise FetchRefused(field_name)
        if not host_matches(self.allow_private, url) and not all(map(is_public, addresses)):
            raise FetchRefused(field_name)
        # one address is connected to (the checked one); IPv4 first, as most hosts without IPv6
        # routes still get AAAA answers from their resolver
        return min(addresses, key=lambda address: address.version)


class PolicyTransport(httpx.AsyncBaseTransport):
    """An httpx transport that checks every request's host and connects to the checked address."""

    def __init__(self, policy: FetchPolicy, field_name: str) -> None:
        self.policy = policy
        self.field_name = field_name
        proxy = _env_proxy() if policy.use_env_proxies else None
        self.proxied = proxy is not None
        # no keep-alive: a pooled connection is keyed by IP, and must not carry another host's SNI
        limits = httpx.Limits(max_keepalive_connections=0)
        self.inner = httpx.AsyncHTTPTransport(proxy=proxy, limits=limits, trust_env=False)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        address = await self.policy.checked_address(request.url, self.field_name)
        if self.proxied:  # the proxy connects; it was told the checked name, not our address
            return await self.inner.handle_async_request(request)
        pinned = httpx.Request(
            request.method,
            request.url.copy_with(host=str(address)),
            headers=request.headers,  # keeps Host: <name>
            stream=request.stream,
            extensions={**request.extensions, "sni_hostname": request.url.host},
        )
        try:
            return await self.inner.handle_async_request(pinned)
        except (httpx.ConnectError, httpx.ConnectTimeout):
            raise FetchRefused(self.field_name) from None

    async def aclose(self) -> None:
        await self.inner.aclose()


def _env_proxy() -> str | None:
    proxies = urllib.request.getproxies()
    return proxies.get("https") or proxies.get("http") or proxies.get("all")


async def fetch_to_file(url: str, target: Path, policy: FetchPolicy, *, field_name: str = "url") -> Path:
    """Stream ``url`` to ``target`` under ``policy``; nothing is left at ``target`` on failure."""
    parsed = parse_url(url, field_name)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    try:
        async with asyncio.timeout(policy.timeout_s):
            await _stream(parsed, partial, policy, field_name)
        partial.replace(target)
    except TimeoutError:
        raise DeadlineExceeded(
            f"Fetching {field_name} took longer than {policy.timeout_s:g} s",
            hint="Use a faster source or upload the file (limit: MVCORE_FETCH_TIMEOUT).",
            details={"field": field_name, "limit": "MVCORE_FETCH_TIMEOUT"},
        ) from None
    except httpx.TooManyRedirects:
        raise BadInput(
            f"{field_name} redirects more than {policy.max_redirects} times",
            details={"field": field_name, "limit": "MVCORE_FETCH_MAX_REDIRECTS"},
        ) from None
    except httpx.HTTPError:
        raise FetchRefused(field_name) from None
    finally:
        partial.unlink(missing_ok=True)
    return target


async def _stream(url: httpx.URL, partial: Path, policy: FetchPolicy, field_name: str) -> None:
    transport = PolicyTransport(policy, field_name)
    timeout = httpx.Timeout(policy.timeout_s, connect=min(10.0, policy.timeout_s))
    async with (
        httpx.AsyncClient(
            transport=transport,
            trust_env=False,
            follow_redirects=True,
            max_redirects=policy.max_redirects,
            timeout=timeout,
        ) as client,
        client.stream("GET", url) as response,
    ):
        if response.status_code >= 400:
            raise BadInput(
                f"Fetching {field_name} failed with HTTP {response.status_code}",
                hint="Check that the URL serves the file.",
                details={"field": field_name, "status": response.status_code},
            )
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > policy.max_bytes:
            raise _too_large(policy, field_name)
        size = 0
        with open(partial, "wb") as out:
            async for chunk in response.aiter_bytes(1 << 16):
                size += len(chunk)
                if size > policy.max_bytes:
                    raise _too_large(policy, field_name)
                out.write(chunk)


def _too_large(policy: FetchPolicy, field_name: str) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"{field_name}: the file is larger than {policy.max_bytes} bytes",
        hint="Use a smaller file, or raise MVCORE_MAX_UPLOAD_BYTES on the server.",
        details={"field": field_name, "limit": "MVCORE_MAX_UPLOAD_BYTES"},
    )


__all__ = [
    "REFUSED",
    "FetchPolicy",
    "FetchRefused",
    "fetch_to_file",
    "host_matches",
    "is_public",
    "parse_url",
]
