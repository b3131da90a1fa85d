"""Model-bound request values checked against the model catalogue before any provider call.

A generator knows which of its params are a model's inputs (``duration`` is veo's ``duration``,
``active_speaker_detection`` is lipsync's ``active_speaker``) and where each value came from (the
request field or the flavor key).  :func:`check_params` looks the selected model up in the
catalogue and

* for a provider that really calls the model (``checks_model_inputs = True``, i.e. replicate):
  refuses a value the model would refuse with a 400 that names the field, the model and the
  accepted values -- before anything is uploaded or paid for;
* for any other provider (offline): lets it through and returns the same findings as
  ``metadata.warnings``, so offline development does not hide a failure production will have.

Params the model has no input for are not sent; they are reported as ``parameters_not_sent``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mvcore.errors import BadInput
from mvcore.generators.context import GenContext
from mvcore.generators.plan import ProviderCall

#: provider inputs that are the prompt texts, not parameters (kept out of ``parameters_used``)
TEXT_INPUTS = frozenset({"prompt", "negative_prompt", "system_prompt", "video", "audio", "image"})


@dataclass(frozen=True)
class CheckedParams:
    """The params to hand to the provider, and what the checks found."""

    model: str
    sent: dict[str, Any]
    not_sent: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    def metadata(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.not_sent:
            out["parameters_not_sent"] = dict(self.not_sent)
        if self.warnings:
            out["warnings"] = list(self.warnings)
        return out


def source_fields(sources: Mapping[str, str]) -> dict[str, str]:
    """The field a value came from, as errors name it: ``duration`` (request) or ``image_params.x``."""
    return {key: source.removeprefix("request.") for key, source in sources.items()}


def check_params(
    ctx: GenContext,
    provider: Any,
    *,
    model: str | None,
    params: Mapping[str, Any],
    fields: Mapping[str, str],
    input_names: Mapping[str, str] | None = None,
    selector: str = "model",
) -> CheckedParams:
    """Check ``params`` (provider param -> value) against ``model``; see the module docstring.

    ``fields`` names where each param came from (``duration`` or ``image_params.video_duration``);
    ``input_names`` maps a provider param to the model's input name when they differ.
    """
    names = dict(input_names or {})
    present = {k: v for k, v in params.items() if v is not None}
    model_name = str(model or "")
    entry = ctx.models.get(model_name)
    if entry is None:
        warning = f"{model_name or '(no model)'} is not in the model catalogue; its inputs are not checked"
        return CheckedParams(model_name, present, {}, (warning,))
    strict = bool(getattr(provider, "checks_model_inputs", False))
    sent: dict[str, Any] = {}
    not_sent: dict[str, Any] = {}
    problems: list[dict[str, Any]] = []
    for key, value in present.items():
        input_name = names.get(key, key)
        if not entry.accepts(input_name):
            not_sent[key] = value
            continue
        found = entry.problem(input_name, value)
        if found is not None:
            where = fields.get(key, key)
            problems.append({**found.to_dict(), "field": where, "message": f"{where}: {found.message}"})
        sent[key] = value
    if problems and strict:
        first = problems[0]
        raise BadInput(
            "; ".join(p["message"] for p in problems),
            hint=f"Use a value {entry.name} accepts, or select another model in the flavor ({selector}).",
            details={
                "field": first["field"],
                "model": entry.name,
                "value": first["value"],
                "accepted": first.get("accepted_values", first.get("accepted")),
                "problems": problems,
            },
        )
    warnings = tuple(f"{p['message']}; the real model would refuse this request" for p in problems)
    return CheckedParams(entry.name, sent, not_sent, warnings)


def check_call(
    ctx: GenContext,
    provider: Any,
    call: ProviderCall,
    *,
    selector: str,
    input_names: Mapping[str, str] | None = None,
) -> CheckedParams:
    """:func:`check_params` of a planned provider call (its ``model`` param names the model)."""
    params = dict(call.params)
    return check_params(
        ctx,
        provider,
        model=params.pop("model"),
        params=params,
        fields=source_fields(call.sources),
        input_names=input_names,
        selector=selector,
    )


def parameters_used(result_raw: Mapping[str, Any], checked: CheckedParams, **extra: Any) -> dict[str, Any]:
    """What was really sent: the provider's own record of its input when it keeps one."""
    sent = result_raw.get("input")
    if isinstance(sent, Mapping):
        used = {k: v for k, v in sent.items() if k not in TEXT_INPUTS}
        return {"model": checked.model, **used}
    return {"model": checked.model, **checked.sent, **{k: v for k, v in extra.items() if v is not None}}


def not_sent(result_raw: Mapping[str, Any], checked: CheckedParams) -> dict[str, Any]:
    """Everything given that the model did not get (the generator's and the provider's findings)."""
    out = dict(checked.not_sent)
    extra = result_raw.get("not_sent")
    if isinstance(extra, Mapping):
        out.update({k: v for k, v in extra.items() if k not in TEXT_INPUTS or k == "negative_prompt"})
    return out


def checked_metadata(result_raw: Mapping[str, Any], checked: CheckedParams) -> dict[str, Any]:
    """``parameters_not_sent`` and ``warnings`` for a response's metadata (only when non-empty)."""
    out = checked.metadata()
    missing = not_sent(result_raw, checked)
    if missing:
        out["parameters_not_sent"] = missing
    return out
