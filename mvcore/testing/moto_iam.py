"""A moto server that really checks credentials and IAM policies, for "the store refuses" tests.

moto's default server accepts any signature (even a zeroed one) and any credentials, so a test
against it can never see AccessDenied or SignatureDoesNotMatch.  With
``INITIAL_NO_AUTH_ACTION_COUNT=N`` moto lets the first N requests through and then enforces IAM.
That setting is read once when moto is imported, so this server runs in its own process (moto's
own ``python -m moto.server``) on 127.0.0.1; the N setup requests create one bucket and one IAM
user whose inline policy is the one the test wants.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from types import TracebackType
from typing import Any

import httpx

#: create_bucket, create_user, create_access_key, put_user_policy
_SETUP_REQUESTS = 4
_ROOT = "mvcore-iam-root"


class MotoIamServer:
    """``with MotoIamServer(allow=["s3:PutObject"]) as moto: moto.storage()`` refuses everything else."""

    def __init__(self, allow: list[str], *, region: str = "us-east-1", start_timeout: float = 30.0) -> None:
        self.allow = allow
        self.region = region
        self.bucket = f"mvcore-iam-{uuid.uuid4().hex[:12]}"
        self.start_timeout = start_timeout
        self.access_key_id = ""
        self.secret_access_key = ""
        self._proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> MotoIamServer:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": str(_SETUP_REQUESTS)}
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            self._wait_ready()
            self._set_up()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(10)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise RuntimeError(f"moto.server exited with {self._proc.returncode}")
            try:
                httpx.get(f"{self.endpoint_url}/moto-api/", timeout=1.0)  # not counted as an action
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise TimeoutError(f"moto.server did not answer within {self.start_timeout:g} s")

    def _client(self, service: str, key_id: str = _ROOT, secret: str = _ROOT) -> Any:
        import boto3

        return boto3.session.Session().client(
            service,
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=key_id,
            aws_secret_access_key=secret,
        )

    def _set_up(self) -> None:
        self._client("s3").create_bucket(Bucket=self.bucket)
        iam = self._client("iam")
        iam.create_user(UserName="mvcore")
        key = iam.create_access_key(UserName="mvcore")["AccessKey"]
        self.access_key_id, self.secret_access_key = key["AccessKeyId"], key["SecretAccessKey"]
        statement = {"Effect": "Allow", "Action": self.allow, "Resource": f"arn:aws:s3:::{self.bucket}/*"}
        policy = {"Version": "2012-10-17", "Statement": [statement]}
        iam.put_user_policy(UserName="mvcore", PolicyName="mvcore", PolicyDocument=json.dumps(policy))

    def storage(self, **overrides: Any) -> Any:
        """An S3Storage on the bucket as the policy's user (override the keys to be someone else)."""
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
        return S3Storage(self.bucket, **options)
