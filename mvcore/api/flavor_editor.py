"""Flavor authoring endpoints: prompt preview, and the in-browser editor (off by default).

* ``POST /api/mv/flavors/{name}/render`` -- the exact prompts, parameters and Replicate inputs
  each generator would send for a flavor, with provenance; no provider is called.  With
  ``files`` in the body the preview uses those drafts instead of the files on disk.
* Editor (only with ``MVCORE_FLAVOR_EDITING=true``; with auth on, every ``/api`` path needs the
  API key anyway): ``GET .../files`` (contents), ``POST .../validate`` (file:line errors, writes
  nothing), ``PUT .../files/{filename}`` (atomic save, refused when invalid), ``GET
  .../files/{filename}/history`` and ``POST .../history/{id}/restore``.
"""

from __future__ import annotations

from typing import cast

from litestar import Controller, get, post, put
from litestar.params import FromPath, JSONBody
from pydantic import BaseModel, Field

from mvcore.api import editor_wire as ew
from mvcore.api.deps import ServicesDep
from mvcore.api.services import Services
from mvcore.config.editing import FlavorEditor
from mvcore.config.overrides import apply_overrides, check_overrides
from mvcore.errors import MvcoreError
from mvcore.generators.preview import RenderRequest, render_preview


class DraftFiles(BaseModel):
    """Draft contents by file name (``parameters.yaml`` ...), as the editor holds them."""

    files: dict[str, str] = Field(..., examples=[{"parameters.yaml": "camera_angle: wide\n"}])


class PreviewRequest(RenderRequest):
    files: dict[str, str] | None = Field(None, description="Draft file contents to preview instead of disk")


class SaveRequest(BaseModel):
    content: str = Field(..., max_length=1024 * 1024)


class EditingDisabled(MvcoreError):
    status_code = 403
    code = "FLAVOR_EDITING_DISABLED"


def _editor(services: Services, name: str) -> FlavorEditor:
    """The process's editor (created on first use) for flavor ``name``.

    The name is checked first (400 for a bad name, 404 for a flavor that is not an editable
    directory), then the switch (403): hostile or unknown names answer the same whether or not
    editing is on.
    """
    editor = services.flavor_editor
    editor.flavor_dir(name)
    if not services.settings.flavor_editing:
        raise EditingDisabled(
            "Editing flavors over the API is switched off on this server",
            hint="Start the server with MVCORE_FLAVOR_EDITING=true (and an API_KEY when it is reachable).",
        )
    return editor


class FlavorEditorController(Controller):
    path = "/api/mv/flavors"
    tags = ["flavor authoring"]

    @get("/editor", summary="Whether the in-browser editor is switched on")
    async def editor_status(self, services: ServicesDep) -> ew.EditorStatus:
        return {
            "enabled": services.settings.flavor_editing,
            "history": services.settings.flavor_history,
            "auth_enabled": services.settings.auth_enabled,
        }

    @post("/{name:str}/render", status_code=200, summary="Prompts and parameters each generator would send")
    async def render(
        self, services: ServicesDep, name: FromPath[str], data: JSONBody[PreviewRequest]
    ) -> ew.RenderPreview:
        if data.files:
            check = _editor(services, name).check_draft(name, dict(data.files))
            snapshot = check.snapshot
            draft = check.to_wire()
        else:
            snapshot, draft = services.store.current, None
        resolution = snapshot.resolve(name, strict=True)
        if data.config_overrides:
            check_overrides(data.config_overrides, snapshot.registry, services.settings.overridable_keys)
            resolution = apply_overrides(resolution, data.config_overrides)
        body = render_preview(
            resolution, data, max_chars=services.settings.max_prompt_chars, models=services.ctx.models
        )
        if draft is not None:
            body["draft"] = draft
        status = snapshot.statuses.get(name)
        body["status"] = status.to_dict() if status is not None else None
        return cast(ew.RenderPreview, body)

    @get("/{name:str}/files", summary="The flavor's editable files and their contents")
    async def flavor_files(self, services: ServicesDep, name: FromPath[str]) -> ew.FlavorFiles:
        editor = _editor(services, name)
        return {"flavor": name, "files": editor.read_files(name)}

    @post("/{name:str}/validate", status_code=200, summary="Check draft files; writes nothing")
    async def validate(
        self, services: ServicesDep, name: FromPath[str], data: JSONBody[DraftFiles]
    ) -> ew.DraftCheck:
        return cast(ew.DraftCheck, _editor(services, name).check_draft(name, dict(data.files)).to_wire())

    @put("/{name:str}/files/{filename:str}", summary="Save one file (refused, unchanged, when invalid)")
    async def save(
        self,
        services: ServicesDep,
        name: FromPath[str],
        filename: FromPath[str],
        data: JSONBody[SaveRequest],
    ) -> ew.SavedFile:
        check = _editor(services, name).save(name, filename, data.content)
        body = {**check.to_wire(), "saved": True, "generation": services.store.current.generation}
        return cast(ew.SavedFile, body)

    @get("/{name:str}/files/{filename:str}/history", summary="The last saves of one file")
    async def history(
        self, services: ServicesDep, name: FromPath[str], filename: FromPath[str]
    ) -> ew.FileHistory:
        entries = cast(list[ew.HistoryEntry], _editor(services, name).history(name, filename))
        return {"flavor": name, "file": filename, "entries": entries}

    @get("/{name:str}/files/{filename:str}/history/{entry:str}", summary="One saved version")
    async def history_entry(
        self,
        services: ServicesDep,
        name: FromPath[str],
        filename: FromPath[str],
        entry: FromPath[str],
    ) -> ew.HistoryContent:
        content = _editor(services, name).history_content(name, filename, entry)
        return {"flavor": name, "file": filename, "id": entry, "content": content}

    @post("/{name:str}/files/{filename:str}/history/{entry:str}/restore", status_code=200, summary="Restore")
    async def restore(
        self,
        services: ServicesDep,
        name: FromPath[str],
        filename: FromPath[str],
        entry: FromPath[str],
    ) -> ew.RestoredFile:
        check = _editor(services, name).restore(name, filename, entry)
        body = {**check.to_wire(), "restored": entry, "generation": services.store.current.generation}
        return cast(ew.RestoredFile, body)
