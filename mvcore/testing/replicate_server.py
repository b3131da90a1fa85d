"""A fake Replicate HTTP API on 127.0.0.1 for tests that drive the real ``replicate`` client.

It speaks the slice of the API that :class:`mvcore.providers.replicate.ReplicateProvider`
(and ``replicate.Client``) use:

* ``POST /v1/models/{owner}/{name}/predictions`` and ``POST /v1/predictions`` -> 201 prediction
* ``GET /v1/predictions/{id}`` -> the prediction; each GET advances it
  ``starting -> processing -> succeeded|failed`` after ``polls`` polls
* ``POST /v1/predictions/{id}/cancel`` -> the prediction, now ``canceled``
* ``POST /v1/files`` (multipart, field ``content``) -> a file object whose ``urls.get``
  is ``GET /v1/files/{id}``; the bytes are kept in :attr:`FakeReplicateServer.uploads`
* ``GET /assets/{name}`` -> bytes registered with :meth:`FakeReplicateServer.add_asset`
  (no auth, like ``replicate.delivery``)

Every request is recorded in :attr:`FakeReplicateServer.requests`.  Failures are scriptable:
a model can fail with an error message, never finish, stay queued, or the next create / get /
upload calls can answer with an HTTP error status.  A wrong bearer token gets 401.

**Inputs are checked** against the model catalogue (:mod:`mvcore.providers.catalogue`, or the
``catalogue`` given) the way Replicate checks them against a model's schema: a refused value, a
missing required input or (``reject_unknown_inputs``, on by default -- stricter than we know
Replicate to be) an input the model does not have is answered ``422`` with Replicate's problem
body ``{"title": "Input validation failed", "detail": "- input.duration: ...", "status": 422,
"invalid_fields": [{"type", "field", "description"}]}`` and no prediction is made.

**Deadlines**: a create may carry ``Cancel-After`` (Go-style duration: ``90s``, ``1m30s``,
``500ms``).  When it passes, a prediction that has not started becomes ``aborted`` and a running
one ``canceled``, as on Replicate.

Example::

    with FakeReplicateServer(api_token="r8_test") as fake:
        png = fake.add_asset("a.png", PNG_BYTES, "image/png")
        fake.add_model("google/imagen-4", lambda inp: png)
        provider = ReplicateProvider("r8_test", base_url=fake.base_url, poll_interval_s=0.01)
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import json
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import unquote, urlsplit

from mvcore.config.model_checks import ModelCatalogue
from mvcore.testing.replicate_rules import input_refusal, parse_cancel_after

__all__ = [
    "FakeModel",
    "FakeReplicateServer",
    "PredictionFailure",
    "RecordedRequest",
    "UploadedFile",
]

_FINAL = frozenset({"succeeded", "failed", "canceled", "aborted"})

#: handler(input) -> output.  Raise PredictionFailure to make the prediction fail.
OutputHandler = Callable[[dict[str, Any]], Any]


class PredictionFailure(Exception):
    """Raised by an output handler: the prediction ends ``failed`` with this message as ``error``."""


@dataclass
class FakeModel:
    """How one model behaves.

    ``polls``: GETs before the prediction is finished (``None``: it never finishes).
    ``error``: when set, the prediction ends ``failed`` with this message instead of calling
    ``handler``.  ``logs``: log text shown while processing (e.g. a tqdm line ``" 50%|##| 5/10"``).
    ``queued``: GETs the prediction stays ``starting`` first (``None``: it never starts).
    """

    handler: OutputHandler | None = None
    polls: int | None = 2
    error: str | None = None
    logs: str = ""
    queued: int | None = 0


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    json: Any = None

    @property
    def authorization(self) -> str | None:
        return self.headers.get("authorization")


@dataclass(frozen=True)
class UploadedFile:
    id: str
    name: str
    content_type: str
    data: bytes


@dataclass
class _Prediction:
    id: str
    model: str
    version: str
    input: dict[str, Any]
    spec: FakeModel
    status: str = "starting"
    output: Any = None
    error: str | None = None
    logs: str = ""
    polls: int = 0
    created_at: str = field(default_factory=lambda: _now())
    started_at: str | None = None
    completed_at: str | None = None
    #: time.monotonic() at which Cancel-After stops it (None: no deadline)
    deadline: float | None = None


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class FakeReplicateServer:
    """A threaded HTTP server imitating Replicate's API; see the module docstring."""

    def __init__(
        self,
        *,
        api_token: str = "r8_fake_token",
        default_polls: int = 2,
        catalogue: ModelCatalogue | None = None,
        validate_inputs: bool = True,
        reject_unknown_inputs: bool = True,
        deadline_scale: float = 1.0,
    ) -> None:
        self.api_token = api_token
        self.default_polls = default_polls
        self.catalogue = catalogue
        self.validate_inputs = validate_inputs
        self.reject_unknown_inputs = reject_unknown_inputs
        #: multiplies every Cancel-After (a test can make the server's deadline come first)
        self.deadline_scale = deadline_scale
        self.requests: list[RecordedRequest] = []
        self.uploads: dict[str, UploadedFile] = {}
        self.assets: dict[str, tuple[bytes, str]] = {}
        self.models: dict[str, FakeModel] = {}
        #: version id -> "owner/name", for ``POST /v1/predictions {"version": ...}``
        self.versions: dict[str, str] = {}
        self._predictions: dict[str, _Prediction] = {}
        self._create_failures: deque[tuple[int, str]] = deque()
        self._get_failures: deque[tuple[int, str]] = deque()
        self._upload_failures: deque[tuple[int, str]] = deque()
        self._lock = threading.RLock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> FakeReplicateServer:
        if self._httpd is not None:
            return self
        handler = type("_BoundHandler", (_Handler,), {"fake": self})
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        httpd.daemon_threads = True
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-replicate", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeReplicateServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("FakeReplicateServer is not running; use start() or a with block")
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    # -- scripting -------------------------------------------------------------------------

    def add_model(
        self,
        model: str,
        handler: OutputHandler | None = None,
        *,
        polls: int | None = None,
        error: str | None = None,
        logs: str = "",
        version: str | None = None,
        queued: int | None = 0,
    ) -> FakeModel:
        """Register ``owner/name``.  ``polls=None`` keeps ``default_polls``; see :class:`FakeModel`."""
        spec = FakeModel(
            handler=handler,
            polls=self.default_polls if polls is None else polls,
            error=error,
            logs=logs,
            queued=queued,
        )
        with self._lock:
            self.models[model] = spec
            if version:
                self.versions[version] = model
        return spec

    def hang_model(self, model: str) -> FakeModel:
        """Predictions of ``model`` stay ``processing`` until canceled."""
        spec = self.add_model(model, lambda _input: None)
        spec.polls = None
        return spec

    def fail_model(self, model: str, error: str) -> FakeModel:
        """Predictions of ``model`` end ``failed`` with ``error`` (e.g. ``"NSFW content detected"``)."""
        return self.add_model(model, error=error)

    def fail_next_creates(self, status: int, times: int = 1, detail: str = "") -> None:
        """The next ``times`` prediction creates answer ``status`` (no prediction is made)."""
        with self._lock:
            self._create_failures.extend([(status, detail)] * times)

    def fail_next_gets(self, status: int, times: int = 1, detail: str = "") -> None:
        """The next ``times`` ``GET /v1/predictions/{id}`` answer ``status``."""
        with self._lock:
            self._get_failures.extend([(status, detail)] * times)

    def fail_next_uploads(self, status: int, times: int = 1, detail: str = "") -> None:
        """The next ``times`` ``POST /v1/files`` answer ``status``."""
        with self._lock:
            self._upload_failures.extend([(status, detail)] * times)

    def add_asset(self, name: str, data: bytes, content_type: str = "application/octet-stream") -> str:
        """Serve ``data`` at ``/assets/{name}`` and return its absolute URL."""
        with self._lock:
            self.assets[name] = (data, content_type)
        return f"{self.base_url}/assets/{name}"

    # -- inspection ------------------------------------------------------------------------

    def requests_to(self, method: str, path_pattern: str) -> list[RecordedRequest]:
        """Recorded requests whose method matches and whose path fully matches the regex."""
        rx = re.compile(path_pattern)
        with self._lock:
            return [r for r in self.requests if r.method == method and rx.fullmatch(r.path)]

    @property
    def create_requests(self) -> list[RecordedRequest]:
        return self.requests_to("POST", r"/v1/(models/[^/]+/[^/]+/)?predictions")

    @property
    def cancel_requests(self) -> list[RecordedRequest]:
        return self.requests_to("POST", r"/v1/predictions/[^/]+/cancel")

    def prediction(self, prediction_id: str) -> dict[str, Any]:
        with self._lock:
            return self._to_json(self._predictions[prediction_id])

    @property
    def predictions(self) -> list[dict[str, Any]]:
        with self._lock:
            return [self._to_json(p) for p in self._predictions.values()]

    def file_bytes(self, url: str) -> bytes:
        """The bytes behind an input value: an uploaded-file URL, an asset URL or a data URI."""
        if url.startswith("data:"):
            header, _, payload = url.partition(",")
            return base64.b64decode(payload) if header.endswith(";base64") else unquote(payload).encode()
        path = urlsplit(url).path
        with self._lock:
            if m := re.fullmatch(r"/v1/files/([^/]+)", path):
                return self.uploads[m.group(1)].data
            if m := re.fullmatch(r"/assets/(.+)", path):
                return self.assets[unquote(m.group(1))][0]
        raise KeyError(f"no fake file behind {url!r}")

    # -- request handling (called from server threads) --------------------------------------

    def _record(self, req: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(req)

    def _authorized(self, headers: dict[str, str]) -> bool:
        return headers.get("authorization") == f"Bearer {self.api_token}"

    def _to_json(self, p: _Prediction) -> dict[str, Any]:
        base = self.base_url
        return {
            "id": p.id,
            "model": p.model,
            "version": p.version,
            "status": p.status,
            "input": p.input,
            "output": p.output,
            "logs": p.logs,
            "error": p.error,
            "metrics": {"predict_time": 0.01} if p.status == "succeeded" else {},
            "created_at": p.created_at,
            "started_at": p.started_at,
            "completed_at": p.completed_at,
            "data_removed": False,
            "urls": {
                "get": f"{base}/v1/predictions/{p.id}",
                "cancel": f"{base}/v1/predictions/{p.id}/cancel",
                "web": f"{base}/p/{p.id}",
            },
        }

    def _create(self, model: str | None, body: Any, headers: dict[str, str]) -> tuple[int, Any]:
        with self._lock:
            if self._create_failures:
                status, detail = self._create_failures.popleft()
                return status, _problem(status, detail)
            if not isinstance(body, dict) or not isinstance(body.get("input", {}), dict):
                return 422, _problem(422, "- input: Invalid type. Expected: object")
            deadline = None
            if "cancel-after" in headers:
                seconds = parse_cancel_after(headers["cancel-after"])
                if seconds is None:
                    return 400, _problem(400, f"invalid Cancel-After duration {headers['cancel-after']!r}")
                deadline = time.monotonic() + seconds * self.deadline_scale
            version = "fake-version"
            if model is None:
                version = str(body.get("version") or "")
                model = self.versions.get(version)
            spec = self.models.get(model) if model else None
            if spec is None or model is None:
                return 404, _problem(404, "The requested resource could not be found.")
            inp = dict(body.get("input") or {})
            refused = self._input_problems(model, inp)
            if refused is not None:
                return 422, refused
            pid = uuid.uuid4().hex[:20]
            pred = _Prediction(id=pid, model=model, version=version, input=inp, spec=spec, deadline=deadline)
            self._predictions[pid] = pred
            return 201, self._to_json(pred)

    def _input_problems(self, model: str, inp: dict[str, Any]) -> dict[str, Any] | None:
        """Replicate's 422 body when the catalogued model would refuse ``inp``, else None."""
        if not self.validate_inputs:
            return None
        from mvcore.providers.catalogue import shipped_catalogue

        entry = (self.catalogue or shipped_catalogue()).get(model)
        if entry is None:
            return None
        return input_refusal(entry, inp, reject_unknown=self.reject_unknown_inputs)

    def _advance(self, p: _Prediction) -> None:
        if p.status in _FINAL:
            return
        if p.deadline is not None and time.monotonic() >= p.deadline:
            # Replicate: not started yet -> aborted (not charged); running -> canceled
            p.status = "aborted" if p.status == "starting" else "canceled"
            p.completed_at = _now()
            return
        p.polls += 1
        queued = p.spec.queued
        if queued is None or p.polls <= queued:
            p.status = "starting"
            return
        polls = p.polls - queued
        if p.spec.polls is None or polls < p.spec.polls:
            p.status = "processing"
            p.started_at = p.started_at or _now()
            p.logs = p.spec.logs
            return
        p.started_at = p.started_at or _now()
        p.completed_at = _now()
        if p.spec.error is not None:
            p.status, p.error = "failed", p.spec.error
            return
        try:
            p.output = p.spec.handler(p.input) if p.spec.handler else None
            p.status = "succeeded"
        except PredictionFailure as exc:
            p.status, p.error = "failed", str(exc)
        except Exception as exc:  # a broken handler is a failed prediction, not a dead server
            p.status, p.error = "failed", f"{type(exc).__name__}: {exc}"

    def _get(self, pid: str) -> tuple[int, Any]:
        with self._lock:
            if self._get_failures:
                status, detail = self._get_failures.popleft()
                return status, _problem(status, detail)
            pred = self._predictions.get(pid)
            if pred is None:
                return 404, _problem(404, "The requested resource could not be found.")
            self._advance(pred)
            return 200, self._to_json(pred)

    def _cancel(self, pid: str) -> tuple[int, Any]:
        with self._lock:
            pred = self._predictions.get(pid)
            if pred is None:
                return 404, _problem(404, "The requested resource could not be found.")
            if pred.status not in _FINAL:
                pred.status = "canceled"
                pred.completed_at = _now()
            return 200, self._to_json(pred)

    def _upload(self, content_type: str, body: bytes) -> tuple[int, Any]:
        with self._lock:
            if self._upload_failures:
                status, detail = self._upload_failures.popleft()
                return status, _problem(status, detail)
        parts = _parse_multipart(content_type, body)
        content = parts.get("content")
        if content is None:
            return 400, _problem(400, "multipart field 'content' is required")
        name, ctype, data = content
        fid = uuid.uuid4().hex[:20]
        uploaded = UploadedFile(id=fid, name=name or "file", content_type=ctype, data=data)
        with self._lock:
            self.uploads[fid] = uploaded
        return 201, self._file_json(uploaded)

    def _file_json(self, f: UploadedFile) -> dict[str, Any]:
        return {
            "id": f.id,
            "name": f.name,
            "content_type": f.content_type,
            "size": len(f.data),
            "etag": f"etag-{f.id}",
            "checksums": {},
            "metadata": {},
            "created_at": _now(),
            "expires_at": None,
            "urls": {"get": f"{self.base_url}/v1/files/{f.id}"},
        }


def _problem(status: int, detail: str = "") -> dict[str, Any]:
    titles = {
        400: "Bad Request",
        401: "Unauthenticated",
        404: "Not found",
        422: "Input validation failed",
        429: "Too Many Requests",
    }
    title = titles.get(status, "Internal Server Error" if status >= 500 else "Error")
    return {"title": title, "detail": detail or title, "status": status}


def _parse_multipart(content_type: str, body: bytes) -> dict[str, tuple[str | None, str, bytes]]:
    raw = b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
    out: dict[str, tuple[str | None, str, bytes]] = {}
    if not isinstance(msg, EmailMessage) or not msg.is_multipart():
        return out
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        out[name] = (part.get_filename(), part.get_content_type(), data)
    return out


class _Handler(BaseHTTPRequestHandler):
    fake: FakeReplicateServer
    server_version = "FakeReplicate/1.0"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _read_body(self) -> bytes:
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, payload: Any = None, *, raw: bytes | None = None, ctype: str = "") -> None:
        data = raw if raw is not None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype or "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _handle(self) -> None:
        fake = self.fake
        body = self._read_body()
        path = urlsplit(self.path).path
        headers = {k.lower(): v for k, v in self.headers.items()}
        parsed: Any = None
        if body and headers.get("content-type", "").startswith("application/json"):
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = None
        fake._record(RecordedRequest(self.command, path, headers, body, parsed))

        if m := re.fullmatch(r"/assets/(.+)", path):
            if self.command not in ("GET", "HEAD"):
                return self._send(405, _problem(405, "method not allowed"))
            with fake._lock:
                asset = fake.assets.get(unquote(m.group(1)))
            if asset is None:
                return self._send(404, _problem(404))
            return self._send(200, raw=asset[0], ctype=asset[1])

        if not path.startswith("/v1/"):
            return self._send(404, _problem(404))
        if not fake._authorized(headers):
            return self._send(401, _problem(401, "You did not pass a valid authentication token"))

        method = self.command
        if method == "POST" and (m := re.fullmatch(r"/v1/models/([^/]+)/([^/]+)/predictions", path)):
            return self._send(*fake._create(f"{m.group(1)}/{m.group(2)}", parsed, headers))
        if method == "POST" and path == "/v1/predictions":
            return self._send(*fake._create(None, parsed, headers))
        if method == "GET" and (m := re.fullmatch(r"/v1/predictions/([^/]+)", path)):
            return self._send(*fake._get(m.group(1)))
        if method == "POST" and (m := re.fullmatch(r"/v1/predictions/([^/]+)/cancel", path)):
            return self._send(*fake._cancel(m.group(1)))
        if method == "POST" and path == "/v1/files":
            return self._send(*fake._upload(headers.get("content-type", ""), body))
        if method == "GET" and (m := re.fullmatch(r"/v1/files/([^/]+)", path)):
            with fake._lock:
                uploaded = fake.uploads.get(m.group(1))
            if uploaded is None:
                return self._send(404, _problem(404))
            return self._send(200, fake._file_json(uploaded))
        return self._send(404, _problem(404))

    def do_GET(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()
