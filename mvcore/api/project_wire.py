"""Wire shapes of the project endpoints: the original system's field names, plus ours.

Typed like every other answer (``api/wire.py``) so the OpenAPI document is the contract the
schemathesis suite checks and a generated client can read.
"""

from typing import Any, NotRequired, TypedDict


class ProjectCreated(TypedDict):
    projectId: str
    status: str
    message: str


class ProjectRow(TypedDict):
    projectId: str
    status: str
    mode: str
    conceptPrompt: str
    sceneCount: int
    completedScenes: int
    failedScenes: int
    configFlavor: str | None
    createdAt: str
    updatedAt: str


class ProjectList(TypedDict):
    projects: list[ProjectRow]


class SceneResponse(TypedDict):
    sequence: int
    status: str
    prompt: str
    negativePrompt: str | None
    duration: float
    referenceImageUrls: list[str]
    audioClipUrl: str | None
    videoClipUrl: str | None
    needsLipSync: bool
    lipSyncedVideoClipUrl: str | None
    retryCount: int
    errorMessage: str | None
    createdAt: str
    updatedAt: str


class ProjectProgress(TypedDict):
    fraction: float
    stepsDone: int
    stepsTotal: int
    stage: str


class ProjectResponse(TypedDict):
    """The original's ProjectResponse, plus mode, configFlavor, errorMessage, metadata, progress."""

    projectId: str
    status: str
    conceptPrompt: str
    characterDescription: str | None
    characterImageUrl: str | None
    productDescription: str | None
    productImageUrl: str | None
    audioBackingTrackUrl: str | None
    finalOutputUrl: str | None
    sceneCount: int
    completedScenes: int
    failedScenes: int
    scenes: list[SceneResponse]
    createdAt: str
    updatedAt: str
    mode: str
    configFlavor: str | None
    errorMessage: str | None
    audioId: NotRequired[str | None]
    metadata: dict[str, Any]
    progress: ProjectProgress


class ProjectDeleted(TypedDict):
    projectId: str
    status: str
    message: str


class ComposeStarted(TypedDict):
    jobId: str
    projectId: str
    status: str
    message: str


class FinalVideo(TypedDict):
    projectId: str
    videoUrl: str | None
    expiresInSeconds: int


class RegenerateStarted(TypedDict):
    projectId: str
    sequence: int
    status: str
    message: str
