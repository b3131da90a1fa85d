"""Wire shapes of the flavor-authoring endpoints (render preview and the in-browser editor).

Typed like every other answer (``api/wire.py``) so the OpenAPI document is a contract the
schemathesis suite can check, and a generated client knows each field.
"""

from typing import Any, NotRequired, TypedDict

from mvcore.api.wire import ConfigMeta, FlavorRow, Issue


class EditorStatus(TypedDict):
    enabled: bool
    history: int
    auth_enabled: bool


class DraftCheck(TypedDict):
    """How the flavor would load with the draft files: exactly as a reload would judge them."""

    flavor: str
    ok: bool
    status: str
    errors: list[Issue]
    warnings: list[Issue]


class SavedFile(DraftCheck):
    saved: bool
    generation: int


class RestoredFile(DraftCheck):
    restored: str
    generation: int


class FlavorFiles(TypedDict):
    flavor: str
    #: file name -> its text, or null when the flavor has no such file
    files: dict[str, str | None]


class HistoryEntry(TypedDict):
    id: str
    saved_at: float
    bytes: int


class FileHistory(TypedDict):
    flavor: str
    file: str
    entries: list[HistoryEntry]


class HistoryContent(TypedDict):
    flavor: str
    file: str
    id: str
    content: str


class GeneratorPreview(TypedDict):
    """One generator's call: the filled prompt, its parameters, where each came from, the model input."""

    prompt: str | None
    template: str | None
    template_inputs: dict[str, Any]
    parameters: dict[str, Any]
    provenance: dict[str, Any]
    replicate: dict[str, Any]
    defaults_applied: NotRequired[list[str]]


class RenderPreview(ConfigMeta):
    generators: dict[str, GeneratorPreview]
    draft: NotRequired[DraftCheck]
    status: FlavorRow | None
