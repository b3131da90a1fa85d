"""The DynamoDB project store: the original system's single-table design, with real atomicity.

Items: ``PK=PROJECT#{id}`` and ``SK=METADATA`` (the project; ``GSI1PK`` = status and ``GSI1SK`` =
createdAt as the original kept them) or ``SK=SCENE#{seq:03d}`` (a scene).  Unlike the original,
counters are never recomputed and saved back: ``ADD completedScenes :one`` runs in the same
``TransactWriteItems`` as the scene's conditional status change, so two workers finishing two
scenes at once both count, and one scene finishing twice counts once.

The table is created (on-demand billing) when it does not exist, so a fresh DynamoDB Local or
moto endpoint works without a setup script; the flavor bundle is stored as a JSON string
(``config``) because DynamoDB has no floats.
"""

from __future__ import annotations

import contextlib
import json
import time
from decimal import Decimal
from typing import Any

from mvcore.errors import StorageError
from mvcore.projects.records import UNFINISHED_STATUSES, Project, Scene, now_iso
from mvcore.projects.store import ProjectStore
from mvcore.settings import Settings

__all__ = ["DynamoProjectStore"]

_COUNTER = {"completed": "completedScenes", "failed": "failedScenes"}


def _pk(project_id: str) -> str:
    return f"PROJECT#{project_id}"


def _sk(sequence: int) -> str:
    return f"SCENE#{sequence:03d}"


