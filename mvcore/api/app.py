"""``create_app(settings)``: the whole server, on embedded defaults when nothing is set."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from litestar import Controller, Litestar, Router, get
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.file_system import BaseLocalFileSystem
from litestar.response import File
from litestar.static_files import create_static_files_router

from mvcore import __version__, logs
from mvcore.api import wire
from mvcore.api.audio import AudioController
from mvcore.api.auth import auth_middleware_factory, json_limit_middleware_factory
from mvcore.api.deps import DEPENDENCIES, ServicesDep
from mvcore.api.flavor_editor import FlavorEditorController
from mvcore.api.flavors import FlavorController
from mvcore.api.generators import GeneratorController
from mvcore.api.head import head_as_get
from mvcore.api.jobs import JobController
from mvcore.api.media import MediaController
from mvcore.api.media_links import MediaLinks, sign_responses
from mvcore.api.openapi import document_contract, openapi_config
from mvcore.api.problems import EXCEPTION_HANDLERS
from mvcore.api.projects import ProjectsPlugin
from mvcore.api.services import Services
from mvcore.config.store import FlavorStore
from mvcore.generators.context import GenContext, build_context
from mvcore.jobs.service import JobService
from mvcore.media.scratch import sweep_scratch
from mvcore.providers.base import Provider
from mvcore.settings import Settings

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
PAGES = {
    "/": "index.html",
    "/create": "create.html",
    "/quick-gen": "quick-gen.html",
    "/flavors": "flavors.html",
    "/projects": "projects.html",
}


def build_services(
    settings: Settings,
    *,
    store: FlavorStore | None = None,
    extra_providers: Mapping[str, Provider] | None = None,
) -> Services:
    logs.configure(debug_mode=settings.debug_mode, secrets=settings.secrets())
    from mvcore.providers.catalogue import app_catalogue, app_plugin_host

    store = store or FlavorStore.from_settings(settings, app_plugin_host(settings))
    plugin_providers = store.host.providers(settings)
    ctx = build_context(
        settings, {**plugin_providers, **(extra_providers or {})}, models=app_catalogue(store.host)
    )
    return Services(settings=settings, store=store, ctx=ctx, jobs=_job_service(settings, ctx))


def _job_service(settings: Settings, ctx: GenContext) -> JobService:
    if settings.redis_url:
        from mvcore.jobs.redis_store import RedisJobService

        return RedisJobService(ctx, settings.redis_url)
    return JobService(ctx)


class StaticFileSystem(BaseLocalFileSystem):
    """The static files' file system: a name the OS refuses is a file that does not exist.

    Without this, ``/static/a%00b`` (ValueError: embedded null byte) or a 10,000-character name
    (OSError: File name too long) were answered with a 500.
    """

    async def info(self, path: Any, **kwargs: Any) -> Any:
        try:
            return await super().info(path, **kwargs)
        except (ValueError, OSError):
            raise FileNotFoundError(path) from None


def web_router() -> list[Any]:
    handlers: list[Any] = []
    for path, page in PAGES.items():
        file = WEB_DIR / page

        def make(file: Path, path: str) -> Any:
            @get(path, include_in_schema=False, name=f"page:{file.stem}")
            async def page_handler() -> File:
                return File(
                    file, media_type="text/html", content_disposition_type="inline", filename=file.name
                )

            return page_handler

        if file.exists():
            handlers.append(make(file, path))
    if (WEB_DIR / "static").is_dir():
        handlers.append(
            create_static_files_router(
                "/static",
                directories=[WEB_DIR / "static"],
                file_system=StaticFileSystem(),
                include_in_schema=False,
            )
        )
    return handlers


# The API's controllers, one per domain; a new domain adds its controller on a line of its own.
CONTROLLERS: list[type[Controller]] = [
    FlavorController,
    GeneratorController,
    MediaController,
    AudioController,
    JobController,
    FlavorEditorController,
]


@get("/health", summary="Liveness and what is loaded")
async def health(services: ServicesDep) -> wire.Health:
    snap = services.store.current
    return {
        "status": "ok",
        "version": __version__,
        "generation": snap.generation,
        "flavors": len(snap.names()),
        "provider": services.ctx.default_provider,
    }


@asynccontextmanager
async def lifespan(app: Litestar) -> AsyncIterator[None]:
    """Start the reload watcher and the job service with the app; stop them with it."""
    services: Services = app.state["services"]
    settings = services.settings
    services.events.bind(asyncio.get_running_loop())
    unsubscribe = services.store.subscribe(services.events.publish)
    if settings.watch != "off":
        from mvcore.config.reload import Reloader

        services.reloader = Reloader.from_settings(services.store, settings)
        services.reloader.start()
    await asyncio.to_thread(sweep_scratch, services.ctx.scratch, max_age_s=settings.scratch_max_age_s)
    await services.jobs.start()
    logs.event(
        "server_ready",
        logging.INFO,
        flavors=services.store.current.names(),
        provider=services.ctx.default_provider,
        watch=services.watch_mode,
    )
    try:
        yield
    finally:
        services.events.close()
        unsubscribe()
        if services.reloader is not None:
            services.reloader.stop()
        await services.jobs.stop()


def create_app(
    settings: Settings | None = None,
    *,
    store: FlavorStore | None = None,
    extra_providers: Mapping[str, Provider] | None = None,
) -> Litestar:
    settings = settings or Settings()
    services = build_services(settings, store=store, extra_providers=extra_providers)
    cors = (
        CORSConfig(allow_origins=settings.cors_origins, allow_headers=["*"])
        if settings.cors_origins
        else None
    )
    links = MediaLinks.from_settings(settings)
    app = Litestar(
        route_handlers=[health, *CONTROLLERS, *web_router()],
        dependencies=DEPENDENCIES,
        exception_handlers=EXCEPTION_HANDLERS,
        plugins=[ProjectsPlugin()],  # /api/mv/projects and the project pipeline's lifespan
        # Auth costs nothing when it is off: the middleware is not installed at all.
        middleware=[
            *([auth_middleware_factory(settings, links)] if settings.auth_enabled else []),
            json_limit_middleware_factory(settings.max_json_bytes, settings.max_json_depth),
        ],
        cors_config=cors,
        after_request=sign_responses(links) if links is not None else None,
        lifespan=[lifespan],
        openapi_config=openapi_config(),
        request_max_body_size=settings.max_upload_bytes,
        logging_config=logs.litestar_logging_config(),
        debug=False,
        state=State({"services": services}),
    )
    app.asgi_handler = head_as_get(app.asgi_handler)  # HEAD of pages and media (mvcore.api.head)
    document_contract(app.openapi_schema)
    return app


__all__ = ["Router", "create_app"]
