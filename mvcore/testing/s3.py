"""A real S3 endpoint on 127.0.0.1 for tests: moto's ``ThreadedMotoServer`` on a free port.

Tests drive the real boto3 client against it -- nothing in boto3 is patched.  Credentials are
dummies passed explicitly to every client this module creates; ``os.environ`` is never touched.

Example (pytest)::

    @pytest.fixture
    def s3() -> Iterator[MotoS3Server]:
        with MotoS3Server() as server:
            yield server

    async def test_upload(s3: MotoS3Server, tmp_path: Path) -> None:
        store = MediaStore(LocalStorage(tmp_path), s3.storage())
        ...
        s3.stop()           # now the store is unreachable (connection refused)
        s3.start()          # ... and back, same port, same objects

    # or for code that builds everything from Settings:
    settings = Settings(data_dir=tmp_path, **s3.settings_overrides())

Notes: moto keeps its state per *process*, so every server gets its own bucket name by default
(``mvcore-test-<random>``); the bucket and its objects are deleted on exit.
:meth:`MotoS3Server.storage` and :meth:`MotoS3Server.client` default to one attempt and short
timeouts so a stopped server fails in milliseconds.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from types import TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mvcore.storage.s3 import S3Storage

__all__ = ["MotoS3Server"]


class MotoS3Server:
    """Start/stop an in-process moto S3 server with one bucket; a context manager."""

    def __init__(
        self,
        bucket: str | None = None,
        *,
        region: str = "us-east-1",
        access_key_id: str = "mvcore-test-key",
        secret_access_key: str = "mvcore-test-secret",
        create_bucket: bool = True,
    ) -> None:
        self.bucket = bucket or f"mvcore-test-{uuid.uuid4().hex[:12]}"
        self.region = region
        self.access_key_id = access_key_id
        self.secret_access_key = secret_access_key
        self.create_bucket = create_bucket
        self.host = "127.0.0.1"
        self.port: int | None = None
        self._server: Any = None
        self._clients: dict[str, Any] = {}
        # One request at a time when False (see mvcore.testing.dynamodb for why).
        self.threaded = True

    # --- lifecycle -------------------------------------------------------------
    def start(self) -> MotoS3Server:
        """Start (or restart, on the same port) the server; create the bucket the first time."""
        if self._server is not None:
            return self
        from moto.server import ThreadedMotoServer

        werkzeug_log = logging.getLogger("werkzeug")
        if werkzeug_log.level == logging.NOTSET:
            werkzeug_log.setLevel(logging.WARNING)  # no per-request lines on stderr
        server_class = _fast_stopping(ThreadedMotoServer, self.threaded)
        server = server_class(ip_address=self.host, port=self.port or 0, verbose=False)
        server.start()
        self._server = server
        first = self.port is None
        self.port = server.get_host_and_port()[1]
        if first and self.create_bucket:
            client = self.client()
            if self.region == "us-east-1":
                client.create_bucket(Bucket=self.bucket)
            else:
                client.create_bucket(
                    Bucket=self.bucket, CreateBucketConfiguration={"LocationConstraint": self.region}
                )
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket: clients now get "connection refused"."""
        server, self._server = self._server, None
        if server is None:
            return
        server.stop()
        wsgi = getattr(server, "_server", None)
        if wsgi is not None:
            wsgi.server_close()

    @property
    def running(self) -> bool:
        return self._server is not None

    def __enter__(self) -> MotoS3Server:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.running:
            with contextlib.suppress(Exception):  # cleanup is best effort
                self.delete_bucket()
        self.stop()

    # --- what tests need -------------------------------------------------------
    @property
    def endpoint_url(self) -> str:
        if self.port is None:
            raise RuntimeError("MotoS3Server is not started")
        return f"http://{self.host}:{self.port}"

    def client(
        self, *, connect_timeout: float = 2.0, read_timeout: float = 10.0, max_attempts: int = 1
    ) -> Any:
        """A boto3 S3 client for this server with the dummy credentials (not read from the environment).

        With the default arguments the same client is returned every time.
        """
        default = (connect_timeout, read_timeout, max_attempts) == (2.0, 10.0, 1)
        cached = self._clients.get(self.endpoint_url) if default else None
        if cached is not None:
            return cached
        import boto3
        from botocore.config import Config

        session = boto3.session.Session(
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            region_name=self.region,
        )
        config = Config(
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries={"total_max_attempts": max(1, max_attempts), "mode": "standard"},
            s3={"addressing_style": "path"},
        )
        client = session.client("s3", endpoint_url=self.endpoint_url, config=config)
        if default:
            self._clients[self.endpoint_url] = client
        return client

    def storage(self, **overrides: Any) -> S3Storage:
        """An :class:`~mvcore.storage.s3.S3Storage` on this server's bucket (fast-failing by default)."""
        from mvcore.storage.s3 import S3Storage

        options: dict[str, Any] = {
            "region": self.region,
            "endpoint_url": self.endpoint_url,
            "access_key_id": self.access_key_id,
            "secret_access_key": self.secret_access_key,
            "connect_timeout": 2.0,
            "read_timeout": 10.0,
            "max_attempts": 1,
        }
        options.update(overrides)
        return S3Storage(options.pop("bucket", self.bucket), **options)

    def settings_overrides(self) -> dict[str, Any]:
        """Keyword arguments for :class:`mvcore.settings.Settings` pointing at this server."""
        return {
            "storage_bucket": self.bucket,
            "aws_endpoint_url": self.endpoint_url,
            "aws_access_key_id": self.access_key_id,
            "aws_secret_access_key": self.secret_access_key,
            "aws_region": self.region,
        }

    def keys(self, prefix: str = "") -> list[str]:
        """Keys currently in the bucket."""
        paginator = self.client().get_paginator("list_objects_v2")
        return sorted(
            item["Key"]
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix)
            for item in page.get("Contents", ())
        )

    def get(self, key: str) -> bytes:
        """The bytes stored under ``key`` (raises the client's NoSuchKey when missing)."""
        body = self.client().get_object(Bucket=self.bucket, Key=key)["Body"]
        with body:
            data: bytes = body.read()
        return data

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        """Store an object directly (e.g. to simulate another instance's upload)."""
        self.client().put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)

    def delete_bucket(self) -> None:
        """Delete every object and the bucket itself."""
        client = self.client()
        for key in self.keys():
            client.delete_object(Bucket=self.bucket, Key=key)
        client.delete_bucket(Bucket=self.bucket)


def _fast_stopping(base: type[Any], threaded: bool = True) -> type[Any]:
    """``ThreadedMotoServer`` polling for shutdown every 50 ms instead of 500 ms (faster ``stop()``).

    Falls back to the class itself if moto's internals ever change shape.
    """
    try:
        from moto.server import DomainDispatcherApplication, create_backend_app
        from werkzeug.serving import make_server
    except ImportError:  # pragma: no cover - depends on the moto version
        return base
    if not all(hasattr(base, name) for name in ("_server_entry", "get_host_and_port")):
        return base  # pragma: no cover

    class FastStoppingMotoServer(base):
        def _server_entry(self) -> None:
            app = DomainDispatcherApplication(create_backend_app)
            self._server = make_server(self._ip_address, self._port, app, threaded)
            self._server_ready_event.set()
            self._server.serve_forever(poll_interval=0.05)

    return FastStoppingMotoServer
