"""One error shape for every failure: ``{"detail": {"error", "message", "details"}}``.

User mistakes map to 4xx with a hint on how to fix them; anything unexpected
is logged with its traceback server-side and answered with a generic 500
that carries no path, no trace and no secret.
"""

from __future__ import annotations

import errno
import logging
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from mvcore import logs
from mvcore.errors import MvcoreError

_STATUS_CODES = {
    400: "INVALID_INPUT",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "VALIDATION_ERROR",
    429: "RATE_LIMIT_EXCEEDED",
}


def problem(
    status: int,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[dict[str, Any]]:
    details = logs.scrub_value(details or {})
    body = {"detail": {"error": code, "message": logs.scrub(message), "details": details}}
    return Response(body, status_code=status, headers=headers)


def handle_mvcore_error(request: Request[Any, Any, Any], exc: MvcoreError) -> Response[dict[str, Any]]:
    if exc.status_code >= 500:
        logs.event(
            "request_failed", logging.ERROR, path=request.url.path, error=exc.code, message=exc.message
        )
    detail = exc.to_detail()
    headers = {"WWW-Authenticate": 'ApiKey header="X-API-Key"'} if exc.status_code == 401 else None
    headers = getattr(exc, "headers", None) or headers  # e.g. Retry-After of a full job queue (429)
    return problem(exc.status_code, detail["error"], detail["message"], detail["details"], headers)


def handle_validation(request: Request[Any, Any, Any], exc: ValidationException) -> Response[dict[str, Any]]:
    extra = exc.extra if isinstance(exc.extra, list) else []
    errors = []
    for item in extra:
        if isinstance(item, dict):
            errors.append(
                {"field": item.get("key"), "message": item.get("message"), "source": item.get("source")}
            )
    if not errors:
        # Not a schema violation but an unreadable body (bad JSON, wrong content type).
        return problem(
            400,
            "INVALID_INPUT",
            _clean(exc.detail) or "The request body could not be read",
            {"hint": "Send a JSON object with Content-Type: application/json."},
        )
    fields = ", ".join(str(e["field"]) for e in errors if e["field"]) or "body"
    return problem(
        422,
        "VALIDATION_ERROR",
        f"Invalid request: check {fields}",
        {"errors": errors, "hint": "Fix the listed fields; see /schema/openapi.json for the request shape."},
    )


def handle_http(request: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    status = exc.status_code
    if status >= 500:
        return handle_unexpected(request, exc)
    code = _STATUS_CODES.get(status, "BAD_REQUEST")
    message = _clean(exc.detail) or code.replace("_", " ").lower()
    details: dict[str, Any] = {}
    if status == 404:
        message = f"No route for {request.method} {request.url.path[:200]}"
        details["hint"] = "See /schema/openapi.json for the available endpoints."
    elif status == 405:
        details["hint"] = "Check the HTTP method of this endpoint in /schema/openapi.json."
    elif status == 413:
        details["hint"] = "Send a smaller body (limits: MVCORE_MAX_JSON_BYTES, MVCORE_MAX_UPLOAD_BYTES)."
    return problem(status, code, message, details, exc.headers)


def handle_os_error(request: Request[Any, Any, Any], exc: OSError) -> Response[dict[str, Any]]:
    """A full disk is the server's condition, not a bug: 507 ``DISK_FULL`` wherever it happens
    (an upload spooled to scratch, a file written outside a generator); anything else is a 500."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        logs.event("disk_full", logging.ERROR, path=request.url.path)
        return problem(
            507,
            "DISK_FULL",
            "disk full while handling this request",
            {"hint": "Free space in MVCORE_DATA_DIR (or point it at a bigger disk) and retry."},
        )
    return handle_unexpected(request, exc)


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    logging.getLogger("mvcore.api").error(
        "unhandled error on %s %s", request.method, request.url.path, exc_info=exc
    )
    return problem(
        HTTP_500_INTERNAL_SERVER_ERROR,
        "INTERNAL_ERROR",
        "The server failed to handle this request",
        {"hint": "This is a bug in mvcore, not in your request; the server log has the details."},
    )


def handle_undecodable(request: Request[Any, Any, Any], exc: UnicodeDecodeError) -> Response[dict[str, Any]]:
    """A form part without a filename is text to Litestar; bytes that are not UTF-8 were a 500."""
    return problem(
        400,
        "INVALID_INPUT",
        "A part of the request is not UTF-8 text",
        {"hint": "Send files as multipart file parts with a filename (curl -F file=@song.mp3)."},
    )


def _clean(text: Any) -> str:
    message = str(text or "")
    return message.split("\n", 1)[0][:300]


EXCEPTION_HANDLERS: dict[Any, Any] = {
    MvcoreError: handle_mvcore_error,
    ValidationException: handle_validation,
    UnicodeDecodeError: handle_undecodable,
    HTTPException: handle_http,
    OSError: handle_os_error,
    Exception: handle_unexpected,
}


def document_responses(openapi: Any) -> None:
    """Make the generated OpenAPI document describe the answers the handlers really give.

    Litestar documents a 400 in its own ``{status_code, detail, extra}`` shape, which no
    handler answers (every error goes through the handlers above), and nothing else: the
    real error body is documented as ``Problem`` for 400 and as the ``default`` response
    (any other status), and the ``?async=true`` 202 of the generator endpoints as ``JobQueued``.
    """
    from litestar.openapi.spec import (
        Components,
        OpenAPIMediaType,
        OpenAPIResponse,
        OpenAPIType,
        Reference,
        Schema,
    )

    text = Schema(type=OpenAPIType.STRING)
    components = openapi.components or Components()
    schemas = dict(components.schemas or {})
    schemas["Problem"] = Schema(
        type=OpenAPIType.OBJECT,
        required=["detail"],
        properties={
            "detail": Schema(
                type=OpenAPIType.OBJECT,
                required=["error", "message", "details"],
                properties={"error": text, "message": text, "details": Schema(type=OpenAPIType.OBJECT)},
            )
        },
        description="Every error: a stable code, a human message, and details (hint, valid values...)",
    )
    schemas["JobQueued"] = Schema(
        type=OpenAPIType.OBJECT,
        required=["job_id", "status", "status_url"],
        properties={"job_id": text, "status": text, "status_url": text},
    )
    components.schemas = schemas
    openapi.components = components

    def answer(description: str, name: str) -> OpenAPIResponse:
        media = OpenAPIMediaType(schema=Reference(ref=f"#/components/schemas/{name}"))
        return OpenAPIResponse(description=description, content={"application/json": media})

    error = answer("An error (see Problem)", "Problem")
    for item in (openapi.paths or {}).values():
        for method in ("get", "put", "post", "delete", "patch", "head"):
            operation = getattr(item, method, None)
            if operation is None:
                continue
            responses = dict(operation.responses or {})
            responses["400"] = error
            responses["default"] = error
            if any(getattr(param, "name", None) == "async" for param in operation.parameters or ()):
                responses["202"] = answer("Queued (?async=true): poll status_url", "JobQueued")
            operation.responses = responses
