"""Project and scene records: the original system's attribute names, one shape for both stores.

A project is one item (the original's ``SK=METADATA``) plus one item per scene
(``SK=SCENE#{seq:03d}``).  Attribute names are the original's (``conceptPrompt``,
``videoClipS3Key``, ``completedScenes``...), so a DynamoDB table written by either system
reads the same.  Everything the pipeline needs to resume lives here: the flavor snapshot
fixed at creation (``config``, ``generation``), each step's result (``videoClipS3Key`` +
``duration``, ``lipSyncedVideoClipS3Key``, ``finalOutputS3Key``) and the job that is
producing it (``videoGenerationJobId``, ``lipsyncJobId``, ``scenesJobId``, ``composeJobId``).

``*S3Key`` fields hold storage keys (never URLs); the API turns them into URLs when it answers.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "FINAL_STATUSES",
    "MODES",
    "PROJECT_STATUSES",
    "Project",
    "Scene",
    "final_key",
    "now_iso",
    "scene_key",
]

MODES = ("music-video", "ad-creative")
PROJECT_STATUSES = ("pending", "processing", "composing", "completed", "failed")
SCENE_STATUSES = ("pending", "processing", "completed", "failed")
FINAL_STATUSES = ("completed", "failed")
# Statuses a driver must pick up after a restart.
UNFINISHED_STATUSES = ("pending", "processing", "composing")


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def scene_key(project_id: str, sequence: int, name: str) -> str:
    """``mv/projects/{id}/scenes/{seq:03d}/{name}`` (video.mp4, lipsynced.mp4, audio.mp3)."""
    return f"mv/projects/{project_id}/scenes/{sequence:03d}/{name}"


def final_key(project_id: str) -> str:
    return f"mv/projects/{project_id}/final.mp4"


@dataclass
class Scene:
    projectId: str
    sequence: int
    prompt: str
    negativePrompt: str | None = None
    status: str = "pending"
    duration: float = 8.0
    referenceImageS3Keys: list[str] = field(default_factory=list)
    audioClipS3Key: str | None = None
    videoClipS3Key: str | None = None
    needsLipSync: bool = True
    lipSyncedVideoClipS3Key: str | None = None
    videoGenerationJobId: str | None = None
    lipsyncJobId: str | None = None
    retryCount: int = 0
    errorMessage: str | None = None
    # True once the clip's real duration is measured (``duration`` was the flavor's request before).
    durationMeasured: bool = False
    # [start, end] of the song segment the lipsync used: tells when an earlier scene's new length moved it
    lipSyncSegment: list[float] | None = None
    createdAt: str = field(default_factory=now_iso)
    updatedAt: str = field(default_factory=now_iso)

    def to_attrs(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_attrs(cls, attrs: dict[str, Any]) -> Scene:
        return cls(**_known(cls, attrs))

    @property
    def clip_done(self) -> bool:
        return bool(self.videoClipS3Key) and self.durationMeasured

    @property
    def lipsync_done(self) -> bool:
        return not self.needsLipSync or bool(self.lipSyncedVideoClipS3Key)

    @property
    def final_clip_key(self) -> str | None:
        """The clip that goes into the final cut: lipsynced when there is one."""
        return self.lipSyncedVideoClipS3Key or self.videoClipS3Key


@dataclass
class Project:
    projectId: str
    mode: str
    conceptPrompt: str
    characterDescription: str
    status: str = "pending"
    characterImageS3Key: str | None = None
    characterReferenceImageId: str | None = None
    productDescription: str | None = None
    productImageS3Key: str | None = None
    audioBackingTrackS3Key: str | None = None
    audioId: str | None = None
    finalOutputS3Key: str | None = None
    sceneCount: int = 0
    completedScenes: int = 0
    failedScenes: int = 0
    configFlavor: str | None = None
    # The resolved flavor (ConfigBundle.to_dict()) fixed when the project was created.
    config: dict[str, Any] = field(default_factory=dict)
    generation: int | None = None
    errorMessage: str | None = None
    scenesJobId: str | None = None
    composeJobId: str | None = None
    leaseOwner: str | None = None
    leaseUntil: float | None = None
    createdAt: str = field(default_factory=now_iso)
    updatedAt: str = field(default_factory=now_iso)
    scenes: list[Scene] = field(default_factory=list)

    def to_attrs(self) -> dict[str, Any]:
        """The METADATA item's attributes (scenes are items of their own)."""
        attrs = dataclasses.asdict(self)
        attrs.pop("scenes")
        return attrs

    @classmethod
    def from_attrs(cls, attrs: dict[str, Any], scenes: list[Scene] | None = None) -> Project:
        project = cls(**_known(cls, attrs, skip=("scenes",)))
        project.scenes = sorted(scenes or [], key=lambda s: s.sequence)
        return project

    def scene(self, sequence: int) -> Scene | None:
        return next((s for s in self.scenes if s.sequence == sequence), None)

    @property
    def config_meta(self) -> dict[str, Any]:
        return dict(self.config.get("meta", {}))


def _known(cls: type, attrs: dict[str, Any], skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """Only the attributes the dataclass knows (items may carry more, e.g. PK/SK or GSI keys)."""
    names = {f.name for f in dataclasses.fields(cls)} - set(skip)
    return {k: v for k, v in attrs.items() if k in names and v is not None}
