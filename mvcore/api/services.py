"""Everything a running API process holds, built once in ``create_app``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mvcore.api.events import EventHub
from mvcore.config.resolver import Resolution
from mvcore.config.snapshot import Snapshot
from mvcore.config.store import FlavorStore
from mvcore.errors import MvcoreError
from mvcore.generators.context import ConfigBundle, GenContext
from mvcore.jobs.service import JobService
from mvcore.settings import Settings


@dataclass
class Services:
    settings: Settings
    store: FlavorStore
    ctx: GenContext
    jobs: JobService
    events: EventHub = field(default_factory=EventHub)
    reloader: Any = None

    def resolve(self, snapshot: Snapshot, flavor: str | None, strict: bool | None) -> Resolution:
        return snapshot.resolve(flavor, strict=self.settings.strict_flavor if strict is None else strict)

    def bundle(self, snapshot: Snapshot, flavor: str | None, strict: bool | None) -> ConfigBundle:
        return ConfigBundle.from_resolution(self.resolve(snapshot, flavor, strict))


def error_body(exc: MvcoreError) -> dict[str, Any]:
    return {"detail": exc.to_detail()}
