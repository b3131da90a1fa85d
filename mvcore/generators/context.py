"""What a generator needs besides its request: config, provider, storage.

``ConfigBundle`` is the serializable slice of a Resolution a job carries;
``GenContext`` is built once per process (API or worker) from Settings.
"""

from __future__ import annotations

import asyncio
import dataclasses
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mvcore import logs
from mvcore.config.model_checks import ModelCatalogue
from mvcore.config.resolver import Resolution
from mvcore.errors import BadInput, DeadlineExceeded
from mvcore.providers.base import Progress, Provider, no_progress
from mvcore.settings import Settings
from mvcore.storage.media_store import MediaStore


@dataclass(frozen=True)
class ConfigBundle:
    """Resolved values of every config type plus where they came from."""

    meta: Mapping[str, Any]
    values: Mapping[str, Mapping[str, Any]]

    @classmethod
    def from_resolution(cls, resolution: Resolution) -> ConfigBundle:
        return cls(
            resolution.meta(),
            {name: dict(config.values) for name, config in resolution.configs.items()},
        )

    def to_dict(self) -> dict[str, Any]:
        return {"meta": dict(self.meta), "values": {k: dict(v) for k, v in self.values.items()}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ConfigBundle:
        return cls(dict(data["meta"]), {k: dict(v) for k, v in data["values"].items()})

    def section(self, config_type: str) -> Mapping[str, Any]:
        values = self.values.get(config_type, {})
        logs.debug_event(
            "config_flavor_selected", flavor=self.meta.get("flavor_used"), config_type=config_type
        )
        # the full values (scrubbed like every field), as the original's scene_prompts_config={...}
        logs.debug_event(
            "flavor_config_loaded",
            flavor=self.meta.get("flavor_used"),
            config_type=config_type,
            **{f"{config_type}_config": dict(values)},
        )
        return values


@dataclass(kw_only=True)
class GenContext:
    settings: Settings
    providers: dict[str, Provider]
    media: MediaStore
    default_provider: str
    scratch: Path = field(default_factory=lambda: Path(tempfile.gettempdir()))
    progress: Progress = no_progress
    #: the models requests are checked against (shipped catalogue + plugins)
    models: ModelCatalogue = field(default_factory=lambda: _shipped_models())

    def provider(self, name: str | None = None) -> Provider:
        key = name or self.default_provider
        provider = self.providers.get(key)
        if provider is None:
            raise BadInput(
                f"Unknown backend {key!r}",
                alternatives=sorted(self.providers),
                hint="Use one of the configured providers; 'replicate' needs REPLICATE_API_TOKEN.",
                details={"field": "backend"} if name else None,
            )
        return DeadlineProvider(provider, self.settings.provider_timeout_s)

    def with_progress(self, progress: Progress) -> GenContext:
        return dataclasses.replace(self, progress=progress)


class DeadlineProvider:
    """A provider whose generation calls are cut off after ``timeout_s`` (MVCORE_PROVIDER_TIMEOUT).

    Whatever a provider does -- a plugin's backend that never answers, a network call with no
    timeout of its own -- the request ends with DeadlineExceeded (504 TIMEOUT) instead of hanging.
    """

    CALLS = frozenset({"generate_scenes", "generate_images", "generate_video", "lipsync"})

    def __init__(self, inner: Provider, timeout_s: float) -> None:
        self.inner = inner
        self.timeout_s = timeout_s
        self.name: str = getattr(inner, "name", "provider")

    def __getattr__(self, attr: str) -> Any:
        value = getattr(self.inner, attr)
        if attr not in self.CALLS:
            return value

        async def call(*args: Any, **kwargs: Any) -> Any:
            # a little grace, so a provider with a deadline of its own (replicate) reports -- and
            # cancels its remote prediction -- first
            deadline = asyncio.timeout(self.timeout_s + min(5.0, 0.1 * self.timeout_s))
            try:
                async with deadline:
                    return await value(*args, **kwargs)
            except TimeoutError:
                if not deadline.expired():
                    raise  # the provider's own timeout, not ours
                raise DeadlineExceeded(
                    f"Provider {self.name!r} did not answer within {self.timeout_s:g} s ({attr})",
                    hint="Try again later, or raise MVCORE_PROVIDER_TIMEOUT on the server.",
                    details={"provider": self.name, "step": attr, "timeout_s": self.timeout_s},
                ) from None

        return call


def _shipped_models() -> ModelCatalogue:
    from mvcore.providers.catalogue import shipped_catalogue

    return shipped_catalogue()


def build_providers(
    settings: Settings, extra: Mapping[str, Any] | None = None, models: ModelCatalogue | None = None
) -> dict[str, Provider]:
    from mvcore.providers.offline import OfflineProvider

    providers: dict[str, Provider] = {"offline": OfflineProvider(settings)}
    if settings.replicate_api_token is not None:
        from mvcore.providers.replicate import ReplicateProvider

        providers["replicate"] = ReplicateProvider(
            settings.replicate_api_token.get_secret_value(),
            base_url=settings.replicate_base_url,
            timeout_s=settings.provider_timeout_s,
            poll_interval_s=settings.replicate_poll_interval_s,
            models=models,
        )
    for name, provider in (extra or {}).items():
        providers.setdefault(name, provider)
    return providers


def build_context(
    settings: Settings,
    extra_providers: Mapping[str, Any] | None = None,
    *,
    models: ModelCatalogue | None = None,
) -> GenContext:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    scratch = settings.data_dir / "tmp"
    scratch.mkdir(parents=True, exist_ok=True)
    models = models or _shipped_models()
    providers = build_providers(settings, extra_providers, models)
    default = settings.effective_provider
    if default not in providers:
        default = "offline"
    return GenContext(
        settings=settings,
        providers=providers,
        media=MediaStore.from_settings(settings),
        default_provider=default,
        scratch=scratch,
        models=models,
    )
