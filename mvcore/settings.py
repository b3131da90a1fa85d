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
    debounce_ms: int = Field(0, ge=0, validation_alias=AliasChoices("MVCORE_DEBOUNCE_MS", "debounce_ms"))
    # --- hot reload (settle rule; see mvcore/config/reload.py) ---------------
    reload_settle_ms: int = Field(
        1000, ge=0, validation_alias=AliasChoices("MVCORE_RELOAD_SETTLE_MS", "reload_settle_ms")
    )
    reload_max_wait_ms: int = Field(
        10_000, ge=0, validation_alias=AliasChoices("MVCORE_RELOAD_MAX_WAIT_MS", "reload_max_wait_ms")
    )
    watch_poll_interval_ms: int = Field(
        250, ge=10, validation_alias=AliasChoices("MVCORE_WATCH_POLL_MS", "watch_poll_interval_ms")
    )
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
    # The original frontend's dev origin by default (the original defaulted to localhost:3000);
    # CORS_ORIGINS="" turns CORS off, a comma-separated list replaces the default.
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["http://localhost:3000", "http://127.0.0.1:3000"],
        validation_alias=AliasChoices("CORS_ORIGINS", "cors_origins"),
    )
    max_upload_bytes: int = Field(
        100 * 1024 * 1024, gt=0, validation_alias=AliasChoices("MVCORE_MAX_UPLOAD_BYTES", "max_upload_bytes")
    )
    max_json_bytes: int = Field(
        1024 * 1024, gt=0, validation_alias=AliasChoices("MVCORE_MAX_JSON_BYTES", "max_json_bytes")
    )
    redis_url: str | None = Field(None, validation_alias=AliasChoices("MVCORE_REDIS_URL", "redis_url"))

    # --- api: signed media links (media URLs we return play without the key) ----
    media_token_secret: SecretStr | None = Field(
        None, validation_alias=AliasChoices("MVCORE_MEDIA_TOKEN_SECRET", "media_token_secret")
    )
    media_token_ttl_s: int = Field(
        3600,
        ge=10,
        le=7 * 24 * 3600,
        validation_alias=AliasChoices("MVCORE_MEDIA_TOKEN_TTL", "media_token_ttl_s"),
    )

    # --- media: scratch sweep (issue 16) -----------------------------------
    scratch_max_age_s: float = Field(
        6 * 3600.0, gt=0, validation_alias=AliasChoices("MVCORE_SCRATCH_MAX_AGE", "scratch_max_age_s")
    )

    # --- hardening: outbound fetches, templates, media limits (issue 16) ----
    fetch_allow_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias=AliasChoices("MVCORE_FETCH_ALLOW_HOSTS", "fetch_allow_hosts")
    )
    fetch_dangerously_allow_private: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        validation_alias=AliasChoices(
            "MVCORE_FETCH_DANGEROUSLY_ALLOW_PRIVATE", "fetch_dangerously_allow_private"
        ),
    )
    fetch_use_env_proxies: bool = Field(
        False, validation_alias=AliasChoices("MVCORE_FETCH_USE_ENV_PROXIES", "fetch_use_env_proxies")
    )
    fetch_max_redirects: int = Field(
        5, ge=0, le=20, validation_alias=AliasChoices("MVCORE_FETCH_MAX_REDIRECTS", "fetch_max_redirects")
    )
    fetch_timeout_s: float = Field(
        120.0, gt=0, validation_alias=AliasChoices("MVCORE_FETCH_TIMEOUT", "fetch_timeout_s")
    )
    max_prompt_chars: int = Field(
        20_000, gt=0, validation_alias=AliasChoices("MVCORE_MAX_PROMPT_CHARS", "max_prompt_chars")
    )
    max_audio_seconds: float = Field(
        1200.0, gt=0, validation_alias=AliasChoices("MVCORE_MAX_AUDIO_SECONDS", "max_audio_seconds")
    )
    max_json_depth: int = Field(
        64, ge=2, le=512, validation_alias=AliasChoices("MVCORE_MAX_JSON_DEPTH", "max_json_depth")
    )
    max_audio_stored_bytes: int = Field(
        50 * 1024 * 1024,
        gt=0,
        validation_alias=AliasChoices("MVCORE_MAX_AUDIO_STORED_BYTES", "max_audio_stored_bytes"),
    )

    @field_validator("fetch_allow_hosts", "fetch_dangerously_allow_private", mode="before")
    @classmethod
    def _host_lists(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip().lower() for part in value.split(",") if part.strip()]
        return value

    @field_validator(
        "replicate_api_token", "api_key", "aws_access_key_id", "aws_secret_access_key", mode="before"
    )
    @classmethod
    def _empty_secret_is_unset(cls, value: object) -> object:
        """``REPLICATE_API_TOKEN=`` (empty, or blanks) means unset, as in a shell or a .env file."""
        if isinstance(value, str) and not value.strip():
            return None
        if isinstance(value, SecretStr) and not value.get_secret_value().strip():
            return None
        return value

    # --- flavor authoring (issue 21) ---------------------------------------
    overridable_keys: Annotated[list[str] | None, NoDecode] = Field(
        None, validation_alias=AliasChoices("MVCORE_OVERRIDABLE_KEYS", "overridable_keys")
    )
    flavor_editing: bool = Field(
        False, validation_alias=AliasChoices("MVCORE_FLAVOR_EDITING", "flavor_editing")
    )
    flavor_history: int = Field(
        20, ge=0, le=1000, validation_alias=AliasChoices("MVCORE_FLAVOR_HISTORY", "flavor_history")
    )

    # --- projects (issue 18: mvcore/projects) --------------------------------
    project_store: Literal["auto", "sqlite", "dynamodb"] = Field(
        "auto", validation_alias=AliasChoices("MVCORE_PROJECT_STORE", "project_store")
    )
    dynamodb_table_name: str | None = Field(
        None, validation_alias=AliasChoices("DYNAMODB_TABLE_NAME", "dynamodb_table_name")
    )
    dynamodb_endpoint: str | None = Field(
        None, validation_alias=AliasChoices("DYNAMODB_ENDPOINT", "dynamodb_endpoint")
    )
    dynamodb_region: str | None = Field(
        None, validation_alias=AliasChoices("DYNAMODB_REGION", "dynamodb_region")
    )
    project_max_scenes: int = Field(
        12, ge=1, le=50, validation_alias=AliasChoices("MVCORE_PROJECT_MAX_SCENES", "project_max_scenes")
    )
    project_clip_concurrency: int = Field(
        2,
        ge=1,
        le=32,
        validation_alias=AliasChoices("MVCORE_PROJECT_CLIP_CONCURRENCY", "project_clip_concurrency"),
    )
    project_step_retries: int = Field(
        2, ge=0, le=10, validation_alias=AliasChoices("MVCORE_PROJECT_STEP_RETRIES", "project_step_retries")
    )
    project_step_timeout_s: float = Field(
        1800.0,
        gt=0,
        validation_alias=AliasChoices("MVCORE_PROJECT_STEP_TIMEOUT", "project_step_timeout_s"),
    )
    project_unclaimed_s: float = Field(
        120.0,
        gt=0,
        validation_alias=AliasChoices("MVCORE_PROJECT_UNCLAIMED_AFTER", "project_unclaimed_s"),
    )
    project_lease_s: float = Field(
        30.0, ge=0.5, validation_alias=AliasChoices("MVCORE_PROJECT_LEASE", "project_lease_s")
    )
    offline_latency_s: float = Field(
        0.0, ge=0, le=60, validation_alias=AliasChoices("MVCORE_OFFLINE_LATENCY", "offline_latency_s")
    )
    offline_call_log: Path | None = Field(
        None, validation_alias=AliasChoices("MVCORE_OFFLINE_CALL_LOG", "offline_call_log")
    )

    # --- jobs: delivery, retries, drain (mvcore/jobs) ------------------------
    job_max_attempts: int = Field(
        3, ge=1, le=20, validation_alias=AliasChoices("MVCORE_JOB_MAX_ATTEMPTS", "job_max_attempts")
    )
    job_retry_backoff_s: float = Field(
        1.0, ge=0, le=600, validation_alias=AliasChoices("MVCORE_JOB_RETRY_BACKOFF", "job_retry_backoff_s")
    )
    job_retry_backoff_max_s: float = Field(
        30.0,
        ge=0,
        le=3600,
        validation_alias=AliasChoices("MVCORE_JOB_RETRY_BACKOFF_MAX", "job_retry_backoff_max_s"),
    )
    job_visibility_timeout_s: float = Field(
        45.0,
        ge=1,
        le=86400,
        validation_alias=AliasChoices("MVCORE_JOB_VISIBILITY_TIMEOUT", "job_visibility_timeout_s"),
    )
    job_drain_grace_s: float = Field(
        30.0, ge=0, le=3600, validation_alias=AliasChoices("MVCORE_JOB_DRAIN_GRACE", "job_drain_grace_s")
    )
    job_no_worker_wait_s: float = Field(
        10.0,
        ge=0.1,
        le=3600,
        validation_alias=AliasChoices("MVCORE_JOB_NO_WORKER_WAIT", "job_no_worker_wait_s"),
    )
    job_queue_max: int = Field(
        100, ge=1, le=1_000_000, validation_alias=AliasChoices("MVCORE_JOB_QUEUE_MAX", "job_queue_max")
    )
    job_reaper_interval_s: float = Field(
        10.0,
        ge=0.2,
        le=3600,
        validation_alias=AliasChoices("MVCORE_JOB_REAPER_INTERVAL", "job_reaper_interval_s"),
    )

    @field_validator("flavors_dirs", mode="before")
    @classmethod
    def _paths(cls, value: object) -> object:
        if isinstance(value, str):
            import os

            return [p.strip() for p in value.split(os.pathsep if os.pathsep in value else ",") if p.strip()]
        return value

    @field_validator("plugins", "disable_plugins", "cors_origins", "overridable_keys", mode="before")
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
            self.media_token_secret,
        ):
            if value is not None and value.get_secret_value():
                out.extend(v for v in value.get_secret_value().split(",") if len(v) >= 4)
        return out


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
