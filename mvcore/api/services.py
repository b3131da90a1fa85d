"""Everything a running API process holds, built once in ``create_app``.

The one ``Services`` lives in ``app.state["services"]``; controllers never hold it in a closure,
they receive its parts through Litestar dependency injection (:mod:`mvcore.api.deps`), read at
request time -- so a test (or an operator hook) that swaps ``services.ctx.media`` is seen at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mvcore.api.events import EventHub
from mvcore.api.wire_cache import WireCache
from mvcore.config.editing import FlavorEditor
from mvcore.config.overrides import apply_overrides, check_overrides
from mvcore.config.resolver import Resolution
from mvcore.config.snapshot import Snapshot
from mvcore.config.store import FlavorStore
from mvcore.errors import MvcoreError
from mvcore.generators.context import ConfigBundle, GenContext
from mvcore.jobs.service import JobService
from mvcore.settings import Settings

if TYPE_CHECKING:
    from mvcore.config.reload import Reloader


@dataclass
class Services:
    settings: Settings
    store: FlavorStore
    ctx: GenContext
    jobs: JobService
    events: EventHub = field(default_factory=EventHub)
    reloader: Reloader | None = None
    wire_cache: WireCache = field(default_factory=WireCache)
    _editor: FlavorEditor | None = field(default=None, repr=False)

    @property
    def flavor_editor(self) -> FlavorEditor:
        """The process's flavor editor, made on first use (its history lives in the data dir)."""
        if self._editor is None:
            history = self.settings.data_dir / "flavor_history"
            self._editor = FlavorEditor(self.store, history, self.settings.flavor_history)
        return self._editor

    @property
    def watch_mode(self) -> str:
        return self.reloader.mode if self.reloader is not None else "off"

    def resolve(self, snapshot: Snapshot, flavor: str | None, strict: bool | None) -> Resolution:
        return snapshot.resolve(flavor, strict=self.settings.strict_flavor if strict is None else strict)

    def bundle(
        self,
        snapshot: Snapshot,
        flavor: str | None,
        strict: bool | None,
        overrides: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> ConfigBundle:
        """The resolved config a generator gets: flavor, then the request's ``config_overrides``."""
        resolution = self.resolve(snapshot, flavor, strict)
        if overrides:
            check_overrides(overrides, snapshot.registry, self.settings.overridable_keys)
            resolution = apply_overrides(resolution, overrides)
        return ConfigBundle.from_resolution(resolution)


def error_body(exc: MvcoreError) -> dict[str, Any]:
    return {"detail": exc.to_detail()}
