"""The response bodies of every endpoint, as typed dicts: the OpenAPI contract.

Each ``TypedDict`` lists the wire fields of the original system plus ours; Litestar turns them
into the component schemas of ``/schema/openapi.json`` and the schemathesis suite checks every
answer against them, so a handler that drifts from its documented shape fails CI.  Extra keys
stay allowed (``additionalProperties`` is open): clients of the original ignore what they do not
know, and generators may add fields.  ``NotRequired`` marks keys that are present only sometimes.

No ``from __future__ import annotations`` here: ``TypedDict`` decides which keys are required
when the class is created, and string annotations would hide ``NotRequired`` from it.
"""

from dataclasses import dataclass
from typing import Any, Literal, NotRequired, TypedDict, TypeVar, cast

T = TypeVar("T")


def typed(shape: type[T], body: Any) -> T:
    """``body`` as its wire type: the generators build plain dicts, the contract test checks them."""
    return cast(T, body)


# ------------------------------------------------------------------------------------------ common
class ConfigMeta(TypedDict):
    """``metadata.config`` of every generator answer: which flavor was asked for and used."""

    flavor_requested: str | None
    flavor_used: str
    fallback: bool
    generation: int
    #: content digest of the resolved flavor: the same on every replica for the same files
    digest: NotRequired[str | None]


class Metadata(TypedDict):
    """The metadata block of a generator answer (more keys per generator)."""

    generation_timestamp: str
    processing_time_seconds: float
    config: ConfigMeta


class JobQueued(TypedDict):
    """``?async=true``: the job was queued; poll ``status_url``."""

    job_id: str
    status: Literal["queued"]
    status_url: str


# ---------------------------------------------------------------------------------------- generators
class Scene(TypedDict):
    description: str
    negative_description: str


class OutputFiles(TypedDict):
    json: str
    markdown: str


class ScenesResult(TypedDict):
    scenes: list[Scene]
    output_files: OutputFiles
    metadata: Metadata


class CharacterImage(TypedDict):
    id: str
    index: int
    path: str
    url: str
    cloud_url: str | None
    format: str


class CharacterReferenceResult(TypedDict):
    images: list[CharacterImage]
    metadata: Metadata
    storage_warning: NotRequired[str]


class VideoMetadata(Metadata):
    video_id: str
    file_size_bytes: int
    local_video_url: str
    cloud_url: NotRequired[str]
    storage_warning: NotRequired[str]


class VideoResult(TypedDict):
    """generate_video and lipsync: one stored clip."""

    video_id: str
    video_path: str
    video_url: str
    metadata: VideoMetadata
    storage_warning: NotRequired[str]


class StitchMetadata(VideoMetadata):
    video_ids: list[str]
    num_clips: int
    total_duration: float
    audio_overlay_id: str | None
    suppress_video_audio: bool


class StitchResult(TypedDict):
    video_id: str
    video_path: str
    video_url: str
    metadata: StitchMetadata
    audio_overlay_applied: bool
    audio_overlay_warning: str | None
    storage_warning: NotRequired[str]


# --------------------------------------------------------------------------------------------- media
class VideoInfo(TypedDict):
    """``GET /get_video/{id}/info``; ``exists: false`` (and no metadata) for an unknown id."""

    video_id: str
    exists: bool
    metadata: NotRequired[dict[str, Any]]
    video_url: NotRequired[str]
    cloud_url: NotRequired[str | None]


class CloudVideoLink(TypedDict):
    """Cloud mode with ``redirect=false``: where the video is, instead of its bytes."""

    video_id: str
    video_url: str
    storage_backend: Literal["s3"]
    expires_in_seconds: int
    cloud_path: str


class CloudImageLink(TypedDict):
    image_id: str
    image_url: str
    storage_backend: Literal["s3"]
    expires_in_seconds: int
    cloud_path: str


class CloudAudioLink(TypedDict):
    audio_id: str
    audio_url: str
    storage_backend: Literal["s3"]
    expires_in_seconds: int
    cloud_path: str


