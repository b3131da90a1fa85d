"""The dependencies controllers ask for by name (Litestar ``Provide``), registered on the app.

Each provider reads the one :class:`~mvcore.api.services.Services` in ``app.state`` at request
time, so handlers declare what they use (``ctx: GenContext``, ``jobs: JobService`` ...) instead of
closing over a services object, and tests can build an app and swap a part without re-routing.
Handlers annotate them with the aliases below (``ctx: CtxDep``): injected by name, and not
re-validated per request (they are our own objects, not caller input).
"""

from __future__ import annotations

from typing import TypeAlias, cast

from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import SkipValidation

from mvcore.api.services import Services
from mvcore.config.store import FlavorStore
from mvcore.generators.context import GenContext
from mvcore.jobs.service import JobService
from mvcore.settings import Settings


def provide_services(state: State) -> Services:
    return cast(Services, state["services"])


def provide_store(state: State) -> FlavorStore:
    return provide_services(state).store


def provide_ctx(state: State) -> GenContext:
    return provide_services(state).ctx


def provide_jobs(state: State) -> JobService:
    return provide_services(state).jobs


def provide_settings(state: State) -> Settings:
    return provide_services(state).settings


DEPENDENCIES: dict[str, Provide] = {
    "services": Provide(provide_services, sync_to_thread=False),
    "store": Provide(provide_store, sync_to_thread=False),
    "ctx": Provide(provide_ctx, sync_to_thread=False),
    "jobs": Provide(provide_jobs, sync_to_thread=False),
    "settings": Provide(provide_settings, sync_to_thread=False),
}


ServicesDep: TypeAlias = NamedDependency[SkipValidation[Services]]
StoreDep: TypeAlias = NamedDependency[SkipValidation[FlavorStore]]
CtxDep: TypeAlias = NamedDependency[SkipValidation[GenContext]]
JobsDep: TypeAlias = NamedDependency[SkipValidation[JobService]]
SettingsDep: TypeAlias = NamedDependency[SkipValidation[Settings]]
