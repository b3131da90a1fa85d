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
import base64
import contextlib
import json
import logging
import math
import mimetypes
import os
import re
from collections.abc import Awaitable, Callable, Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import httpx
from replicate.client import Client
from replicate.exceptions import ReplicateError
from replicate.helpers import FileOutput
from replicate.prediction import Prediction

from mvcore.errors import BadInput, DeadlineExceeded, NotFound, ProviderError
from mvcore.providers.base import Progress, ProviderResult, Scene, no_progress

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

_TERMINAL = frozenset({"succeeded", "failed", "canceled"})
_CONTENT_POLICY = re.compile(
    r"nsfw|safety(?!_)|unsafe|sensitive|content[ _-]?polic|moderat|flagged|responsible ai|prohibited|"
    r"\bE005\b|violat",
    re.IGNORECASE,
)
_SCENES_SYSTEM_PROMPT = (
    'Answer with one JSON object only, shaped {"scenes": [{"description": "...", '
    '"negative_description": "..."}]}, and no other text.'
)
_FENCE = re.compile(r"```(?:[a-zA-Z0-9_-]+)?\s*(.*?)```", re.DOTALL)


class ReplicateProvider:
    """A :class:`~mvcore.providers.base.Provider` backed by Replicate (see the module docstring)."""

    name = "replicate"

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
        job = _Call(self, progress)
        async with job:
            output = await job.predict(
                model, {"prompt": prompt, "system_prompt": _SCENES_SYSTEM_PROMPT}, label="scenes"
            )
        text = _join_text(output)
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

        job = _Call(self, progress)
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
                return _output_urls(out)

            results = await _gather_all([one(i) for i in range(num_images)])
            urls = [u for batch in results for u in batch][:num_images]
            if len(urls) < num_images:
                raise ProviderError(
                    f"{model} returned {len(urls)} image(s), expected {num_images}",
                    code="UNKNOWN_ERROR",
                    details={"model": model},
                )
            job.report(0.92, "downloading images")
            paths = [out_dir / f"{i}.{_ext(url, fmt)}" for i, url in enumerate(urls)]
            await _gather_all([job.download(u, p) for u, p in zip(urls, paths, strict=True)])
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
        job = _Call(self, progress)
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
                handle = files.enter_context(_open_input(reference_image, "reference image"))
                mode = _reference_mode(model, params.get("reference_mode"), aspect_ratio, duration)
                inp["reference_images" if mode == "reference_images" else "image"] = (
                    [handle] if mode == "reference_images" else handle
                )
            inp.update(params.get("extra_input") or {})
            async with job:
                output = await job.predict(model, _clean(inp, model), label="video")
                url = _first_url(output, model)
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
        job = _Call(self, progress)
        with ExitStack() as files:
            inp: dict[str, Any] = {
                "video": files.enter_context(_open_input(video, "video")),
                "audio": files.enter_context(_open_input(audio, "audio")),
                "temperature": params.get("temperature"),
                "sync_mode": params.get("sync_mode"),
                "active_speaker": active,
                "occlusion_detection_enabled": params.get("occlusion_detection_enabled"),
                **dict(params.get("extra_input") or {}),
            }
            async with job:
                output = await job.predict(model, _clean(inp, model), label="lipsync")
                url = _first_url(output, model)
                job.report(0.95, "downloading lipsynced video")
                await job.download(url, out_path)
        progress(1.0, "lipsync ready")
        return ProviderResult(paths=[out_path], model_used=model, raw={"output": url})

    # ------------------------------------------------------------------ helpers used by _Call

    def _new_client(self) -> Client:
        return Client(api_token=self._token, base_url=self.base_url)

    def _scrub(self, text: str) -> str:
        return text.replace(self._token, "[redacted]") if self._token else text

    def _backoff(self, attempt: int) -> float:
        return float(min(self.retry_max_delay_s, self.retry_base_delay_s * 2 ** (attempt - 1)))


