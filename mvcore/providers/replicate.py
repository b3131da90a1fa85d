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

Model inputs follow the models' published Replicate schemas in the model catalogue
(:mod:`mvcore.providers.catalogue`): generators check every model-bound value before calling
(400 on a value the model refuses), and keys a catalogued model has no input for are not sent --
``ProviderResult.raw`` reports exactly what was sent (``input``) and what was not (``not_sent``).
A model outside the catalogue gets every key.  ``params["extra_input"]`` (a mapping) is merged
into any input as-is.  Each prediction create carries ``Cancel-After`` with the call's remaining
deadline, so Replicate itself stops (``canceled``) or never starts (``aborted``) a prediction we
no longer wait for.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import ExitStack
from pathlib import Path
from typing import Any, TypeVar

from mvcore.config.model_checks import ModelCatalogue
from mvcore.errors import BadInput, ProviderError
from mvcore.providers.base import Progress, ProviderResult, Scene, no_progress
from mvcore.providers.catalogue import shipped_catalogue
from mvcore.providers.replicate_call import (
    CallPolicy,
    PredictionCall,
    first_url,
    gather_all,
    open_input,
    output_urls,
    url_ext,
)
from mvcore.providers.replicate_inputs import (
    DEFAULT_SCENE_MODEL,
    image_input,
    lipsync_input,
    scenes_input,
    video_input,
)
from mvcore.providers.scene_json import extract_scenes, join_text

__all__ = ["DEFAULT_SCENE_MODEL", "CallPolicy", "ReplicateProvider", "extract_scenes"]

log = logging.getLogger(__name__)

T = TypeVar("T")


class ReplicateProvider:
    """A :class:`~mvcore.providers.base.Provider` backed by Replicate (see the module docstring)."""

    name = "replicate"
    #: generators refuse (400) a value this provider's model would refuse, before calling it
    checks_model_inputs = True
    #: jobs: a lost worker's job is redone only if no prediction was created (mvcore.jobs.attempt)
    redo = "until_external"
    #: predictions run at once by generate_images
    image_concurrency = 4

    def __init__(
        self,
        api_token: str,
        *,
        base_url: str | None = None,
        timeout_s: float = 900,
        poll_interval_s: float = 1.0,
        models: ModelCatalogue | None = None,
    ) -> None:
        if not api_token or not api_token.strip():
            raise ProviderError(
                "The Replicate API token is empty",
                code="AUTHENTICATION_ERROR",
                hint="Set REPLICATE_API_TOKEN, or leave it unset to use the offline provider.",
            )
        #: deadline, retries and polling of every call (frozen; ``dataclasses.replace`` to change)
        self.policy = CallPolicy(api_token.strip(), base_url, float(timeout_s), float(poll_interval_s))
        self.models = models or shipped_catalogue()

    @property
    def base_url(self) -> str | None:
        return self.policy.base_url

    @property
    def timeout_s(self) -> float:
        return self.policy.timeout_s

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
        model, sent, _ = scenes_input(prompt, model, self.models)
        job = PredictionCall(self.policy, progress)
        async with job:
            output = await job.predict(model, sent, label="scenes")
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

        def build(index: int) -> tuple[dict[str, Any], dict[str, Any]]:
            _, sent, not_sent = image_input(prompt, negative_prompt, params, seed, index, self.models)
            return sent, not_sent

        job = PredictionCall(self.policy, progress)
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
                    out = await job.predict(model, build(index)[0], label=f"image {index + 1}", progress=sub)
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
        sent, not_sent = build(0)
        raw = {"outputs": urls, "input": describe_input(sent), "not_sent": describe_input(not_sent)}
        return ProviderResult(paths=paths, model_used=model, raw=raw)

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
        out_path = Path(out_path)
        job = PredictionCall(self.policy, progress)
        with ExitStack() as files:

            def attach(path: Path, label: str) -> Any:
                return files.enter_context(open_input(path, label))

            model, sent, not_sent = video_input(
                prompt, negative_prompt, params, seed, reference_image, attach, self.models
            )
            async with job:
                output = await job.predict(model, sent, label="video")
                url = first_url(output, model)
                job.report(0.95, "downloading video")
                await job.download(url, out_path)
        progress(1.0, "video ready")
        raw = {"output": url, "input": describe_input(sent), "not_sent": describe_input(not_sent)}
        return ProviderResult(paths=[out_path], model_used=model, raw=raw)

    async def lipsync(
        self,
        *,
        video: Path,
        audio: Path,
        params: dict[str, Any],
        out_path: Path,
        progress: Progress = no_progress,
    ) -> ProviderResult:
        out_path = Path(out_path)
        job = PredictionCall(self.policy, progress)
        with ExitStack() as files:

            def attach(path: Path, label: str) -> Any:
                return files.enter_context(open_input(path, label))

            model, sent, not_sent = lipsync_input(video, audio, params, attach, self.models)
            async with job:
                output = await job.predict(model, sent, label="lipsync")
                url = first_url(output, model)
                job.report(0.95, "downloading lipsynced video")
                await job.download(url, out_path)
        progress(1.0, "lipsync ready")
        raw = {"output": url, "input": describe_input(sent), "not_sent": describe_input(not_sent)}
        return ProviderResult(paths=[out_path], model_used=model, raw=raw)


def describe_input(inp: dict[str, Any]) -> dict[str, Any]:
    """A JSON-safe copy of a model input: open files become ``file:<name>``."""

    def one(value: Any) -> Any:
        if isinstance(value, list | tuple):
            return [one(v) for v in value]
        if hasattr(value, "read") and not isinstance(value, str | bytes):
            return f"file:{Path(str(getattr(value, 'name', 'upload'))).name}"
        return value

    return {k: one(v) for k, v in inp.items()}
