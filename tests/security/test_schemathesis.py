"""Schemathesis against ``/schema/openapi.json``: every operation, valid and invalid inputs.

Checks on every response: no 5xx (``not_a_server_error``), the body matches the schema declared for
its status (``response_schema_conformance``), the status and content type are declared.  First a
known-good pass (``contract.KnownGood``): real objects are made through the API and every
operation answers one must-succeed request, so each operation's 200 body is checked against its
schema (fuzzed ids almost never exist).  A second test serves one deliberately wrong body and
sees the same checks fail: the contract test can fail.  Bounded:
a few examples per operation and mode (``derandomize``: the same inputs on every run, so CI is
stable; set ``MVCORE_FUZZ_EXAMPLES`` higher for a deeper local run), offline provider with tiny
media, and a total time cap.  The server-sent event stream never ends: it is called with a short
timeout, which schemathesis' ASGI transport turns into "the events sent so far".
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from reliability import make_settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from mvcore.api.app import create_app
from mvcore.config.plugins import PluginHost
from mvcore.config.store import FlavorStore
from security.contract import KnownGood, serving

EXAMPLES = int(os.environ.get("MVCORE_FUZZ_EXAMPLES", "12"))
TIME_CAP_S = 150.0  # for the 21 operations this cap was set for; it grows with each new operation
CAP_PER_OPERATION_S = TIME_CAP_S / 21
CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance, content_type_conformance]


@pytest.mark.slow
def test_the_api_survives_schemathesis(tmp_path: Path) -> None:
    app_settings = make_settings(
        tmp_path,
        max_upload_bytes=256 * 1024,
        max_json_bytes=64 * 1024,
        media_timeout_s=30,
        # the known-good download comes from the test's own file server on 127.0.0.1 (opt-in only)
        fetch_allow_hosts=["127.0.0.1"],
        fetch_dangerously_allow_private=["127.0.0.1"],
        flavor_editing=True,  # the editor's operations are part of the contract too
    )
    tiny = app_settings.flavors_dirs[0] / "tiny"  # the known-good project: one scene of 1 s
    tiny.mkdir()
    (tiny / "parameters.yaml").write_text("number_of_scenes: 1\n")
    (tiny / "image_params.yaml").write_text("video_duration: 1\n")
    store = FlavorStore(list(app_settings.flavors_dirs), PluginHost(entry_points=False))
    app = create_app(app_settings, store=store)
    schema = schemathesis.openapi.from_asgi("/schema/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    (tmp_path / "files").mkdir()
    assert len(operations) >= 20, [f"{o.method} {o.path}" for o in operations]

    failures: list[str] = []
    calls: dict[str, dict[int, int]] = {}
    started = time.monotonic()
    cap = max(TIME_CAP_S, CAP_PER_OPERATION_S * len(operations))
    try:
        with serving(tmp_path / "files") as base_url:
            known = KnownGood(operations, validate, tmp_path / "files", base_url).run()
        for operation in operations:
            label = f"{operation.method.upper()} {operation.path}"
            stream = operation.path.endswith("/events")
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                assert time.monotonic() - started < cap, f"over {cap:g} s at {label}"
                seen = calls.setdefault(f"{label} {mode.value}", {})
                examples, timeout = (1, 3.0) if stream else (EXAMPLES, 60.0)
                run_operation(operation, mode, examples, timeout, seen, failures)
    finally:
        shutdown_lifespans()
    elapsed = time.monotonic() - started

    answered_ok = {label for label, status in known.items() if 200 <= status < 300}
    for label, codes in calls.items():
        if any(200 <= code < 300 for code in codes):
            answered_ok.add(label.rsplit(" ", 1)[0])
    every = {f"{o.method.upper()} {o.path}" for o in operations}
    missing = sorted(every - answered_ok)
    assert answered_ok == every, f"no validated 2xx body for {missing}"
    summary = "\n".join(f"{label}: {dict(sorted(codes.items()))}" for label, codes in calls.items() if codes)
    assert not failures, "\n\n".join(failures[:10]) + f"\n\n{len(failures)} failing case(s)\n{summary}"
    statuses = {code for codes in calls.values() for code in codes}
    assert not [s for s in statuses if s >= 500], summary
    assert sum(sum(codes.values()) for codes in calls.values()) >= 10 * len(operations), summary
    assert 200 in statuses and {400, 404, 422} & statuses, summary
    print(f"schemathesis: {len(operations)} operations in {elapsed:.1f} s\n{summary}")


def validate(case: Any, response: Any) -> None:
    case.validate_response(response, checks=CHECKS)


def run_operation(
    operation: Any,
    mode: GenerationMode,
    examples: int,
    timeout: float,
    seen: dict[int, int],
    failures: list[str],
) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],
    )
    def check(case: Any) -> None:
        response = case.call(timeout=timeout)
        seen[response.status_code] = seen.get(response.status_code, 0) + 1
        try:
            validate(case, response)
        except BaseException as exc:  # a FailureGroup: collected, all operations still run
            if len(failures) < 50:
                failures.append(f"{operation.method.upper()} {operation.path} ({mode.value}): {exc}"[:3000])

    try:
        check()
    except Unsatisfiable:
        # nothing to negate (no parameters, no body): there are no invalid inputs to send
        if mode is not GenerationMode.NEGATIVE:
            raise


# ------------------------------------------------------------------------- the contract can fail
BROKEN_PATH = "/api/mv/flavors/"


def garbage_for_show_flavor(app: Any) -> Any:
    """The real app, except ``GET /api/mv/flavors/{name}`` answers ``{"garbage": true}`` (200)."""

    async def wrapper(scope: Any, receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        name = path[len(BROKEN_PATH) :]
        if scope["type"] == "http" and path.startswith(BROKEN_PATH) and name not in ("status", "events"):
            body = b'{"garbage": true}'
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await app(scope, receive, send)

    return wrapper


@pytest.mark.parametrize("broken", [False, True])
def test_a_wrong_response_shape_fails_the_contract_check(tmp_path: Path, broken: bool) -> None:
    app = create_app(
        make_settings(tmp_path), store=FlavorStore([tmp_path / "flavors"], PluginHost(entry_points=False))
    )
    served = garbage_for_show_flavor(app) if broken else app
    schema = schemathesis.openapi.from_asgi("/schema/openapi.json", served)
    operation = next(
        result.ok() for result in schema.get_all_operations() if result.ok().path == "/api/mv/flavors/{name}"
    )
    failures: list[str] = []
    seen: dict[int, int] = {}
    try:
        explicit = operation.Case(path_parameters={"name": "default"})
        try:
            validate(explicit, explicit.call(timeout=30))
        except BaseException as exc:
            failures.append(str(exc))
        run_operation(operation, GenerationMode.POSITIVE, 5, 30.0, seen, failures)
    finally:
        shutdown_lifespans()
    if broken:
        assert len(failures) >= 2, seen  # the explicit case and the generated ones
        assert all("garbage" in f or "required" in f.lower() for f in failures), failures[0][:2000]
    else:
        assert not failures, failures[0][:2000]
        assert seen.get(200), seen
