"""What one project job does: write the scenes, render one clip, lipsync one scene, compose.

These run wherever jobs run (the API process, or an ``mvcore worker``), with the flavor bundle the
project fixed at creation.  Each step

- first looks at the project record: a step whose result is recorded (and whose file exists) is
  answered from the record without calling the provider again -- a redelivered or resubmitted job
  after a crash never pays twice for finished work;
- writes its result into the record itself before it returns, so the result survives even when
  the process that submitted the job (the driver) dies before it sees the answer.

Media keys: ``mv/projects/{id}/scenes/{seq:03d}/video.mp4``, ``.../audio.mp3`` (the song segment
under the scene), ``.../lipsynced.mp4``, and ``mv/projects/{id}/final.mp4``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from mvcore import logs
from mvcore.errors import MvcoreError, NotFound
from mvcore.generators.common import new_id, working_dir
from mvcore.generators.context import ConfigBundle, GenContext
from mvcore.generators.plan import scenes_call, video_call
from mvcore.generators.requests import CreateScenesRequest, GenerateVideoRequest
from mvcore.media import audio, ffmpeg, video
from mvcore.projects.records import Project, Scene, final_key, scene_key
from mvcore.projects.store import ProjectStore, store_for

__all__ = ["STEP_KINDS", "ProjectStepRequest", "compose_step", "scenes_step", "segment_of"]


class ProjectStepRequest(BaseModel):
    """What a project job carries besides the bundle: which project, which scene."""

    project_id: str = Field(..., min_length=36, max_length=36)
    sequence: int | None = Field(None, ge=1, le=999)


def _store(ctx: GenContext) -> ProjectStore:
    return store_for(ctx.settings)


async def _project(ctx: GenContext, project_id: str) -> Project:
    project = await _store(ctx).get(project_id)
    if project is None:
        raise NotFound(
            f"Project {project_id!r} not found", code="PROJECT_GONE", details={"projectId": project_id}
        )
    return project


def _scene(project: Project, sequence: int | None) -> Scene:
    scene = project.scene(sequence or 0)
    if scene is None:
        raise NotFound(f"Scene {sequence} not found in project {project.projectId}")
    return scene


def segment_of(project: Project, sequence: int) -> tuple[float, float]:
    """Where scene ``sequence`` lies in the final cut: after the real durations of the scenes before it."""
    start = 0.0
    for scene in project.scenes:
        if scene.sequence >= sequence:
            break
        if not scene.clip_done:
            raise MvcoreError(
                f"Scene {sequence} cannot be lipsynced before the clip of scene {scene.sequence} exists",
                code="PROJECT_NOT_READY",
                status_code=409,
            )
        start += float(scene.duration)
    current = _scene(project, sequence)
    return start, start + float(current.duration)


# ------------------------------------------------------------------------------------------ scenes
async def scenes_step(request: ProjectStepRequest, bundle: ConfigBundle, ctx: GenContext) -> dict[str, Any]:
    project = await _project(ctx, request.project_id)
    if project.sceneCount:
        return {"projectId": project.projectId, "sceneCount": project.sceneCount, "reused": True}
    wanted = int(bundle.section("parameters").get("number_of_scenes") or 4)
    count = min(wanted, ctx.settings.project_max_scenes)
    scene_request = CreateScenesRequest(
        idea=project.conceptPrompt, character_description=project.characterDescription, number_of_scenes=count
    )
    # the same call a create_scenes request builds (generators/plan.py), capped at the project limit
    call = scenes_call(scene_request, bundle, max_chars=ctx.settings.max_prompt_chars)
    ctx.progress(0.1, "writing scenes")
    written = await ctx.provider().generate_scenes(
        prompt=call.prompt or "",
        inputs=call.inputs,
        number_of_scenes=count,
        model=str(call.params["model"]),
        progress=ctx.progress,
    )
    duration = float(bundle.section("image_params").get("video_duration") or 8)
    references = [project.characterImageS3Key] if project.characterImageS3Key else []
    scenes = [
        Scene(
            project.projectId,
            index,
            s.description,
            s.negative_description,
            duration=duration,
            needsLipSync=project.mode == "music-video",
            referenceImageS3Keys=list(references),
        )
        for index, s in enumerate(written[:count], 1)
    ]
    added = await _store(ctx).add_scenes(project.projectId, scenes)
    return {"projectId": project.projectId, "sceneCount": len(scenes), "reused": not added}


# ------------------------------------------------------------------------------------------- clips
async def clip_step(request: ProjectStepRequest, bundle: ConfigBundle, ctx: GenContext) -> dict[str, Any]:
    project = await _project(ctx, request.project_id)
    scene = _scene(project, request.sequence)
    key = scene_key(project.projectId, scene.sequence, "video.mp4")
    if scene.clip_done and await ctx.media.exists(key):
        return {"sequence": scene.sequence, "videoClipS3Key": key, "duration": scene.duration, "reused": True}
    video_request = GenerateVideoRequest(
        prompt=scene.prompt,
        negative_prompt=scene.negativePrompt,
        character_reference_id=project.characterReferenceImageId,
        duration=round(float(scene.duration)) or None,
    )
    # the same call a generate_video request builds (generators/plan.py)
    call = video_call(video_request, bundle, max_chars=ctx.settings.max_prompt_chars)
    params, prompt = call.params, call.prompt or ""
    with working_dir(ctx, new_id()) as work:
        reference = (
            await ctx.media.fetch(scene.referenceImageS3Keys[0], work) if scene.referenceImageS3Keys else None
        )
        result = await ctx.provider().generate_video(
            prompt=prompt,
            negative_prompt=scene.negativePrompt,
            params=params,
            reference_image=reference,
            seed=None,
            out_path=work / "video.mp4",
            progress=ctx.progress,
        )
        measured = (await ffmpeg.probe(result.paths[0])).duration
        await ctx.media.save(result.paths[0], key, "video/mp4")
    fields: dict[str, Any] = {"videoClipS3Key": key, "duration": round(measured, 3), "durationMeasured": True}
    store = _store(ctx)
    await store.set_scene(project.projectId, scene.sequence, **fields, status="processing", errorMessage=None)
    if not scene.needsLipSync:
        await store.finish_scene(project.projectId, scene.sequence, "completed")
    logs.event("project_clip_done", project_id=project.projectId, sequence=scene.sequence, duration=measured)
    return {"sequence": scene.sequence, **fields, "model_used": result.model_used, "reused": False}


# ----------------------------------------------------------------------------------------- lipsync
def lipsync_params(bundle: ConfigBundle) -> dict[str, Any]:
    flavor = bundle.section("lipsync_params")
    keys = ("model", "temperature", "occlusion_detection_enabled", "active_speaker_detection")
    return {key: flavor.get(key) for key in keys}


async def lipsync_step(request: ProjectStepRequest, bundle: ConfigBundle, ctx: GenContext) -> dict[str, Any]:
    project = await _project(ctx, request.project_id)
    scene = _scene(project, request.sequence)
    store = _store(ctx)
    out_key = scene_key(project.projectId, scene.sequence, "lipsynced.mp4")
    if scene.lipSyncedVideoClipS3Key and await ctx.media.exists(out_key):
        await store.finish_scene(project.projectId, scene.sequence, "completed")
        return {"sequence": scene.sequence, "lipSyncedVideoClipS3Key": out_key, "reused": True}
    if not project.audioBackingTrackS3Key or not scene.videoClipS3Key:
        raise MvcoreError(
            f"Scene {scene.sequence} has no clip or song to lipsync",
            code="PROJECT_NOT_READY",
            status_code=409,
        )
    start, end = segment_of(project, scene.sequence)
    with working_dir(ctx, new_id()) as work:
        song = await ctx.media.fetch(project.audioBackingTrackS3Key, work)
        song_length = await audio.audio_duration(song, timeout=ctx.settings.media_timeout_s)
        if start >= song_length - 0.05:
            # The song ended before this scene: nothing to sing; the clip goes in as it is.
            await store.finish_scene(project.projectId, scene.sequence, "completed", needsLipSync=False)
            return {
                "sequence": scene.sequence,
                "segment": [start, end],
                "skipped": "the song ended before this scene",
            }
        clip_key = scene_key(project.projectId, scene.sequence, "audio.mp3")
        segment = work / "segment.mp3"
        await audio.clip_audio(
            song, segment, start, min(end, song_length), timeout=ctx.settings.media_timeout_s
        )
        await ctx.media.save(segment, clip_key, "audio/mpeg")
        clip = await ctx.media.fetch(scene.videoClipS3Key, work)
        result = await ctx.provider().lipsync(
            video=clip,
            audio=segment,
            params=lipsync_params(bundle),
            out_path=work / "lipsynced.mp4",
            progress=ctx.progress,
        )
        await ctx.media.save(result.paths[0], out_key, "video/mp4")
    await store.finish_scene(
        project.projectId,
        scene.sequence,
        "completed",
        lipSyncedVideoClipS3Key=out_key,
        audioClipS3Key=clip_key,
        lipSyncSegment=[round(start, 3), round(end, 3)],
        errorMessage=None,
    )
    logs.event(
        "project_lipsync_done", project_id=project.projectId, sequence=scene.sequence, start=start, end=end
    )
    return {
        "sequence": scene.sequence,
        "segment": [round(start, 3), round(end, 3)],
        "model_used": result.model_used,
    }


# ----------------------------------------------------------------------------------------- compose
async def compose_step(request: ProjectStepRequest, bundle: ConfigBundle, ctx: GenContext) -> dict[str, Any]:
    project = await _project(ctx, request.project_id)
    missing = [s.sequence for s in project.scenes if s.status != "completed" or not s.final_clip_key]
    if missing or not project.scenes:
        raise MvcoreError(
            "Cannot compose video: not all scenes are completed",
            code="PROJECT_NOT_READY",
            status_code=409,
            details={"scenes": missing},
        )
    key = final_key(project.projectId)
    with working_dir(ctx, new_id()) as work:
        clips = []
        for scene in project.scenes:
            folder = work / f"{scene.sequence:03d}"
            folder.mkdir()
            assert scene.final_clip_key is not None
            clips.append(await ctx.media.fetch(scene.final_clip_key, folder))
        song = (
            await ctx.media.fetch(project.audioBackingTrackS3Key, work)
            if project.audioBackingTrackS3Key
            else None
        )
        info = await video.stitch(
            clips,
            work / "final.mp4",
            audio_overlay=song,
            suppress_video_audio=song is not None,
            timeout=ctx.settings.media_timeout_s,
            progress=ctx.progress,
        )
        await ctx.media.save(work / "final.mp4", key, "video/mp4")
    await _store(ctx).set_project(
        project.projectId, finalOutputS3Key=key, status="completed", errorMessage=None
    )
    logs.event("project_composed", project_id=project.projectId, duration=info.duration, clips=len(clips))
    return {"finalOutputS3Key": key, "num_clips": len(clips), "total_duration": round(info.duration, 3)}


STEP_KINDS = {
    "project_scenes": scenes_step,
    "project_clip": clip_step,
    "project_lipsync": lipsync_step,
    "project_compose": compose_step,
}
