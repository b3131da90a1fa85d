"""A project on the wire: the original's ProjectResponse / SceneResponse, plus our additions.

Storage keys become URLs here: presigned URLs when the bucket serves (``SERVE_FROM_CLOUD``), else
this server's routes -- ``/api/mv/projects/{id}/files/scenes/001/video.mp4``,
``/api/mv/get_character_reference/{id}``, ``/api/audio/get/{id}``.  Additions (new keys only):
``mode``, ``configFlavor``, ``errorMessage``, ``metadata.config`` (flavor_requested,
flavor_used, fallback, generation) and ``progress``.
"""

from __future__ import annotations

import re
from typing import Any

from mvcore.projects.records import Project, Scene
from mvcore.storage.media_store import MediaStore

__all__ = ["ProjectUrls", "progress_of", "project_wire", "scene_wire"]

_CHARACTER = re.compile(r"^character_references/([0-9a-f-]{36})\.[a-z0-9]+$")
_AUDIO = re.compile(r"^audio/([0-9a-f-]{36})\.mp3$")


class ProjectUrls:
    def __init__(self, media: MediaStore, *, serve_from_cloud: bool) -> None:
        self.media = media
        self.cloud = serve_from_cloud and media.cloud is not None

    async def url(self, key: str | None) -> str | None:
        if not key:
            return None
        if self.cloud:
            presigned = await self.media.url_for(key, check=False)
            if presigned:
                return presigned
        return local_url(key)


def local_url(key: str) -> str:
    if match := _CHARACTER.match(key):
        return f"/api/mv/get_character_reference/{match.group(1)}"
    if match := _AUDIO.match(key):
        return f"/api/audio/get/{match.group(1)}"
    parts = key.split("/", 3)  # mv / projects / {id} / rest
    if len(parts) == 4 and parts[:2] == ["mv", "projects"]:
        return f"/api/mv/projects/{parts[2]}/files/{parts[3]}"
    return key


def progress_of(project: Project) -> dict[str, Any]:
    """Steps done out of steps to do (scenes, each clip, each lipsync, compose) and the stage."""
    lipsyncs = sum(1 for s in project.scenes if s.needsLipSync)
    total = 2 + len(project.scenes) + lipsyncs if project.scenes else 2
    done = 1 if project.sceneCount else 0
    done += sum(1 for s in project.scenes if s.clip_done)
    done += sum(1 for s in project.scenes if s.needsLipSync and s.lipSyncedVideoClipS3Key)
    if project.status == "completed" and project.finalOutputS3Key:
        done = total
    if not project.sceneCount:
        stage = "scenes"
    elif project.status in ("completed", "failed"):
        stage = project.status
    elif project.status == "composing":
        stage = "compose"
    elif any(not s.clip_done for s in project.scenes):
        stage = "clips"
    else:
        stage = "lipsync"
    return {"fraction": round(done / total, 4), "stepsDone": done, "stepsTotal": total, "stage": stage}


async def scene_wire(scene: Scene, urls: ProjectUrls) -> dict[str, Any]:
    return {
        "sequence": scene.sequence,
        "status": scene.status,
        "prompt": scene.prompt,
        "negativePrompt": scene.negativePrompt,
        "duration": float(scene.duration),
        "referenceImageUrls": [u for u in [await urls.url(k) for k in scene.referenceImageS3Keys] if u],
        "audioClipUrl": await urls.url(scene.audioClipS3Key),
        "videoClipUrl": await urls.url(scene.videoClipS3Key),
        "needsLipSync": bool(scene.needsLipSync),
        "lipSyncedVideoClipUrl": await urls.url(scene.lipSyncedVideoClipS3Key),
        "retryCount": int(scene.retryCount or 0),
        "errorMessage": scene.errorMessage,
        "createdAt": scene.createdAt,
        "updatedAt": scene.updatedAt,
    }


async def project_wire(project: Project, urls: ProjectUrls) -> dict[str, Any]:
    meta = project.config_meta
    return {
        "projectId": project.projectId,
        "status": project.status,
        "conceptPrompt": project.conceptPrompt,
        "characterDescription": project.characterDescription,
        "characterImageUrl": await urls.url(project.characterImageS3Key),
        "productDescription": project.productDescription,
        "productImageUrl": await urls.url(project.productImageS3Key),
        "audioBackingTrackUrl": await urls.url(project.audioBackingTrackS3Key),
        "finalOutputUrl": await urls.url(project.finalOutputS3Key),
        "sceneCount": int(project.sceneCount),
        "completedScenes": int(project.completedScenes),
        "failedScenes": int(project.failedScenes),
        "scenes": [await scene_wire(s, urls) for s in project.scenes],
        "createdAt": project.createdAt,
        "updatedAt": project.updatedAt,
        # additions
        "mode": project.mode,
        "configFlavor": project.configFlavor,
        "errorMessage": project.errorMessage,
        "audioId": project.audioId,
        "metadata": {
            "config": {
                "flavor_requested": meta.get("flavor_requested"),
                "flavor_used": meta.get("flavor_used"),
                "fallback": meta.get("fallback"),
                "generation": project.generation,
            }
        },
        "progress": progress_of(project),
    }
