"""One Replicate call: uploads, create with safe retries, polling to a deadline, output download.

Split from ``replicate.py`` (which decides *what* to ask each model) because this is *how* a
prediction is driven, the same for every model: the client per call, the deadline, progress,
cancellation and the mapping of failures to the original system's error codes.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import math
import mimetypes
import os
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import httpx
from replicate.client import Client
from replicate.exceptions import ReplicateError
from replicate.helpers import FileOutput
from replicate.prediction import Prediction

try:  # replicate parses predictions with pydantic's v1 API
    from pydantic.v1 import ValidationError as PredictionParseError
except ImportError:  # pragma: no cover - pydantic 1 installed
    from pydantic import ValidationError as PredictionParseError  # type: ignore[assignment]

from mvcore.errors import DeadlineExceeded, MvcoreError, NotFound, ProviderError
from mvcore.providers.base import Progress

log = logging.getLogger("mvcore.providers.replicate")

T = TypeVar("T")

_TERMINAL = frozenset({"succeeded", "failed", "canceled"})
_CONTENT_POLICY = re.compile(
    r"nsfw|safety(?!_)|unsafe|sensitive|content[ _-]?polic|moderat|flagged|responsible ai|prohibited|"
    r"\bE005\b|violat",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class CallPolicy:
    """How every call of one provider is driven: token, endpoint, deadline, retries, polling.

    Owned by :class:`~mvcore.providers.replicate.ReplicateProvider` and handed to each
    :class:`PredictionCall`, so the call needs nothing else from the provider (no import back).
    Frozen: change it with ``dataclasses.replace``.
    """

    token: str = field(repr=False)
    base_url: str | None = None
    #: a whole provider call (uploads, create, polling, download), seconds; sent as Cancel-After
    timeout_s: float = 900.0
    poll_interval_s: float = 1.0
    #: attempts for an upload/create answered 429/5xx (before a prediction exists)
    max_create_attempts: int = 3
    #: first backoff and its cap, seconds (doubles each attempt)
    retry_base_delay_s: float = 1.0
    retry_max_delay_s: float = 8.0
    #: consecutive failed status polls tolerated (after the client's own GET retries)
    max_poll_errors: int = 3
    #: time constant of the progress ramp used when the model logs no percentage
    progress_ramp_s: float = 45.0

    def __post_init__(self) -> None:
        if self.timeout_s <= 0 or self.poll_interval_s <= 0:
            raise ValueError("timeout_s and poll_interval_s must be positive")

    def scrub(self, text: str) -> str:
        return text.replace(self.token, "[redacted]") if self.token else text

    def backoff(self, attempt: int) -> float:
        return float(min(self.retry_max_delay_s, self.retry_base_delay_s * 2 ** (attempt - 1)))


def cancel_after(seconds: float) -> str:
    """A ``Cancel-After`` value (whole seconds, at least 1): ``"900s"``."""
    return f"{max(1, math.ceil(seconds))}s"


def _is_create(request: httpx.Request) -> bool:
    return request.method == "POST" and request.url.path.rstrip("/").endswith("/predictions")


class PredictionCall:
    """One provider call: its client, its deadline, its progress and its error mapping."""

    def __init__(self, policy: CallPolicy, progress: Progress) -> None:
        self.p = policy
        self._progress = progress
        self._last = 0.0
        loop = asyncio.get_running_loop()
        self._loop = loop
        self.deadline = loop.time() + policy.timeout_s
        # A client per call: httpx pools are bound to the loop that first used them.  We own the
        # transport, so we can close it (replicate.Client has no public close); the client wraps
        # it in its RetryTransport, which repeats idempotent GETs answered 429/503/504.
        self._transport = httpx.AsyncHTTPTransport()
        self.client = Client(
            api_token=policy.token,
            base_url=policy.base_url,
            transport=self._transport,
            event_hooks={"request": [self._stamp_deadline]},
        )
        self.client.poll_interval = policy.poll_interval_s

    async def _stamp_deadline(self, request: httpx.Request) -> None:
        """Every prediction create carries our deadline: Replicate aborts (or cancels) it there."""
        if _is_create(request):
            request.headers["Cancel-After"] = cancel_after(self.remaining())

    async def __aenter__(self) -> PredictionCall:
        return self

    async def __aexit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            await self._transport.aclose()

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
            # not asyncio.wait_for: on Python 3.11 it returns the result and drops the caller's
            # cancel when the awaited call finishes in the same loop turn (a cancelled job then
            # polled its prediction until the deadline); asyncio.timeout keeps the cancel
            async with asyncio.timeout(remaining):
                return await aw
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
        delay = self.p.backoff(attempt)
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
            try:
                if version:
                    created = await self.client.predictions.async_create(version=version, input=inp)
                else:
                    created = await self.client.models.predictions.async_create(model=owner_name, input=inp)
            except PredictionParseError as exc:
                if unparsed_status(exc) == "aborted":
                    raise self.aborted_error("create", "", model) from None
                raise
            return created

        if "/" not in owner_name:
            raise ProviderError(
                f"Invalid Replicate model reference {model!r}",
                code="UNKNOWN_ERROR",
                hint="Use owner/name or owner/name:version, e.g. google/imagen-4.",
                details={"model": model},
            )
        from mvcore.jobs.attempt import note_external  # jobs: no redo once a paid prediction may exist

        await note_external(f"replicate:{owner_name}:creating")
        created = await self._retrying(create, "prediction create", model)
        await note_external(f"replicate:{created.id}")
        return created

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
                fraction = self._advance(prediction, fraction, started)
                report(fraction, f"{label}: {status}")

                remaining = self.remaining()
                if remaining <= 0:
                    raise self.deadline_error(label, pid)
                await asyncio.sleep(min(self.client.poll_interval, remaining))
                try:
                    await self.within_deadline(self._reload(prediction, model, label), label, pid)
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

    def _advance(self, prediction: Prediction, fraction: float, started: float) -> float:
        parsed = prediction.progress if prediction.logs else None
        if parsed is not None:
            return max(fraction, 0.05 + 0.9 * parsed.percentage)
        elapsed = self._loop.time() - started
        ramp = 0.05 + 0.9 * (1 - math.exp(-elapsed / max(self.p.progress_ramp_s, 1e-3)))
        return max(fraction, min(ramp, 0.95))

    async def _reload(self, prediction: Prediction, model: str, label: str) -> None:
        """``prediction.async_reload()``, with the one status the client cannot parse: ``aborted``.

        replicate 1.0's Prediction model lists starting/processing/succeeded/failed/canceled only,
        so a prediction Replicate *aborted* (its Cancel-After deadline passed before it started)
        fails to parse; that is turned into a deadline error here (nothing was charged).
        """
        try:
            await prediction.async_reload()
        except PredictionParseError as exc:
            status = unparsed_status(exc)
            if status == "aborted":
                prediction.status = "canceled"  # terminal: no cancel request follows
                raise self.aborted_error(label, prediction.id, model) from None
            raise ProviderError(
                f"Replicate answered a prediction status this client cannot read ({status})",
                code="UNKNOWN_ERROR",
                details={"model": model, "prediction_id": prediction.id, "status": status},
            ) from None

    def aborted_error(self, label: str, prediction_id: str, model: str) -> DeadlineExceeded:
        return DeadlineExceeded(
            f"Replicate aborted the {label} prediction of {model}: it had not started when its "
            f"{self.p.timeout_s:g} s deadline (Cancel-After) passed; nothing was charged",
            hint="Try again later (Replicate was busy), or raise the provider timeout.",
            details={
                "model": model,
                "prediction_id": prediction_id,
                "status": "aborted",
                "timeout_s": self.p.timeout_s,
            },
        )

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
        text = self.p.scrub(" ".join(s for s in (exc.title, exc.detail) if s) or f"HTTP {status}")
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

    def prediction_error(self, prediction: Prediction, model: str) -> MvcoreError:
        details: dict[str, Any] = {
            "model": model,
            "prediction_id": prediction.id,
            "status": prediction.status,
        }
        if prediction.status == "canceled":
            if self.remaining() <= 1.0:  # Replicate stopped it at our Cancel-After deadline
                return self.deadline_error(f"prediction of {model}", prediction.id)
            return ProviderError(
                f"The Replicate prediction for {model} was canceled", code="UNKNOWN_ERROR", details=details
            )
        text = self.p.scrub(str(prediction.error or "no error message"))
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


async def gather_all(aws: list[Awaitable[T]]) -> list[T]:
    """gather() that cancels the siblings when one fails (so their predictions get canceled too)."""
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


def unparsed_status(exc: Exception) -> str | None:
    """The prediction status a parse error was about (``"aborted"``), if it was about the status."""
    errors = getattr(exc, "errors", None)
    for err in errors() if callable(errors) else ():
        if tuple(err.get("loc", ())) == ("status",):
            return str((err.get("ctx") or {}).get("given", "unknown"))
    return None


def _is_file(value: Any) -> bool:
    return hasattr(value, "read") and hasattr(value, "seek") and not isinstance(value, str | bytes)


def _has_files(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_has_files(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_has_files(v) for v in value)
    return _is_file(value)


def open_input(path: Path, what: str) -> Any:
    path = Path(path)
    if not path.is_file():
        raise NotFound(f"The {what} file for Replicate does not exist", details={"file": path.name})
    return path.open("rb")


def output_urls(output: Any) -> list[str]:
    if output is None:
        return []
    if isinstance(output, FileOutput):
        return [output.url]
    if isinstance(output, str):
        return [output] if output.startswith(("http://", "https://", "data:")) else []
    if isinstance(output, Mapping):
        return [u for v in output.values() for u in output_urls(v)]
    if isinstance(output, list | tuple):
        return [u for v in output for u in output_urls(v)]
    url = getattr(output, "url", None)
    return [url] if isinstance(url, str) else []


def first_url(output: Any, model: str) -> str:
    urls = output_urls(output)
    if not urls:
        raise ProviderError(
            f"{model} finished without a downloadable output",
            code="UNKNOWN_ERROR",
            details={"model": model, "output_type": type(output).__name__},
        )
    return urls[0]


def url_ext(url: str, default: str) -> str:
    if url.startswith("data:"):
        mime = url[5:].split(";", 1)[0].split(",", 1)[0]
        guessed = mimetypes.guess_extension(mime) if mime else None
        return (guessed or f".{default}").lstrip(".").replace("jpeg", "jpg")
    suffix = Path(urlsplit(url).path).suffix.lower().lstrip(".")
    if suffix in ("png", "jpg", "jpeg", "webp"):
        return "jpg" if suffix == "jpeg" else suffix
    return "jpg" if default == "jpeg" else default
