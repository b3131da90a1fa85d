"""Every generator by job kind: the single table the API and the workers share."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from mvcore.generators.character_reference import generate_character_reference, plan_character_reference
from mvcore.generators.context import ConfigBundle, GenContext
from mvcore.generators.lipsync import lipsync, plan_lipsync
from mvcore.generators.requests import (
    CreateScenesRequest,
    GenerateCharacterReferenceRequest,
    GenerateVideoRequest,
    LipsyncRequest,
    StitchVideosRequest,
)
from mvcore.generators.scenes import create_scenes
from mvcore.generators.stitch import stitch_videos
from mvcore.generators.video import generate_video, plan_video
from mvcore.projects.steps import STEP_KINDS, ProjectStepRequest


@dataclass(frozen=True)
class Generator:
    kind: str
    request_model: type[BaseModel]
    run: Callable[[Any, ConfigBundle, GenContext], Awaitable[dict[str, Any]]]
    #: the checks ``run`` makes before its first provider call (raises ``BadInput``), so the API
    #: refuses a ``?async=true`` request with a 400 instead of queueing a job that must fail
    plan: Callable[[Any, ConfigBundle, GenContext], object] | None = None


GENERATORS: dict[str, Generator] = {
    g.kind: g
    for g in (
        Generator("create_scenes", CreateScenesRequest, create_scenes),
        Generator(
            "generate_character_reference",
            GenerateCharacterReferenceRequest,
            generate_character_reference,
            plan_character_reference,
        ),
        Generator("generate_video", GenerateVideoRequest, generate_video, plan_video),
        Generator("lipsync", LipsyncRequest, lipsync, plan_lipsync),
        Generator("stitch_videos", StitchVideosRequest, stitch_videos),
    )
}
# The project pipeline's steps (mvcore.projects.steps) run as jobs like any generator.
GENERATORS.update({kind: Generator(kind, ProjectStepRequest, run) for kind, run in STEP_KINDS.items()})


def check_before_queueing(kind: str, request: BaseModel, bundle: ConfigBundle, ctx: GenContext) -> None:
    """Run the generator's own pre-call checks now (see ``Generator.plan``); nothing is sent.

    Skipped for a backend this process does not have: a provider installed on the workers only
    (a plugin there) is theirs to check.
    """
    plan = GENERATORS[kind].plan
    backend = getattr(request, "backend", None) or ctx.default_provider
    if plan is not None and backend in ctx.providers:
        plan(request, bundle, ctx)


async def execute(
    kind: str, request: Mapping[str, Any], bundle: Mapping[str, Any], ctx: GenContext
) -> dict[str, Any]:
    """Run one generator from plain data (what a job carries)."""
    generator = GENERATORS[kind]
    model = generator.request_model.model_validate(dict(request))
    return await generator.run(model, ConfigBundle.from_dict(bundle), ctx)
