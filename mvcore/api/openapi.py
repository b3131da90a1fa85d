"""The OpenAPI document as a contract: security schemes, error answers, media answers.

Litestar derives request and 200 schemas from the handlers (``api/wire.py``); this module adds
what a handler signature cannot say: the ``X-API-Key`` scheme (and the query forms media GETs
accept: ``api_key``, and the signed ``token`` of the URLs we hand out), the one error schema on
every error status, and the binary / partial / redirect answers of the media GETs.  The
schemathesis suite checks every answer against the result.
"""

from __future__ import annotations

from typing import Any

from litestar.handlers import HTTPRouteHandler
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import (
    Components,
    Encoding,
    OpenAPI,
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Parameter,
    Reference,
    RequestBody,
    Schema,
    SecurityScheme,
)

from mvcore import __version__
from mvcore.api.problems import document_responses

HEADER_KEY = "ApiKeyHeader"
QUERY_KEY = "ApiKeyQuery"
MEDIA_TOKEN = "MediaToken"
SCHEMES = {
    HEADER_KEY: SecurityScheme(
        type="apiKey",
        name="X-API-Key",
        security_scheme_in="header",
        description="The API key (API_KEY on the server; no key needed when it is empty)",
    ),
    QUERY_KEY: SecurityScheme(
        type="apiKey",
        name="api_key",
        security_scheme_in="query",
        description="The key as a query parameter: media GETs and the event stream only",
    ),
    MEDIA_TOKEN: SecurityScheme(
        type="apiKey",
        name="token",
        security_scheme_in="query",
        description="The signed short-lived token of a media URL this API returned (that object only)",
    ),
}
# media GET path -> the types its bytes come in
MEDIA_TYPES = {
    "/api/mv/get_video/{video_id}": ("video/mp4",),
    "/api/mv/get_character_reference/{image_id}": ("image/png", "image/jpeg", "image/webp"),
    "/api/audio/get/{audio_id}": ("audio/mpeg",),
    "/api/mv/projects/{project_id}/files/{path}": (
        "video/mp4",
        "audio/mpeg",
        "image/png",
        "image/jpeg",
        "image/webp",
    ),
}
OPEN_PATHS = {"/health"}
QUERY_KEY_PATHS = {*MEDIA_TYPES, "/api/mv/flavors/events"}
ERROR_STATUSES = {
    "400": "A refused value (the field is named in details.field)",
    "401": "Missing or wrong API key (or media token)",
    "404": "Unknown id, flavor or route",
    "422": "A wrong type or shape (details.errors names each field)",
}
BODY_ERROR_STATUSES = {"413": "Body or upload over its limit", "415": "Not JSON (uploads: multipart)"}


def operation_id(handler: HTTPRouteHandler, method: Any, path: list[Any]) -> str:
    """The handler's function name (``create_scenes``, ``get_video``): what generated clients call."""
    return handler.handler_name


def openapi_config() -> OpenAPIConfig:
    return OpenAPIConfig(
        title="mvcore",
        version=__version__,
        path="/schema",
        operation_id_creator=operation_id,
        security=[{HEADER_KEY: []}],
        components=Components(security_schemes=dict(SCHEMES)),
    )


def document_contract(openapi: OpenAPI) -> None:
    """Fill in what handlers cannot declare; called once on the app's generated document."""
    document_responses(openapi)  # Problem and JobQueued schemas, 400 and default
    _file_parts(openapi)
    _upload_encoding(openapi)
    _project_bodies(openapi)
    for path, item in (openapi.paths or {}).items():
        for method in ("get", "put", "post", "delete", "patch", "head"):
            operation = getattr(item, method, None)
            if operation is None:
                continue
            _security(path, operation)
            _errors(method, operation)
            if path in MEDIA_TYPES and method == "get":
                _media(MEDIA_TYPES[path], operation)


def _file_parts(openapi: OpenAPI) -> None:
    """``UploadFile | None`` form fields as plain binary parts: a file part cannot be ``null``.

    Litestar documents the optional upload fields as ``oneOf [binary, null]``, which clients and
    schemathesis read as text fields (sent without a filename); the form takes one file part.
    """
    for schema in ((openapi.components.schemas or {}) if openapi.components else {}).values():
        properties: dict[str, Any] = getattr(schema, "properties", None) or {}
        for name, prop in properties.items():
            options = [o for o in (getattr(prop, "one_of", None) or []) if getattr(o, "type", None) != "null"]
            if len(options) == 1 and getattr(options[0], "format", None) == "binary":
                properties[name] = options[0]


def _upload_encoding(openapi: OpenAPI) -> None:
    """The upload's file parts: audio, with a file name (its extension names the format)."""
    operation = (openapi.paths or {}).get("/api/audio/upload")
    body = getattr(getattr(operation, "post", None), "request_body", None)
    media = (getattr(body, "content", None) or {}).get("multipart/form-data")
    if media is None:
        return
    disposition = 'form-data; name="file"; filename="song.mp3"'
    media.encoding = {
        name: Encoding(
            content_type="audio/mpeg, audio/wav, audio/mp4, audio/ogg, audio/flac, video/mp4",
            headers={
                "Content-Disposition": OpenAPIHeader(
                    schema=Schema(type=OpenAPIType.STRING),
                    example=disposition.replace('"file"', f'"{name}"'),
                    description="The part's file name; its extension names the audio format",
                )
            },
        )
        for name in ("file", "data")
    }


