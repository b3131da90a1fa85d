"""Flavor endpoints: the original list, debug info, and the new flavor API."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
from litestar import Response, Router, get
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, QueryParameter
from litestar.response import ServerSentEvent, ServerSentEventMessage

from mvcore.api.services import Services
from mvcore.config.reload import watch_status


@dataclass
class EventMessage:
    """One server-sent event (documentation only): ``hello`` first, then ``reload`` events."""

    event: str
    data: str  # JSON: {"generation": N} for hello, the ReloadEvent for reloads


def flavor_router(services: Services) -> Router:
    store = services.store
    settings = services.settings

    cache = WireCache()

    # The two hot reads answer pre-encoded JSON bytes; ResponseSpec documents the JSON they hold.
    @get(
        "/get_config_flavors",
        summary="Available config flavor names (original API)",
        responses={200: ResponseSpec(dict[str, list[str]], description="The flavor names, default first")},
    )
    async def get_config_flavors() -> Response[bytes]:
        snap = store.current
        return _json_response(cache.get(snap, ("names",), lambda: {"flavors": snap.names()}))

    @get("/config/debug", summary="What the server is running with (no secrets)")
    async def config_debug() -> dict[str, Any]:
        snap = store.current
        default = snap.resolve(None)
        return {
            "debug_mode": settings.debug_mode,
            "provider": services.ctx.default_provider,
            "providers": sorted(services.ctx.providers),
            "storage": {
                "mode": "s3" if settings.storage_bucket else "local",
                "bucket": settings.storage_bucket,
                "serve_from_cloud": settings.serve_from_cloud,
                "presigned_url_expiry": settings.presigned_url_expiry,
                "endpoint_configured": bool(settings.aws_endpoint_url),
            },
            "auth_enabled": settings.auth_enabled,
            "replicate_token_configured": settings.replicate_api_token is not None,
            "strict_flavor": settings.strict_flavor,
            "jobs_backend": "redis" if settings.redis_url else "in-memory",
            "flavors": snap.names(),
            "generation": snap.generation,
            "config_types": snap.registry.names(),
            "default_config": {k: v.to_wire()["values"] for k, v in default.configs.items()},
            "errors": [i.to_dict() for i in snap.errors()],
        }

    @get("/flavors", summary="Every flavor with description, source and status")
    async def list_flavors() -> dict[str, Any]:
        snap = store.current
        rows = []
        for name, status in sorted(snap.statuses.items()):
            row = status.to_dict()
            row["usable"] = snap.has(name)
            rows.append(row)
        return {
            "generation": snap.generation,
            "flavors": rows,
            "shadowed": [s.to_dict() for s in snap.shadowed],
        }

    @get("/flavors/status", summary="Reload status: generation, last reload, errors")
    async def flavors_status() -> dict[str, Any]:
        body = store.current.status_wire()
        reloader = services.reloader
        body["watch"] = watch_status(reloader)
        return body

    @get(
        "/flavors/events",
        summary="Server-sent events, one per reload",
        responses={
            200: ResponseSpec(
                EventMessage, media_type="text/event-stream", description="hello, then one event per reload"
            )
        },
    )
    async def flavor_events() -> ServerSentEvent:
        first = {"generation": store.current.generation}

        async def messages() -> AsyncIterator[ServerSentEventMessage]:
            async for item in services.events.stream(first):
                yield ServerSentEventMessage(data=_json(item["data"]), event=item["event"])

        return ServerSentEvent(messages())

    @get(
        "/flavors/{name:str}",
        summary="Resolved values of a flavor with provenance",
        responses={200: ResponseSpec(dict[str, Any], description="Resolved values with provenance")},
    )
    async def show_flavor(
        name: FromPath[str],
        config_type: Annotated[str | None, QueryParameter(name="type", max_length=64)] = None,
        strict_flavor: Annotated[bool | None, QueryParameter(name="strict_flavor")] = None,
    ) -> Response[bytes]:
        snap = store.current

        def build() -> dict[str, Any]:
            resolution = services.resolve(snap, name, strict_flavor)
            if config_type is not None:
                snap.config(name, config_type, strict=bool(strict_flavor))
            return resolution.to_wire(config_type)

        return _json_response(cache.get(snap, ("show", name, config_type, strict_flavor), build))

    return Router(
        "/api/mv",
        route_handlers=[
            get_config_flavors,
            config_debug,
            list_flavors,
            flavors_status,
            flavor_events,
            show_flavor,
        ],
        tags=["flavors"],
    )


class WireCache:
    """Encoded JSON answers per snapshot generation: a hot read is a dict lookup, no serialization.

    Bounded, and emptied whenever the generation moves, so it never serves a stale answer.
    """

    def __init__(self, limit: int = 512) -> None:
        self.limit = limit
        self.generation = -1
        self.entries: dict[tuple[Any, ...], bytes] = {}

    def get(self, snap: Any, key: tuple[Any, ...], build: Callable[[], Any]) -> bytes:
        if snap.generation != self.generation:
            self.entries, self.generation = {}, snap.generation
        found = self.entries.get(key)
        if found is None:
            found = msgspec.json.encode(build())
            if len(self.entries) < self.limit:
                self.entries[key] = found
        return found


def _json_response(body: bytes) -> Response[bytes]:
    return Response(body, media_type="application/json")


def _json(data: Any) -> str:
    import json

    return json.dumps(data)
