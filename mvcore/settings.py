"""One Settings object, read from the environment.

Names the original system used (``REPLICATE_API_TOKEN``, ``MV_DEBUG_MODE``,
``STORAGE_BUCKET``, ``AWS_*`` ...) keep their names so existing deployments
keep working; everything new starts with ``MVCORE_``.
"""

from __future__ import annotations

import hashlib
import hmac
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", populate_by_name=True)

    # --- flavors -----------------------------------------------------------
    flavors_dirs: Annotated[list[Path], NoDecode] = Field(
        default_factory=lambda: [Path("flavors")],
        validation_alias=AliasChoices("MVCORE_FLAVORS_DIR", "flavors_dirs"),
    )
    strict_flavor: bool = Field(False, validation_alias=AliasChoices("MVCORE_STRICT_FLAVOR", "strict_flavor"))
    watch: Literal["auto", "inotify", "poll", "off"] = Field(
        "auto", validation_alias=AliasChoices("MVCORE_WATCH", "watch")
    )
    debounce_ms: int = Field(50, ge=0, validation_alias=AliasChoices("MVCORE_DEBOUNCE_MS", "debounce_ms"))
    plugins: Annotated[list[str] | None, NoDecode] = Field(
        None, validation_alias=AliasChoices("MVCORE_PLUGINS", "plugins")
    )
    disable_plugins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias=AliasChoices("MVCORE_DISABLE_PLUGINS", "disable_plugins")
    )

    # --- generation --------------------------------------------------------
    provider: Literal["auto", "offline", "replicate"] = Field(
        "auto", validation_alias=AliasChoices("MVCORE_PROVIDER", "provider")
    )
    replicate_api_token: SecretStr | None = Field(
        None, validation_alias=AliasChoices("REPLICATE_API_TOKEN", "replicate_api_token")
    )
    replicate_base_url: str | None = Field(
        None, validation_alias=AliasChoices("MVCORE_REPLICATE_BASE_URL", "replicate_base_url")
    )
    replicate_poll_interval_s: float = Field(
        1.0,
        gt=0,
        validation_alias=AliasChoices("MVCORE_REPLICATE_POLL_INTERVAL", "replicate_poll_interval_s"),
    )
    provider_timeout_s: float = Field(
        900.0, gt=0, validation_alias=AliasChoices("MVCORE_PROVIDER_TIMEOUT", "provider_timeout_s")
    )
    media_timeout_s: float = Field(
        600.0, gt=0, validation_alias=AliasChoices("MVCORE_MEDIA_TIMEOUT", "media_timeout_s")
    )
    offline_long_side: int = Field(
        1280, ge=64, le=3840, validation_alias=AliasChoices("MVCORE_OFFLINE_LONG_SIDE", "offline_long_side")
    )
    offline_fps: int = Field(
        24, ge=1, le=60, validation_alias=AliasChoices("MVCORE_OFFLINE_FPS", "offline_fps")
    )
    debug_mode: bool = Field(False, validation_alias=AliasChoices("MV_DEBUG_MODE", "debug_mode"))

    # --- storage -----------------------------------------------------------
    data_dir: Path = Field(Path("data"), validation_alias=AliasChoices("MVCORE_DATA_DIR", "data_dir"))
    storage_bucket: str | None = Field(
        None, validation_alias=AliasChoices("STORAGE_BUCKET", "storage_bucket")
    )
    serve_from_cloud: bool = Field(
        False, validation_alias=AliasChoices("SERVE_FROM_CLOUD", "serve_from_cloud")
    )
    presigned_url_expiry: int = Field(
        3600, gt=0, validation_alias=AliasChoices("PRESIGNED_URL_EXPIRY", "presigned_url_expiry")
    )
    aws_access_key_id: SecretStr | None = Field(
        None, validation_alias=AliasChoices("AWS_ACCESS_KEY_ID", "aws_access_key_id")
    )
    aws_secret_access_key: SecretStr | None = Field(
        None, validation_alias=AliasChoices("AWS_SECRET_ACCESS_KEY", "aws_secret_access_key")
    )
    aws_region: str = Field(
        "us-east-1", validation_alias=AliasChoices("AWS_REGION", "AWS_DEFAULT_REGION", "aws_region")
    )
    aws_endpoint_url: str | None = Field(
        None, validation_alias=AliasChoices("AWS_ENDPOINT_URL", "aws_endpoint_url")
    )

    # --- API ---------------------------------------------------------------
    api_key: SecretStr | None = Field(None, validation_alias=AliasChoices("API_KEY", "api_key"))
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias=AliasChoices("CORS_ORIGINS", "cors_origins")
    )
    max_upload_bytes: int = Field(
        100 * 1024 * 1024, gt=0, validation_alias=AliasChoices("MVCORE_MAX_UPLOAD_BYTES", "max_upload_bytes")
    )
    max_json_bytes: int = Field(
        1024 * 1024, gt=0, validation_alias=AliasChoices("MVCORE_MAX_JSON_BYTES", "max_json_bytes")
    )
    redis_url: str | None = Field(None, validation_alias=AliasChoices("MVCORE_REDIS_URL", "redis_url"))

    # --- jobs: delivery, retries, drain (mvcore/jobs) ------------------------
    job_max_attempts: int = Field(
        3, ge=1, le=20, validation_alias=AliasChoices("MVCORE_JOB_MAX_ATTEMPTS", "job_max_attempts")
    )
    job_retry_backoff_s: float = Field(
        1.0, ge=0, le=600, validation_alias=AliasChoices("MVCORE_JOB_RETRY_BACKOFF", "job_retry_backoff_s")
    )
    job_retry_backoff_max_s: float = Field(
        30.0, ge=0, le=3600,
        validation_alias=AliasChoices("MVCORE_JOB_RETRY_BACKOFF_MAX", "job_retry_backoff_max_s"),
    )
    job_visibility_timeout_s: float = Field(
        45.0, ge=1, le=86400,
        validation_alias=AliasChoices("MVCORE_JOB_VISIBILITY_TIMEOUT", "job_visibility_timeout_s"),
    )
    job_drain_grace_s: float = Field(
        30.0, ge=0, le=3600, validation_alias=AliasChoices("MVCORE_JOB_DRAIN_GRACE", "job_drain_grace_s")
    )
    job_no_worker_wait_s: float = Field(
        10.0, ge=0.1, le=3600,
        validation_alias=AliasChoices("MVCORE_JOB_NO_WORKER_WAIT", "job_no_worker_wait_s"),
    )
    job_queue_max: int = Field(
        100, ge=1, le=1_000_000, validation_alias=AliasChoices("MVCORE_JOB_QUEUE_MAX", "job_queue_max")
    )
    job_reaper_interval_s: float = Field(
        10.0, ge=0.2, le=3600,
        validation_alias=AliasChoices("MVCORE_JOB_REAPER_INTERVAL", "job_reaper_interval_s"),
    )

    @field_validator("flavors_dirs", mode="before")
    @classmethod
    def _paths(cls, value: object) -> object:
        if isinstance(value, str):
            import os

            return [p.strip() for p in value.split(os.pathsep if os.pathsep in value else ",") if p.strip()]
        return value

    @field_validator("plugins", "disable_plugins", "cors_origins", mode="before")
    @classmethod
    def _lists(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    # --- derived -----------------------------------------------------------
    @property
    def effective_provider(self) -> str:
        if self.provider != "auto":
            return self.provider
        return "replicate" if self.replicate_api_token else "offline"

    @property
    def auth_enabled(self) -> bool:
        return bool(self.api_key and self.api_key.get_secret_value().strip())

    def check_api_key(self, presented: str | None) -> bool:
        """Constant-time check against each configured key (plain or ``hash:<sha256>``)."""
        if not self.auth_enabled:
            return True
        if not presented:
            return False
        assert self.api_key is not None
        ok = False
        digest = hashlib.sha256(presented.encode()).hexdigest()
        for key in (k.strip() for k in self.api_key.get_secret_value().split(",")):
            if not key:
                continue
            if key.startswith("hash:"):
                ok |= hmac.compare_digest(key[5:].lower(), digest)
            else:
                ok |= hmac.compare_digest(key.encode(), presented.encode())
        return ok

    def secrets(self) -> list[str]:
        """Every secret value, so logs and bodies can be scrubbed of them."""
        out: list[str] = []
        for value in (
            self.replicate_api_token,
            self.aws_secret_access_key,
            self.aws_access_key_id,
            self.api_key,
        ):
            if value is not None and value.get_secret_value():
                out.extend(v for v in value.get_secret_value().split(",") if len(v) >= 4)
        return out


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