class _Call:
    """One provider call: its client, its deadline, its progress and its error mapping."""

    def __init__(self, provider: ReplicateProvider, progress: Progress) -> None:
        self.p = provider
        self._progress = progress
        self._last = 0.0
        loop = asyncio.get_running_loop()
        self._loop = loop
        self.deadline = loop.time() + provider.timeout_s
        # A client per call: httpx.AsyncClient pools are bound to the loop that first used them.
        self.client = provider._new_client()

    async def __aenter__(self) -> _Call:
        return self

    async def __aexit__(self, *exc: object) -> None:
        # replicate.Client has no public close; its httpx client is private and lazily created.
        http = getattr(self.client, "_Client__async_client", None)
        if http is not None:
            with contextlib.suppress(Exception):
                await http.aclose()

    # -- progress / time ------------------------------------------------------------------

    def report(self, fraction: float, message: str) -> None:
        fraction = max(self._last, min(1.0, fraction))  # never goes backwards
        self._last = fraction
        try:
            self._progress(fraction, message)
        except Exception:  # a broken progress sink must not kill a paid generation
            log.debug("progress callback failed", exc_info=True)

    def remaining(self) -> float:
        return self.deadline - self._loop.time()

    def deadline_error(self, what: str, prediction_id: str | None = None) -> DeadlineExceeded:
        details: dict[str, Any] = {"timeout_s": self.p.timeout_s, "step": what}
        if prediction_id:
            details["prediction_id"] = prediction_id
        return DeadlineExceeded(
            f"Replicate {what} did not finish within {self.p.timeout_s:g} s",
            hint="Try again later, or raise the provider timeout.",
            details=details,
        )

    async def within_deadline(self, aw: Awaitable[T], what: str, prediction_id: str | None = None) -> T:
        remaining = self.remaining()
        if remaining <= 0:
            if asyncio.iscoroutine(aw):
                aw.close()
            raise self.deadline_error(what, prediction_id)
        try:
            return await asyncio.wait_for(aw, remaining)
        except TimeoutError:
            raise self.deadline_error(what, prediction_id) from None

    # -- predictions ----------------------------------------------------------------------

    async def predict(
        self,
        model: str,
        inp: dict[str, Any],
        *,
        label: str,
        progress: Progress | None = None,
    ) -> Any:
        report = progress or self.report
        report(0.01, f"{label}: uploading inputs" if _has_files(inp) else f"{label}: submitting")
        encoded = await self._upload_files(inp, model)
        prediction = await self._create(model, encoded)
        return await self._wait(prediction, model, label, report)

    async def _retrying(self, make: Callable[[], Awaitable[T]], what: str, model: str) -> T:
        """Run a request that is safe to repeat: 429/5xx/connection errors retried with backoff."""
        attempts = max(1, self.p.max_create_attempts)
        for attempt in range(1, attempts + 1):
            try:
                return await self.within_deadline(make(), what)
            except ReplicateError as exc:
                status = exc.status or 0
                if attempt < attempts and (status == 429 or status >= 500):
                    log.info("replicate %s answered %s; retry %d/%d", what, status, attempt, attempts - 1)
                    await self._sleep_backoff(attempt, what)
                    continue
                raise self.api_error(exc, model, what) from None
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                if attempt < attempts:
                    await self._sleep_backoff(attempt, what)
                    continue
                raise self.transport_error(exc, model, what) from None
            except httpx.HTTPError as exc:  # may have reached the server: not repeated
                raise self.transport_error(exc, model, what) from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def _sleep_backoff(self, attempt: int, what: str) -> None:
        delay = self.p._backoff(attempt)
        if delay >= self.remaining():
            raise self.deadline_error(what)
        await asyncio.sleep(delay)

    async def _upload_files(self, value: Any, model: str) -> Any:
        """Replace open file handles in the input by uploaded-file URLs (``POST /v1/files``)."""
        if isinstance(value, dict):
            return {k: await self._upload_files(v, model) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [await self._upload_files(v, model) for v in value]
        if _is_file(value):
            handle = value

            async def upload() -> str:
                created = await self.client.files.async_create(handle)
                return str(created.urls["get"])

            return await self._retrying(upload, "file upload", model)
        return value

    async def _create(self, model: str, inp: dict[str, Any]) -> Prediction:
        owner_name, _, version = model.partition(":")

        async def create() -> Prediction:
            created: Prediction
            if version:
                created = await self.client.predictions.async_create(version=version, input=inp)
            else:
                created = await self.client.models.predictions.async_create(model=owner_name, input=inp)
            return created

        if "/" not in owner_name:
            raise ProviderError(
                f"Invalid Replicate model reference {model!r}",
                code="UNKNOWN_ERROR",
                hint="Use owner/name or owner/name:version, e.g. google/imagen-4.",
                details={"model": model},
            )
        return await self._retrying(create, "prediction create", model)

    async def _wait(self, prediction: Prediction, model: str, label: str, report: Progress) -> Any:
        pid = prediction.id
        started = self._loop.time()
        errors = 0
        fraction = 0.02
        try:
            while True:
                status = prediction.status
                if status == "succeeded":
                    report(1.0, f"{label}: succeeded")
                    return prediction.output
                if status in ("failed", "canceled"):
                    raise self.prediction_error(prediction, model)
                parsed = prediction.progress if prediction.logs else None
                if parsed is not None:
                    fraction = max(fraction, 0.05 + 0.9 * parsed.percentage)
                else:
                    elapsed = self._loop.time() - started
                    ramp = 0.05 + 0.9 * (1 - math.exp(-elapsed / max(self.p.progress_ramp_s, 1e-3)))
                    fraction = max(fraction, min(ramp, 0.95))
                report(fraction, f"{label}: {status}")

                remaining = self.remaining()
                if remaining <= 0:
                    raise self.deadline_error(label, pid)
                await asyncio.sleep(min(self.p.poll_interval_s, remaining))
                try:
                    prediction = await self.within_deadline(
                        self.client.predictions.async_get(pid), label, pid
                    )
                    errors = 0
                except ReplicateError as exc:
                    errors += 1
                    if exc.status in (401, 403) or errors >= self.p.max_poll_errors:
                        raise self.api_error(exc, model, "prediction status", pid) from None
                except httpx.HTTPError as exc:
                    errors += 1
                    if errors >= self.p.max_poll_errors:
                        raise self.transport_error(exc, model, "prediction status", pid) from None
        except BaseException:
            if prediction.status not in _TERMINAL:
                await self._cancel_quietly(pid)
            raise

    async def _cancel_quietly(self, pid: str) -> None:
        try:
            await asyncio.shield(asyncio.wait_for(self.client.predictions.async_cancel(pid), 10))
            log.info("canceled replicate prediction %s", pid)
        except BaseException:  # best effort; the original error is what matters
            log.warning("could not cancel replicate prediction %s", pid, exc_info=False)

    # -- downloads ------------------------------------------------------------------------

    async def download(self, url: str, dest: Path) -> Path:
        """Fetch an output URL (or data URI) to ``dest`` atomically, without our token."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.part")
        try:
            if url.startswith("data:"):
                header, _, payload = url.partition(",")
                data = base64.b64decode(payload) if header.endswith(";base64") else unquote(payload).encode()
                tmp.write_bytes(data)
            else:
                if urlsplit(url).scheme not in ("http", "https"):
                    raise ProviderError(
                        "Replicate returned an output that is not a web address",
                        code="UNKNOWN_ERROR",
                        details={"output": url[:200]},
                    )
                await self.within_deadline(self._fetch(url, tmp), "output download")
            os.replace(tmp, dest)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        return dest

    async def _fetch(self, url: str, tmp: Path) -> None:
        # A plain client: output hosts (replicate.delivery) need no auth, and must not get our token.
        timeout = httpx.Timeout(30.0, read=120.0)
        try:
            async with (
                httpx.AsyncClient(follow_redirects=True, timeout=timeout) as http,
                http.stream("GET", url) as resp,
            ):
                if resp.status_code >= 400:
                    raise ProviderError(
                        f"Downloading the Replicate output failed with HTTP {resp.status_code}",
                        code="UNKNOWN_ERROR",
                        details={"status": resp.status_code},
                    )
                with tmp.open("wb") as fh:
                    async for chunk in resp.aiter_bytes():
                        fh.write(chunk)
        except httpx.HTTPError as exc:
            raise ProviderError(
                f"Downloading the Replicate output failed: {type(exc).__name__}",
                code="UNKNOWN_ERROR",
            ) from None

    # -- error mapping --------------------------------------------------------------------

    def api_error(
        self, exc: ReplicateError, model: str, what: str, prediction_id: str | None = None
    ) -> ProviderError:
        status = exc.status or 0
        text = self.p._scrub(" ".join(s for s in (exc.title, exc.detail) if s) or f"HTTP {status}")
        details: dict[str, Any] = {"model": model, "replicate_status": status, "step": what}
        if prediction_id:
            details["prediction_id"] = prediction_id
        if status in (401, 403):
            return ProviderError(
                f"Replicate rejected the API token ({status}) during {what}",
                code="AUTHENTICATION_ERROR",
                status_code=502,
                hint="Check REPLICATE_API_TOKEN on the server.",
                details=details,
            )
        if status == 429:
            return ProviderError(
                f"Replicate rate limit exceeded during {what}: {text}",
                code="RATE_LIMIT_EXCEEDED",
                status_code=429,
                hint="Wait a moment and try again.",
                details=details,
            )
        if status not in (404, 422) and _CONTENT_POLICY.search(text):
            return _policy_error(text, details)
        hint = None
        if status == 404:
            hint = f"Check that the model {model!r} exists on Replicate."
        elif status == 422:
            hint = "The model rejected the input; check the flavor's parameters."
        elif status == 402:
            hint = "The Replicate account needs credit."
        return ProviderError(
            f"Replicate {what} failed ({status}): {text}",
            code="UNKNOWN_ERROR",
            status_code=502,
            hint=hint,
            details=details,
        )

    def transport_error(
        self, exc: Exception, model: str, what: str, prediction_id: str | None = None
    ) -> ProviderError:
        details: dict[str, Any] = {"model": model, "step": what}
        if prediction_id:
            details["prediction_id"] = prediction_id
        return ProviderError(
            f"Could not reach Replicate during {what}: {type(exc).__name__}",
            code="UNKNOWN_ERROR",
            status_code=502,
            details=details,
        )

    def prediction_error(self, prediction: Prediction, model: str) -> ProviderError:
        details: dict[str, Any] = {
            "model": model,
            "prediction_id": prediction.id,
            "status": prediction.status,
        }
        if prediction.status == "canceled":
            return ProviderError(
                f"The Replicate prediction for {model} was canceled", code="UNKNOWN_ERROR", details=details
            )
        text = self.p._scrub(str(prediction.error or "no error message"))
        if _CONTENT_POLICY.search(text):
            return _policy_error(text, details)
        return ProviderError(
            f"The Replicate prediction for {model} failed: {text}",
            code="UNKNOWN_ERROR",
            status_code=502,
            details=details,
        )


# ---------------------------------------------------------------------- module helpers


def _policy_error(text: str, details: dict[str, Any]) -> ProviderError:
    return ProviderError(
        f"The model refused the request under its content policy: {text}",
        code="CONTENT_POLICY_VIOLATION",
        status_code=400,
        hint="Rephrase the prompt (or use another reference image) and try again.",
        details=details,
    )


async def _gather_all(aws: list[Awaitable[T]]) -> list[T]:
    """gather() that cancels the siblings when one fails (so their predictions get canceled too)."""
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


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


def _is_file(value: Any) -> bool:
    return hasattr(value, "read") and hasattr(value, "seek") and not isinstance(value, str | bytes)


def _has_files(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_has_files(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_has_files(v) for v in value)
    return _is_file(value)


def _open_input(path: Path, what: str) -> Any:
    path = Path(path)
    if not path.is_file():
        raise NotFound(f"The {what} file for Replicate does not exist", details={"file": path.name})
    return path.open("rb")


def _output_urls(output: Any) -> list[str]:
    if output is None:
        return []
    if isinstance(output, FileOutput):
        return [output.url]
    if isinstance(output, str):
        return [output] if output.startswith(("http://", "https://", "data:")) else []
    if isinstance(output, Mapping):
        return [u for v in output.values() for u in _output_urls(v)]
    if isinstance(output, list | tuple):
        return [u for v in output for u in _output_urls(v)]
    url = getattr(output, "url", None)
    return [url] if isinstance(url, str) else []


def _first_url(output: Any, model: str) -> str:
    urls = _output_urls(output)
    if not urls:
        raise ProviderError(
            f"{model} finished without a downloadable output",
            code="UNKNOWN_ERROR",
            details={"model": model, "output_type": type(output).__name__},
        )
    return urls[0]


def _ext(url: str, default: str) -> str:
    if url.startswith("data:"):
        mime = url[5:].split(";", 1)[0].split(",", 1)[0]
        guessed = mimetypes.guess_extension(mime) if mime else None
        return (guessed or f".{default}").lstrip(".").replace("jpeg", "jpg")
    suffix = Path(urlsplit(url).path).suffix.lower().lstrip(".")
    if suffix in ("png", "jpg", "jpeg", "webp"):
        return "jpg" if suffix == "jpeg" else suffix
    return "jpg" if default == "jpeg" else default


def _join_text(output: Any) -> str:
    """LLM output on Replicate is usually a list of string tokens; join it."""
    if output is None:
        return ""
    if isinstance(output, str):
        return output
    if isinstance(output, list | tuple):
        return "".join(_join_text(o) for o in output)
    if isinstance(output, Mapping):
        for key in ("output", "text", "content", "response"):
            if key in output:
                return _join_text(output[key])
        return json.dumps(output)
    return str(output)


def _candidates(text: str) -> list[str]:
    stripped = text.strip()
    out = [stripped]
    out += [m.group(1).strip() for m in _FENCE.finditer(text)]
    start, end = stripped.find("{"), stripped.rfind("}")
    if 0 <= start < end:
        out.append(stripped[start : end + 1])
    return out


def _parse_json_object(text: str) -> Any:
    for candidate in _candidates(text):
        try:
            return json.loads(candidate)
        except ValueError:
            continue
    # Last resort: the first decodable JSON value that starts at a '{' and has "scenes".
    decoder = json.JSONDecoder()
    for m in re.finditer(r"\{", text):
        try:
            value, _ = decoder.raw_decode(text, m.start())
        except ValueError:
            continue
        if isinstance(value, dict) and "scenes" in value:
            return value
    raise ValueError("no JSON object found in the output")


def extract_scenes(text: str, number_of_scenes: int) -> list[Scene]:
    """Parse ``{"scenes": [{"description", "negative_description"}]}`` out of free LLM text.

    Code fences and chatter around the object are tolerated; a bare list of scenes is accepted.
    More scenes than asked are truncated; fewer, or anything unusable, raise ``ValueError``.
    """
    if not text.strip():
        raise ValueError("the output was empty")
    data = _parse_json_object(text)
    raw = data.get("scenes") if isinstance(data, dict) else data
    if not isinstance(raw, list):
        raise ValueError('the JSON has no "scenes" list')
    scenes: list[Scene] = []
    for i, item in enumerate(raw):
        if isinstance(item, str) and item.strip():
            scenes.append(Scene(description=item.strip(), negative_description=""))
            continue
        if not isinstance(item, dict):
            raise ValueError(f"scene {i + 1} is not an object")
        desc = item.get("description")
        if not isinstance(desc, str) or not desc.strip():
            raise ValueError(f'scene {i + 1} has no "description"')
        neg = item.get("negative_description")
        scenes.append(Scene(description=desc.strip(), negative_description=str(neg or "").strip()))
    if len(scenes) < number_of_scenes:
        raise ValueError(f"got {len(scenes)} scene(s), expected {number_of_scenes}")
    return scenes[:number_of_scenes]
