"""The ``replicate`` provider: scenes, images, video and lipsync on Replicate.

It drives the real ``replicate`` client explicitly -- create a prediction, poll it, download the
output -- instead of ``replicate.run`` so that every call has a deadline, reports progress and
retries only where it is safe:

* **Deadline.** A whole provider call (file uploads, create, polling, download) is bounded by
  ``timeout_s``.  When it runs out the prediction is canceled (best effort) and
  :class:`~mvcore.errors.DeadlineExceeded` is raised.  A caller that cancels the task also gets
  the prediction canceled.
* **Retries.** Only HTTP 429 / 5xx (and connection failures) on the *upload* and *create*
  requests, i.e. before a prediction exists: at most ``max_create_attempts`` attempts with capped
  exponential backoff.  A prediction is never created twice.  Once it exists, only the idempotent
  status ``GET`` is repeated (up to ``max_poll_errors`` consecutive failures), never the create.
* **Files.** Local files (reference image, lipsync video and audio) are opened and handed to
  ``client.files.async_create`` -- the client uploads the open handle with ``POST /v1/files``
  (multipart) and the prediction input carries the returned ``urls.get``.  So lipsync works
  without any cloud storage of our own.  Each file is uploaded once per call, before the create,
  so a retried create does not upload again.
* **Errors** become :class:`~mvcore.errors.ProviderError` with the original system's codes:

  ============================  ======  ==================================================
  code                          status  when
  ============================  ======  ==================================================
  ``CONTENT_POLICY_VIOLATION``  400     the model refused the input/output (NSFW, safety,
                                        "flagged as sensitive", E005 ...) -- the caller's
                                        prompt or image caused it, so a 4xx
  ``RATE_LIMIT_EXCEEDED``       429     Replicate kept answering 429 after the retries
  ``AUTHENTICATION_ERROR``      502     Replicate rejected *our* token (401/403).  Not a 401:
                                        the API caller's own credentials are fine, the
                                        server's upstream configuration is not
  ``UNKNOWN_ERROR``             502     anything else (failed prediction, 404 model, 422
                                        input, 5xx after retries, unparsable LLM output)
  ============================  ======  ==================================================

  (The original system answered 500 with these codes in the detail; the statuses above say who
  is at fault.)  The API token never appears in a message or in ``details``.

Model inputs follow the models' Replicate schemas; for the models listed in
:data:`KNOWN_MODEL_INPUTS` keys the model does not accept are dropped (Replicate rejects
unknown input properties), other models get every key.  ``params["extra_input"]`` (a mapping)
is merged into any input as-is.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import ExitStack
from pathlib import Path
from typing import Any, TypeVar

from replicate.client import Client

from mvcore.errors import BadInput, ProviderError
from mvcore.providers.base import Progress, ProviderResult, Scene, no_progress
from mvcore.providers.replicate_call import (
    PredictionCall,
    first_url,
    gather_all,
    open_input,
    output_urls,
    url_ext,
)
from mvcore.providers.scene_json import SCENES_SYSTEM_PROMPT, extract_scenes, join_text

__all__ = ["DEFAULT_SCENE_MODEL", "KNOWN_MODEL_INPUTS", "ReplicateProvider", "extract_scenes"]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Input keys the well-known models accept (from their Replicate schemas).  Keys outside the set
#: are dropped for these models; any other model receives the input unfiltered.
KNOWN_MODEL_INPUTS: dict[str, frozenset[str]] = {
    "google/imagen-4": frozenset({"prompt", "aspect_ratio", "safety_filter_level", "output_format"}),
    "google/imagen-4-fast": frozenset({"prompt", "aspect_ratio", "safety_filter_level", "output_format"}),
    "google/imagen-4-ultra": frozenset({"prompt", "aspect_ratio", "safety_filter_level", "output_format"}),
    "google/veo-3.1": frozenset(
        {
            "prompt",
            "aspect_ratio",
            "duration",
            "image",
            "last_frame",
            "reference_images",
            "negative_prompt",
            "resolution",
            "generate_audio",
            "seed",
        }
    ),
    "google/veo-3.1-fast": frozenset(
        {
            "prompt",
            "aspect_ratio",
            "duration",
            "image",
            "last_frame",
            "negative_prompt",
            "resolution",
            "generate_audio",
            "seed",
        }
    ),
    "sync/lipsync-2-pro": frozenset({"video", "audio", "sync_mode", "temperature", "active_speaker"}),
    "sync/lipsync-2": frozenset({"video", "audio", "sync_mode", "temperature", "active_speaker"}),
}

#: used by generate_scenes when the flavor names no model (``model=""``)
DEFAULT_SCENE_MODEL = "openai/gpt-4o-mini"


class ReplicateProvider:
    """A :class:`~mvcore.providers.base.Provider` backed by Replicate (see the module docstring)."""

    name = "replicate"
    #: jobs: a lost worker's job is redone only if no prediction was created (mvcore.jobs.attempt)
    redo = "until_external"

    #: attempts for an upload/create answered 429/5xx (before a prediction exists)
    max_create_attempts = 3
    #: first backoff and its cap, seconds (doubles each attempt)
    retry_base_delay_s = 1.0
    retry_max_delay_s = 8.0
    #: consecutive failed status polls tolerated before giving up on a prediction
    max_poll_errors = 3
    #: predictions run at once by generate_images
    image_concurrency = 4
    #: time constant of the progress ramp used when the model logs no percentage
    progress_ramp_s = 45.0

    def __init__(
        self,
        api_token: str,
        *,
        base_url: str | None = None,
        timeout_s: float = 900,
        poll_interval_s: float = 1.0,
    ) -> None:
        if not api_token or not api_token.strip():
            raise ProviderError(
                "The Replicate API token is empty",
                code="AUTHENTICATION_ERROR",
                hint="Set REPLICATE_API_TOKEN, or leave it unset to use the offline provider.",
            )
        if timeout_s <= 0 or poll_interval_s <= 0:
            raise ValueError("timeout_s and poll_interval_s must be positive")
        self._token = api_token.strip()
        self.base_url = base_url
        self.timeout_s = float(timeout_s)
        self.poll_interval_s = float(poll_interval_s)

    def __repr__(self) -> str:
        return f"ReplicateProvider(base_url={self.base_url!r}, timeout_s={self.timeout_s})"

    # ------------------------------------------------------------------ Provider protocol

    async def generate_scenes(
        self,
        *,
        prompt: str,
        inputs: dict[str, Any],
        number_of_scenes: int,
        model: str,
        progress: Progress = no_progress,
    ) -> list[Scene]:
        if number_of_scenes < 1:
            raise BadInput("number_of_scenes must be at least 1")
        model = model.strip() or DEFAULT_SCENE_MODEL
        job = PredictionCall(self, progress)
        async with job:
            output = await job.predict(
                model, {"prompt": prompt, "system_prompt": SCENES_SYSTEM_PROMPT}, label="scenes"
            )
        text = join_text(output)
        try:
            scenes = extract_scenes(text, number_of_scenes)
        except ValueError as exc:
            raise ProviderError(
                f"The language model {model} did not return usable scenes: {exc}",
                code="UNKNOWN_ERROR",
                hint="The scene prompt must ask for JSON "
                '{"scenes": [{"description", "negative_description"}]} with exactly number_of_scenes '
                "items; try again or use another model.",
                details={"model": model, "expected_scenes": number_of_scenes, "output_excerpt": text[:300]},
            ) from None
        progress(1.0, "scenes ready")
        return scenes

    async def generate_images(
        self,
        *,
        prompt: str,
        negative_prompt: str | None,
        num_images: int,
        params: dict[str, Any],
        seed: int | None,
        out_dir: Path,
        progress: Progress = no_progress,
    ) -> ProviderResult:
        if num_images < 1:
            raise BadInput("num_images must be at least 1")
        model = str(params.get("model") or "google/imagen-4")
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        fmt = str(params.get("output_format") or "png").lower()

        def build(index: int) -> dict[str, Any]:
            return _clean(
                {
                    "prompt": prompt,
                    "aspect_ratio": params.get("aspect_ratio"),
                    "safety_filter_level": params.get("safety_filter_level"),
                    "person_generation": params.get("person_generation"),
                    "output_format": params.get("output_format"),
                    "negative_prompt": negative_prompt or None,
                    # imagen makes one image per prediction: vary the seed so n images differ
                    "seed": None if seed is None else seed + index,
                    **dict(params.get("extra_input") or {}),
                },
                model,
            )

        job = PredictionCall(self, progress)
        fractions = [0.0] * num_images

        async with job:
            sem = asyncio.Semaphore(max(1, self.image_concurrency))

            async def one(index: int) -> list[str]:
                def sub(fraction: float, message: str) -> None:
                    fractions[index] = fraction
                    job.report(
                        sum(fractions) / num_images * 0.9, f"image {index + 1}/{num_images}: {message}"
                    )

                async with sem:
                    out = await job.predict(model, build(index), label=f"image {index + 1}", progress=sub)
                return output_urls(out)

            results = await gather_all([one(i) for i in range(num_images)])
            urls = [u for batch in results for u in batch][:num_images]
            if len(urls) < num_images:
                raise ProviderError(
                    f"{model} returned {len(urls)} image(s), expected {num_images}",
                    code="UNKNOWN_ERROR",
                    details={"model": model},
                )
            job.report(0.92, "downloading images")
            paths = [out_dir / f"{i}.{url_ext(url, fmt)}" for i, url in enumerate(urls)]
            await gather_all([job.download(u, p) for u, p in zip(urls, paths, strict=True)])
        progress(1.0, "images ready")
        return ProviderResult(paths=paths, model_used=model, raw={"outputs": urls})

    async def generate_video(
        self,
        *,
        prompt: str,
        negative_prompt: str | None,
        params: dict[str, Any],
        reference_image: Path | None,
        seed: int | None,
        out_path: Path,
        progress: Progress = no_progress,
    ) -> ProviderResult:
        model = str(params.get("model") or "google/veo-3.1")
        out_path = Path(out_path)
        aspect_ratio = params.get("aspect_ratio")
        duration = params.get("duration")
        job = PredictionCall(self, progress)
        with ExitStack() as files:
            inp: dict[str, Any] = {
                "prompt": prompt,
                "negative_prompt": negative_prompt or None,
                "aspect_ratio": aspect_ratio,
                "duration": int(duration) if duration is not None else None,
                "generate_audio": params.get("generate_audio"),
                "person_generation": params.get("person_generation"),
                "resolution": params.get("resolution"),
                "seed": seed,
            }
            if reference_image is not None:
                handle = files.enter_context(open_input(reference_image, "reference image"))
                mode = _reference_mode(model, params.get("reference_mode"), aspect_ratio, duration)
                inp["reference_images" if mode == "reference_images" else "image"] = (
                    [handle] if mode == "reference_images" else handle
                )
            inp.update(params.get("extra_input") or {})
            async with job:
                output = await job.predict(model, _clean(inp, model), label="video")
                url = first_url(output, model)
                job.report(0.95, "downloading video")
                await job.download(url, out_path)
        progress(1.0, "video ready")
        return ProviderResult(paths=[out_path], model_used=model, raw={"output": url})

    async def lipsync(
        self,
        *,
        video: Path,
        audio: Path,
        params: dict[str, Any],
        out_path: Path,
        progress: Progress = no_progress,
    ) -> ProviderResult:
        model = str(params.get("model") or "sync/lipsync-2-pro")
        out_path = Path(out_path)
        active = params.get("active_speaker", params.get("active_speaker_detection"))
        job = PredictionCall(self, progress)
        with ExitStack() as files:
            inp: dict[str, Any] = {
                "video": files.enter_context(open_input(video, "video")),
                "audio": files.enter_context(open_input(audio, "audio")),
                "temperature": params.get("temperature"),
                "sync_mode": params.get("sync_mode"),
                "active_speaker": active,
                "occlusion_detection_enabled": params.get("occlusion_detection_enabled"),
                **dict(params.get("extra_input") or {}),
            }
            async with job:
                output = await job.predict(model, _clean(inp, model), label="lipsync")
                url = first_url(output, model)
                job.report(0.95, "downloading lipsynced video")
                await job.download(url, out_path)
        progress(1.0, "lipsync ready")
        return ProviderResult(paths=[out_path], model_used=model, raw={"output": url})

    # ------------------------------------------------------------------ helpers used by PredictionCall

    def _new_client(self) -> Client:
        return Client(api_token=self._token, base_url=self.base_url)

    def _scrub(self, text: str) -> str:
        return text.replace(self._token, "[redacted]") if self._token else text

    def _backoff(self, attempt: int) -> float:
        return float(min(self.retry_max_delay_s, self.retry_base_delay_s * 2 ** (attempt - 1)))


def _clean(inp: dict[str, Any], model: str) -> dict[str, Any]:
    """Drop None values, and keys a well-known model does not accept."""
    out = {k: v for k, v in inp.items() if v is not None}
    allowed = KNOWN_MODEL_INPUTS.get(model.partition(":")[0])
    if allowed is not None:
        dropped = sorted(set(out) - allowed)
        if dropped:
            log.debug("dropping inputs %s that %s does not accept", dropped, model)
        out = {k: v for k, v in out.items() if k in allowed}
    return out


def _reference_mode(model: str, requested: Any, aspect_ratio: Any, duration: Any) -> str:
    """How veo gets the character image: ``reference_images`` (R2V) or ``image`` (first frame).

    Veo 3.1's reference images work only at 16:9 and 8 s (and veo-3.1-fast has none), so other
    shapes fall back to the image-to-video ``image`` input.
    """
    if requested in ("reference_images", "image"):
        return str(requested)
    allowed = KNOWN_MODEL_INPUTS.get(model.partition(":")[0])
    if allowed is not None and "reference_images" not in allowed:
        return "image"
    if allowed is None:
        return "reference_images"
    r2v_ok = str(aspect_ratio or "16:9") == "16:9" and str(duration or 8).strip() in ("8", "8.0")
    return "reference_images" if r2v_ok else "image"