# --------------------------------------------------------------------------------------------- audio
class AudioRecord(TypedDict):
    """A song in the library (upload, download, info)."""

    audio_id: str
    audio_url: str
    filename: str
    format: str
    title: str
    duration: float
    file_size_bytes: int
    source_url: str | None
    cloud_url: str | None
    created_at: str
    storage_warning: NotRequired[str]


class AudioInfo(TypedDict):
    """``GET /api/audio/info/{id}``: the record with ``exists: true``, or only the id and ``false``."""

    audio_id: str
    exists: bool
    audio_url: NotRequired[str]
    filename: NotRequired[str]
    format: NotRequired[str]
    title: NotRequired[str]
    duration: NotRequired[float]
    file_size_bytes: NotRequired[int]
    source_url: NotRequired[str | None]
    cloud_url: NotRequired[str | None]
    created_at: NotRequired[str]


# ---------------------------------------------------------------------------------------------- jobs
class JobError(TypedDict):
    detail: dict[str, Any]


class Job(TypedDict):
    job_id: str
    kind: str
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    progress: float
    message: str
    created_at: float
    started_at: float | None
    finished_at: float | None
    result: dict[str, Any] | None
    error: JobError | None
    status_url: str


class JobList(TypedDict):
    jobs: list[Job]


# ------------------------------------------------------------------------------------------- flavors
class FlavorNames(TypedDict):
    flavors: list[str]


class Issue(TypedDict):
    file: str | None
    line: int | None
    path: str | None
    message: str
    severity: str
    text: str


class FlavorRow(TypedDict):
    name: str
    source: str | None
    origin: str | None
    status: str
    description: str | None
    tags: list[str]
    serving: bool
    errors: list[Issue]
    warnings: list[Issue]
    usable: NotRequired[bool]
    digest: NotRequired[str | None]


class ShadowedFlavor(TypedDict):
    name: str
    used: str
    shadowed: str


class FlavorList(TypedDict):
    generation: int
    flavors: list[FlavorRow]
    shadowed: list[ShadowedFlavor]


class WatchStatus(TypedDict):
    """The flavor watcher's health: what runs, whether it is healthy, its last error."""

    mode: str
    requested: str
    healthy: bool
    last_error: str | None
    restarts: int
    fallback_reason: str | None
    warnings: list[str]


class FlavorsStatus(TypedDict):
    generation: int
    loaded_at: float | str | None
    last_reload_seconds: float
    flavors: dict[str, FlavorRow]
    errors: list[Issue]
    warnings: list[Issue]
    shadowed: list[ShadowedFlavor]
    config_types: list[str]
    watch: WatchStatus


class Provenance(TypedDict):
    layer: str
    file: str | None
    line: int | None


class ResolvedConfigWire(TypedDict):
    values: dict[str, Any]
    provenance: dict[str, Provenance]


class FlavorResolution(ConfigMeta):
    """``GET /flavors/{name}``: every config type's values and where each value came from."""

    configs: dict[str, ResolvedConfigWire]


class StorageDebug(TypedDict):
    mode: Literal["local", "s3"]
    bucket: str | None
    serve_from_cloud: bool
    presigned_url_expiry: int
    endpoint_configured: bool


class ConfigDebug(TypedDict):
    debug_mode: bool
    provider: str
    providers: list[str]
    storage: StorageDebug
    auth_enabled: bool
    replicate_token_configured: bool
    strict_flavor: bool
    jobs_backend: Literal["redis", "in-memory"]
    flavors: list[str]
    generation: int
    config_types: list[str]
    default_config: dict[str, dict[str, Any]]
    errors: list[Issue]


class Health(TypedDict):
    status: Literal["ok"]
    version: str
    generation: int
    flavors: int
    provider: str


@dataclass
class EventMessage:
    """One server-sent event (documentation only): ``hello`` first, then ``reload`` events."""

    event: str
    data: str  # JSON: {"generation": N} for hello, the ReloadEvent for reloads