def _text(min_length: int | None = None, max_length: int | None = None, **extra: Any) -> Schema:
    return Schema(type=OpenAPIType.STRING, min_length=min_length, max_length=max_length, **extra)


def _project_bodies(openapi: OpenAPI) -> None:
    """The project routes read their bodies by hand (the original's 400s, in the original's order),
    so their handlers cannot declare them: the creation form (``multipart/form-data``, the original
    frontend's field names) and the PATCH body are declared here."""
    paths = openapi.paths or {}
    binary = Schema(type=OpenAPIType.STRING, format="binary")  # type: ignore[arg-type,unused-ignore]
    uuid_text = _text(format="uuid")
    form = Schema(
        type=OpenAPIType.OBJECT,
        required=["mode", "prompt", "characterDescription"],
        properties={
            "mode": Schema(type=OpenAPIType.STRING, enum=["music-video", "ad-creative"]),
            "prompt": _text(10, 2000, description="The idea"),
            "characterDescription": _text(20, 1000),
            "characterReferenceImageId": uuid_text,
            "productDescription": _text(None, 1000, description="ad-creative"),
            "images": Schema(type=OpenAPIType.ARRAY, items=binary, description="ad-creative: product images"),
            "audio": Schema(type=OpenAPIType.STRING, format="binary", description="music-video: the song"),  # type: ignore[arg-type,unused-ignore]
            "audioId": _text(format="uuid", description="music-video: an uploaded song instead of audio"),
            "configFlavor": _text(None, 100, description="The flavor the whole project uses"),
        },
    )
    create = getattr(paths.get("/api/mv/projects"), "post", None)
    if create is not None:
        create.request_body = RequestBody(
            required=True,
            content={
                "multipart/form-data": OpenAPIMediaType(
                    schema=form,
                    encoding={
                        "audio": Encoding(content_type="audio/mpeg, audio/wav, audio/mp4, audio/ogg"),
                        "images": Encoding(content_type="image/png, image/jpeg, image/webp"),
                    },
                )
            },
        )
    update = getattr(paths.get("/api/mv/projects/{project_id}"), "patch", None)
    if update is not None:
        body = Schema(
            type=OpenAPIType.OBJECT,
            properties={
                "status": Schema(
                    type=OpenAPIType.STRING, enum=["pending", "processing", "completed", "failed"]
                ),
                "finalOutputS3Key": _text(description="An object key (not a URL)"),
            },
        )
        update.request_body = RequestBody(content={"application/json": OpenAPIMediaType(schema=body)})


def _security(path: str, operation: Any) -> None:
    if path in OPEN_PATHS:
        operation.security = [{}]  # open: no key needed
    elif path in MEDIA_TYPES:
        operation.security = [{HEADER_KEY: []}, {QUERY_KEY: []}, {MEDIA_TOKEN: []}]
    elif path in QUERY_KEY_PATHS:
        operation.security = [{HEADER_KEY: []}, {QUERY_KEY: []}]


def _errors(method: str, operation: Any) -> None:
    responses = dict(operation.responses or {})
    problem = OpenAPIMediaType(schema=Reference(ref="#/components/schemas/Problem"))
    statuses = {**ERROR_STATUSES, **(BODY_ERROR_STATUSES if method in ("post", "put", "patch") else {})}
    for status, description in statuses.items():
        responses.setdefault(
            status, OpenAPIResponse(description=description, content={"application/json": problem})
        )
    operation.responses = responses


def _media(types: tuple[str, ...], operation: Any) -> None:
    """The bytes (200, 206 for a range, 416 for a range past the end), or a cloud answer (302/JSON)."""
    binary = Schema(type=OpenAPIType.STRING, format="binary")  # type: ignore[arg-type,unused-ignore]
    content = {t: OpenAPIMediaType(schema=binary) for t in types}
    responses = dict(operation.responses or {})
    ok = responses.get("200")
    json_content = dict(ok.content or {}) if isinstance(ok, OpenAPIResponse) else {}
    responses["200"] = OpenAPIResponse(
        description="The file; in cloud mode with redirect=false, JSON naming its presigned URL",
        content={**content, **json_content},
    )
    responses["206"] = OpenAPIResponse(description="The requested byte range", content=content)
    responses["302"] = OpenAPIResponse(
        description="Cloud mode: redirect to the presigned URL",
        headers={"Location": OpenAPIHeader(schema=Schema(type=OpenAPIType.STRING))},
    )
    responses["416"] = OpenAPIResponse(description="The range is past the end of the file", content=content)
    operation.responses = responses
    parameters = list(operation.parameters or [])
    if not any(getattr(p, "name", None) == "Range" for p in parameters):
        parameters.append(
            Parameter(
                name="Range",
                param_in="header",
                required=False,
                schema=Schema(type=OpenAPIType.STRING, pattern=r"^bytes=\d*-\d*$"),
                description="One byte range (seeking in <video>/<audio>)",
            )
        )
    operation.parameters = parameters
