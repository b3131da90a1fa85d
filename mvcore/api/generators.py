"""The five generator endpoints, built from one table (paths and fields of the original API).

The endpoints differ only in their path, request model and answer, so each is one row of
``ROUTES``; :func:`generator_handler` turns a row into a typed Litestar handler (its request body
and response model are real annotations, so validation and the OpenAPI document follow the row).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from litestar import Controller, Response, post
from litestar.enums import RequestEncodingType
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import ResponseSpec
from litestar.params import Body, QueryParameter
from pydantic import BaseModel

from mvcore.api import wire
from mvcore.api.deps import ServicesDep
from mvcore.generators.registry import GENERATORS, check_before_queueing

AsyncFlag = Annotated[bool, QueryParameter(name="async", description="Answer 202 with a job id at once")]
StrictFlag = Annotated[
    bool | None, QueryParameter(name="strict_flavor", description="404 instead of falling back to 'default'")
]


@dataclass(frozen=True)
class GeneratorRoute:
    kind: str
    paths: tuple[str, ...]
    summary: str
    answer: type
    include_in_schema: bool = True


ROUTES = (
    GeneratorRoute(
        "create_scenes", ("/create_scenes",), "Write scenes from the flavor's scene prompt", wire.ScenesResult
    ),
    GeneratorRoute(
        "generate_character_reference",
        ("/generate_character_reference",),
        "Character reference images",
        wire.CharacterReferenceResult,
    ),
    GeneratorRoute("generate_video", ("/generate_video",), "One video clip", wire.VideoResult),
    GeneratorRoute("lipsync", ("/lipsync",), "Put (a clip of) the song onto a video clip", wire.VideoResult),
    GeneratorRoute(
        "stitch_videos",
        ("/stitch-videos",),
        "Concatenate clips, optionally with the song as overlay",
        wire.StitchResult,
    ),
    # the spellings other clients of the original used; one documented path is enough
    GeneratorRoute(
        "stitch_videos", ("/stitch_video", "/stitch_videos"), "", wire.StitchResult, include_in_schema=False
    ),
)


async def dispatch(
    services: ServicesDep, kind: str, data: BaseModel, run_async: bool, strict: bool | None
) -> Any:
    """Resolve the flavor once (pinned for the whole job), then run or queue the generator."""
    snapshot = services.store.current
    flavor = getattr(data, "config_flavor", None)
    overrides = getattr(data, "config_overrides", None)
    resolved = services.bundle(snapshot, flavor, strict, overrides)
    check_before_queueing(kind, data, resolved, services.ctx)  # a refused value: 400, no job record
    bundle = resolved.to_dict()
    request = data.model_dump(mode="json")
    if run_async:
        record = await services.jobs.submit(kind, request, bundle)
        queued: wire.JobQueued = {
            "job_id": record.job_id,
            "status": "queued",
            "status_url": f"/api/mv/jobs/{record.job_id}",
        }
        return Response(queued, status_code=202)
    return await services.jobs.run(kind, request, bundle)


def generator_handler(route: GeneratorRoute) -> HTTPRouteHandler:
    """One POST handler for ``route``: its body is the generator's request model."""
    model = GENERATORS[route.kind].request_model

    async def handler(
        self: Controller, services: ServicesDep, data: Any, async_: bool = False, strict: bool | None = None
    ) -> Any:
        return await dispatch(services, route.kind, data, async_, strict)

    handler.__annotations__ = {
        "self": Controller,
        "services": ServicesDep,
        "data": Annotated[model, Body(media_type=RequestEncodingType.JSON)],
        "async_": AsyncFlag,
        "strict": StrictFlag,
        "return": route.answer,
    }
    handler.__name__ = handler.__qualname__ = route.kind
    decorate: Callable[[Callable[..., Awaitable[Any]]], HTTPRouteHandler] = post(
        list(route.paths),
        status_code=200,
        summary=route.summary or None,
        include_in_schema=route.include_in_schema,
        name=f"{route.kind}:{route.paths[0]}",
        responses={202: ResponseSpec(wire.JobQueued, description="Queued (?async=true): poll status_url")},
    )
    return decorate(handler)


class GeneratorController(Controller):
    """``POST /api/mv/{create_scenes,generate_character_reference,generate_video,lipsync,stitch-videos}``."""

    path = "/api/mv"
    tags = ["mv"]

    create_scenes = generator_handler(ROUTES[0])
    generate_character_reference = generator_handler(ROUTES[1])
    generate_video = generator_handler(ROUTES[2])
    lipsync = generator_handler(ROUTES[3])
    stitch_videos = generator_handler(ROUTES[4])
    stitch_videos_alias = generator_handler(ROUTES[5])
