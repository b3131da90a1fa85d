"""A real DynamoDB endpoint on 127.0.0.1 for tests: the same moto server mode as :mod:`mvcore.testing.s3`.

moto's server answers every AWS service on one port, so :class:`MotoDynamoServer` is a
:class:`~mvcore.testing.s3.MotoS3Server` without a bucket that hands out a DynamoDB table name
and the Settings that point the project store at it (``DYNAMODB_TABLE_NAME``,
``DYNAMODB_ENDPOINT``).  Subprocesses (workers, ``mvcore serve``) reach it over HTTP like any
endpoint.  Credentials are dummies passed explicitly; ``os.environ`` is never touched.

The server handles one request at a time: moto's ``TransactWriteItems`` checks the conditions and
then writes without a lock, so on a threaded server two transactions racing on one item can both
pass their checks (the projects' concurrency test caught it: 37 "first" completions of 24
scenes).  Real DynamoDB runs transactions serializably; a single-threaded server is the faithful
model of that, while clients still interleave freely between requests.
"""

from __future__ import annotations

import uuid
from typing import Any

from mvcore.testing.s3 import MotoS3Server

__all__ = ["MotoDynamoServer"]


class MotoDynamoServer(MotoS3Server):
    def __init__(self, table: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("create_bucket", False)
        super().__init__(**kwargs)
        self.table = table or f"mvcore-projects-{uuid.uuid4().hex[:10]}"
        self.threaded = False

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def dynamodb_client(self) -> Any:
        import boto3

        session = boto3.session.Session(
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            region_name=self.region,
        )
        return session.client("dynamodb", endpoint_url=self.endpoint_url)

    def settings_overrides(self) -> dict[str, Any]:
        """Settings keywords for a DynamoDB project store on this server."""
        return {
            "project_store": "dynamodb",
            "dynamodb_table_name": self.table,
            "dynamodb_endpoint": self.endpoint_url,
            "aws_access_key_id": self.access_key_id,
            "aws_secret_access_key": self.secret_access_key,
            "aws_region": self.region,
        }

    def env(self) -> dict[str, str]:
        """The same, as environment variables for a subprocess."""
        return {
            "MVCORE_PROJECT_STORE": "dynamodb",
            "DYNAMODB_TABLE_NAME": self.table,
            "DYNAMODB_ENDPOINT": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_REGION": self.region,
        }