class DynamoProjectStore(ProjectStore):
    backend = "dynamodb"

    def __init__(self, table: str, client: Any, *, create_table: bool = True) -> None:
        from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

        self.table = table
        self.client = client
        self._ser = TypeSerializer()
        self._de = TypeDeserializer()
        if create_table:
            self._ensure_table()

    def __repr__(self) -> str:
        return f"DynamoProjectStore(table={self.table!r})"

    @classmethod
    def from_settings(cls, settings: Settings) -> DynamoProjectStore:
        import boto3
        from botocore.config import Config

        key_id, secret = (
            v.get_secret_value() if v is not None else None
            for v in (settings.aws_access_key_id, settings.aws_secret_access_key)
        )
        client = boto3.session.Session().client(
            "dynamodb",
            region_name=settings.dynamodb_region or settings.aws_region,
            endpoint_url=settings.dynamodb_endpoint,
            aws_access_key_id=key_id,
            aws_secret_access_key=secret,
            config=Config(
                connect_timeout=5, read_timeout=30, retries={"mode": "standard", "max_attempts": 4}
            ),
        )
        assert settings.dynamodb_table_name is not None
        return cls(settings.dynamodb_table_name, client)

    # --- plumbing -------------------------------------------------------------
    def _ensure_table(self) -> None:
        errors = self.client.exceptions
        try:
            self.client.describe_table(TableName=self.table)
            return
        except errors.ResourceNotFoundException:
            pass
        with contextlib.suppress(errors.ResourceInUseException):  # another process created it first
            self.client.create_table(
                TableName=self.table,
                KeySchema=[
                    {"AttributeName": "PK", "KeyType": "HASH"},
                    {"AttributeName": "SK", "KeyType": "RANGE"},
                ],
                AttributeDefinitions=[
                    {"AttributeName": "PK", "AttributeType": "S"},
                    {"AttributeName": "SK", "AttributeType": "S"},
                ],
                BillingMode="PAY_PER_REQUEST",
            )
        self.client.get_waiter("table_exists").wait(
            TableName=self.table, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
        )

    def _item(self, attrs: dict[str, Any]) -> dict[str, Any]:
        return {k: self._ser.serialize(_to_dynamo(v)) for k, v in attrs.items() if v is not None}

    def _plain(self, item: dict[str, Any]) -> dict[str, Any]:
        return {k: _from_dynamo(self._de.deserialize(v)) for k, v in item.items()}

    def _values(self, values: dict[str, Any]) -> dict[str, Any]:
        return {k: self._ser.serialize(_to_dynamo(v)) for k, v in values.items()}

    def _update_parts(self, fields: dict[str, Any]) -> tuple[str, dict[str, str], dict[str, Any]]:
        """``SET #a = :a, ... REMOVE #b`` for ``fields`` (None removes), plus updatedAt."""
        fields = {**fields, "updatedAt": now_iso()}
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        sets, removes = [], []
        for index, (name, value) in enumerate(fields.items()):
            names[f"#f{index}"] = name
            if value is None:
                removes.append(f"#f{index}")
            else:
                values[f":f{index}"] = value
                sets.append(f"#f{index} = :f{index}")
        expression = ("SET " + ", ".join(sets)) if sets else ""
        if removes:
            expression += " REMOVE " + ", ".join(removes)
        return expression.strip(), names, values

    def _query_all(self, project_id: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "PK = :pk",
            "ExpressionAttributeValues": {":pk": {"S": _pk(project_id)}},
            "ConsistentRead": True,
        }
        while True:
            page = self.client.query(**kwargs)
            items.extend(self._plain(i) for i in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _scan_projects(self, filter_status: tuple[str, ...] | None) -> list[dict[str, Any]]:
        values: dict[str, Any] = {":meta": "METADATA"}
        expression = "SK = :meta"
        names: dict[str, str] = {}
        if filter_status:
            names["#st"] = "status"
            marks = []
            for index, status in enumerate(filter_status):
                values[f":s{index}"] = status
                marks.append(f":s{index}")
            expression += f" AND #st IN ({', '.join(marks)})"
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "FilterExpression": expression,
            "ExpressionAttributeValues": self._values(values),
            "ConsistentRead": True,
        }
        if names:
            kwargs["ExpressionAttributeNames"] = names
        out: list[dict[str, Any]] = []
        while True:
            page = self.client.scan(**kwargs)
            out.extend(self._plain(i) for i in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return out
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _conditional_update(self, key: dict[str, Any], fields: dict[str, Any], condition: str) -> bool:
        expression, names, values = self._update_parts(fields)
        try:
            self.client.update_item(**self._update_args(key, expression, names, values, condition))
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def _update_args(
        self,
        key: dict[str, Any],
        expression: str,
        names: dict[str, str],
        values: dict[str, Any],
        condition: str,
    ) -> dict[str, Any]:
        args: dict[str, Any] = {
            "TableName": self.table,
            "Key": self._item(key),
            "UpdateExpression": expression,
            "ConditionExpression": condition,
            "ExpressionAttributeNames": names,
        }
        if values:
            args["ExpressionAttributeValues"] = self._values(values)
        return args

    def _transact(self, items: list[dict[str, Any]]) -> bool:
        """TransactWriteItems; False when a condition failed (the whole transaction did nothing)."""
        try:
            self.client.transact_write_items(TransactItems=items)
        except self.client.exceptions.TransactionCanceledException as exc:
            reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
            if "ConditionalCheckFailed" in reasons:
                return False
            raise StorageError(
                "A project update was cancelled by DynamoDB", details={"reasons": reasons}
            ) from exc
        return True

    # --- reads ------------------------------------------------------------------
    def get_sync(self, project_id: str) -> Project | None:
        items = self._query_all(project_id)
        meta = next((i for i in items if i.get("SK") == "METADATA"), None)
        if meta is None:
            return None
        scenes = [Scene.from_attrs(i) for i in items if str(i.get("SK", "")).startswith("SCENE#")]
        return Project.from_attrs(_decode_project(meta), scenes)

    def list_sync(self, limit: int) -> list[Project]:
        rows = sorted(self._scan_projects(None), key=lambda i: str(i.get("createdAt")), reverse=True)
        return [Project.from_attrs(_decode_project(i)) for i in rows[:limit]]

    def unfinished_sync(self) -> list[str]:
        rows = sorted(self._scan_projects(UNFINISHED_STATUSES), key=lambda i: str(i.get("createdAt")))
        return [str(i["projectId"]) for i in rows]

    # --- writes ------------------------------------------------------------------
    def create_sync(self, project: Project) -> None:
        attrs = project.to_attrs()
        attrs["config"] = json.dumps(attrs.get("config") or {})
        item = {
            "PK": _pk(project.projectId),
            "SK": "METADATA",
            "entityType": "project",
            "GSI1PK": project.status,
            "GSI1SK": project.createdAt,
            **attrs,
        }
        self.client.put_item(
            TableName=self.table, Item=self._item(item), ConditionExpression="attribute_not_exists(PK)"
        )

    def delete_sync(self, project_id: str) -> bool:
        items = self._query_all(project_id)
        keys = [{"PK": {"S": i["PK"]}, "SK": {"S": i["SK"]}} for i in items]
        for start in range(0, len(keys), 25):
            requests = [{"DeleteRequest": {"Key": k}} for k in keys[start : start + 25]]
            pending: dict[str, Any] = {self.table: requests}
            for _ in range(10):
                unprocessed = self.client.batch_write_item(RequestItems=pending).get("UnprocessedItems", {})
                if not unprocessed:
                    break
                pending = unprocessed
                time.sleep(0.1)
        return any(i.get("SK") == "METADATA" for i in items)

    def set_project_sync(self, project_id: str, fields: dict[str, Any]) -> bool:
        fields = dict(fields)
        if "config" in fields:
            fields["config"] = json.dumps(fields["config"] or {})
        if fields.get("status"):
            fields["GSI1PK"] = fields["status"]
        key = {"PK": _pk(project_id), "SK": "METADATA"}
        return self._conditional_update(key, fields, "attribute_exists(PK)")

    def add_scenes_sync(self, project_id: str, scenes: list[Scene]) -> bool:
        expression, names, values = self._update_parts(
            {"sceneCount": len(scenes), "status": "processing", "GSI1PK": "processing"}
        )
        names["#sc"] = "sceneCount"
        values[":zero"] = 0
        meta = self._update_args(
            {"PK": _pk(project_id), "SK": "METADATA"},
            expression,
            names,
            values,
            "attribute_exists(PK) AND (attribute_not_exists(#sc) OR #sc = :zero)",
        )
        items: list[dict[str, Any]] = [{"Update": meta}]
        for scene in scenes:
            item = {
                "PK": _pk(project_id),
                "SK": _sk(scene.sequence),
                "entityType": "scene",
                **scene.to_attrs(),
            }
            items.append(
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": self._item(item),
                        "ConditionExpression": "attribute_not_exists(PK)",
                    }
                }
            )
        return self._transact(items)

    def set_scene_sync(self, project_id: str, sequence: int, fields: dict[str, Any]) -> bool:
        key = {"PK": _pk(project_id), "SK": _sk(sequence)}
        return self._conditional_update(key, fields, "attribute_exists(PK)")

    def bump_retry_sync(self, project_id: str, sequence: int) -> int:
        answer = self.client.update_item(
            TableName=self.table,
            Key=self._item({"PK": _pk(project_id), "SK": _sk(sequence)}),
            UpdateExpression="ADD retryCount :one SET updatedAt = :now",
            ConditionExpression="attribute_exists(PK)",
            ExpressionAttributeValues=self._values({":one": 1, ":now": now_iso()}),
            ReturnValues="UPDATED_NEW",
        )
        return int(self._plain(answer["Attributes"])["retryCount"])

    def _counter_update(self, project_id: str, counter: str, delta: int) -> dict[str, Any]:
        return {
            "Update": {
                "TableName": self.table,
                "Key": self._item({"PK": _pk(project_id), "SK": "METADATA"}),
                "UpdateExpression": "ADD #c :d SET updatedAt = :now",
                "ConditionExpression": "attribute_exists(PK)",
                "ExpressionAttributeNames": {"#c": counter},
                "ExpressionAttributeValues": self._values({":d": delta, ":now": now_iso()}),
            }
        }

    def _scene_transition(
        self, project_id: str, sequence: int, fields: dict[str, Any], condition: str, allowed: dict[str, str]
    ) -> dict[str, Any]:
        expression, names, values = self._update_parts(fields)
        names["#st"] = "status"
        values.update(allowed)
        key = {"PK": _pk(project_id), "SK": _sk(sequence)}
        return {"Update": self._update_args(key, expression, names, values, condition)}

    def finish_scene_sync(self, project_id: str, sequence: int, status: str, fields: dict[str, Any]) -> bool:
        scene = self._scene_transition(
            project_id,
            sequence,
            {**fields, "status": status},
            "attribute_exists(PK) AND #st IN (:a0, :a1)",
            {":a0": "pending", ":a1": "processing"},
        )
        return self._transact([scene, self._counter_update(project_id, _COUNTER[status], 1)])

    def reopen_scene_sync(self, project_id: str, sequence: int, fields: dict[str, Any]) -> bool:
        for was, counter in _COUNTER.items():
            scene = self._scene_transition(
                project_id,
                sequence,
                {**fields, "status": "processing"},
                "attribute_exists(PK) AND #st = :a0",
                {":a0": was},
            )
            if self._transact([scene, self._counter_update(project_id, counter, -1)]):
                return True
        self.set_scene_sync(project_id, sequence, {**fields, "status": "processing"})
        return False

    def claim_sync(self, project_id: str, owner: str, ttl: float) -> bool:
        now = time.time()
        key = {"PK": _pk(project_id), "SK": "METADATA"}
        expression, names, values = self._update_parts({"leaseOwner": owner, "leaseUntil": now + ttl})
        names.update({"#lo": "leaseOwner", "#lu": "leaseUntil"})
        values.update({":me": owner, ":now": now})
        condition = (
            "attribute_exists(PK) AND (attribute_not_exists(#lo) OR #lo = :me "
            "OR attribute_not_exists(#lu) OR #lu < :now)"
        )
        try:
            self.client.update_item(**self._update_args(key, expression, names, values, condition))
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def release_sync(self, project_id: str, owner: str) -> None:
        key = {"PK": _pk(project_id), "SK": "METADATA"}
        names = {"#lo": "leaseOwner", "#lu": "leaseUntil"}
        args = self._update_args(key, "REMOVE #lo, #lu", names, {":me": owner}, "#lo = :me")
        with contextlib.suppress(self.client.exceptions.ConditionalCheckFailedException):  # not ours any more
            self.client.update_item(**args)


def _to_dynamo(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, list):
        return [_to_dynamo(v) for v in value]
    if isinstance(value, dict):
        return {k: _to_dynamo(v) for k, v in value.items()}
    return value


def _from_dynamo(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, list):
        return [_from_dynamo(v) for v in value]
    if isinstance(value, dict):
        return {k: _from_dynamo(v) for k, v in value.items()}
    if isinstance(value, set):
        return sorted(_from_dynamo(v) for v in value)
    return value


def _decode_project(item: dict[str, Any]) -> dict[str, Any]:
    attrs = dict(item)
    raw = attrs.get("config")
    if isinstance(raw, str):
        try:
            attrs["config"] = json.loads(raw)
        except json.JSONDecodeError:
            attrs["config"] = {}
    return attrs
