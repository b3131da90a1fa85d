"""Flavor endpoints: the original list, debug info, and the new flavor API."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from litestar import Controller, Response, get
from litestar.openapi import ResponseSpec
from litestar.params import PathParameter, QueryParameter
from litestar.response import ServerSentEvent, ServerSentEventMessage

from mvcore.api import wire
from mvcore.api.deps import ServicesDep, SettingsDep, StoreDep

TypeFilter = Annotated[str | None, QueryParameter(name="type", max_length=64)]
# /flavors/status and /flavors/events are routes of their own: a flavor by those names cannot be shown here
FlavorName = Annotated[
    str,
    PathParameter(
        pattern=r"^(?!(?:status|events)$)[\s\S]+$",
        description="A flavor name (not 'status' or 'events', which are the routes beside this one)",
    ),
]
StrictQuery = Annotated[bool | None, QueryParameter(name="strict_flavor")]


class FlavorController(Controller):
    """Reads of the live flavor store; the two hot reads answer pre-encoded JSON (``WireCache``)."""

    path = "/api/mv"
    tags = ["flavors"]

    @get(
        "/get_config_flavors",
        summary="Available config flavor names (original API)",
        responses={200: ResponseSpec(wire.FlavorNames, description="The flavor names, default first")},
    )
    async def get_config_flavors(self, store: StoreDep, services: ServicesDep) -> Response[bytes]:
        snap = store.current
        body = services.wire_cache.get(snap, ("names",), lambda: {"flavors": snap.names()})
        return _json_response(body)

    @get("/config/debug", summary="What the server is running with (no secrets)")
    async def config_debug(self, services: ServicesDep, settings: SettingsDep) -> wire.ConfigDebug:
        snap = services.store.current
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
            "errors": [wire.typed(wire.Issue, i.to_dict()) for i in snap.errors()],
        }

    @get("/flavors", summary="Every flavor with description, source and status")
    async def list_flavors(self, store: StoreDep) -> wire.FlavorList:
        snap = store.current
        rows = []
        for name, status in sorted(snap.statuses.items()):
            row = status.to_dict()
            row["usable"] = snap.has(name)
            rows.append(row)
        body = {
            "generation": snap.generation,
            "flavors": rows,
            "shadowed": [s.to_dict() for s in snap.shadowed],
        }
        return wire.typed(wire.FlavorList, body)

    @get("/flavors/status", summary="Reload status: generation, last reload, errors")
    async def flavors_status(self, services: ServicesDep) -> wire.FlavorsStatus:
        body = services.store.current.status_wire()
        body["watch"] = services.watch_mode
        return wire.typed(wire.FlavorsStatus, body)

    @get(
        "/flavors/events",
        summary="Server-sent events, one per reload",
        responses={
            200: ResponseSpec(
                wire.EventMessage,
                media_type="text/event-stream",
                description="hello, then one event per reload",
            )
        },
    )
    async def flavor_events(self, services: ServicesDep) -> ServerSentEvent:
        first = {"generation": services.store.current.generation}

        async def messages() -> AsyncIterator[ServerSentEventMessage]:
            async for item in services.events.stream(first):
                yield ServerSentEventMessage(data=json.dumps(item["data"]), event=item["event"])

        return ServerSentEvent(messages())

    @get(
        "/flavors/{name:str}",
        summary="Resolved values of a flavor with provenance",
        responses={200: ResponseSpec(wire.FlavorResolution, description="Resolved values with provenance")},
    )
    async def show_flavor(
        self,
        services: ServicesDep,
        name: FlavorName,
        config_type: TypeFilter = None,
        strict_flavor: StrictQuery = None,
    ) -> Response[bytes]:
        snap = services.store.current

        def build() -> dict[str, Any]:
            resolution = services.resolve(snap, name, strict_flavor)
            if config_type is not None:
                snap.config(name, config_type, strict=bool(strict_flavor))
            return resolution.to_wire(config_type)

        key = ("show", name, config_type, strict_flavor)
        return _json_response(services.wire_cache.get(snap, key, build))


def _json_response(body: bytes) -> Response[bytes]:
    return Response(body, media_type="application/json")
