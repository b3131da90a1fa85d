"""The ``mvcore`` command: flavors, plugins, schemas, serve, worker, jobs.

Exit codes: 0 success; 1 a failure the command reports (invalid flavors, an unknown flavor,
a drifted schema); 2 a usage error (click's own: bad option, missing argument, no such path).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NoReturn

import click

from mvcore import __version__, logs
from mvcore.config.merge import leaf_paths
from mvcore.config.plugins import PluginHost
from mvcore.config.store import FlavorStore, ReloadEvent
from mvcore.config.validation import Issue
from mvcore.errors import MvcoreError, NotFound
from mvcore.settings import Settings


def _settings(flavors_dirs: tuple[str, ...]) -> Settings:
    settings = Settings()
    if flavors_dirs:
        settings = settings.model_copy(update={"flavors_dirs": [Path(p) for p in flavors_dirs]})
    logs.configure(debug_mode=settings.debug_mode, secrets=settings.secrets())
    return settings


def _store(flavors_dirs: tuple[str, ...]) -> FlavorStore:
    from mvcore.providers.catalogue import app_plugin_host

    settings = _settings(flavors_dirs)
    return FlavorStore.from_settings(settings, app_plugin_host(settings))


def _app_host() -> PluginHost:
    from mvcore.providers.catalogue import register

    return register(PluginHost())


flavors_dir_option = click.option(
    "--flavors-dir",
    "flavors_dirs",
    multiple=True,
    type=click.Path(file_okay=False),
    help="Flavor root (repeatable). Default: $MVCORE_FLAVORS_DIR or ./flavors",
)


JSON_HELP = "Print one JSON document instead of text."


class CommandFailed(click.ClickException):
    """A failure the command reports itself: exit 1 with ``error: ...`` (and a hint) on stderr."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)
        if self.hint:
            click.echo(f"hint: {self.hint}", err=True)


def _emit(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, sort_keys=False, default=str))


@click.group()
@click.version_option(__version__, "--version", prog_name="mvcore", message="%(prog)s %(version)s")
@click.option("-v", "--verbose", is_flag=True, help="Log at DEBUG level.")
def main(verbose: bool) -> None:
    """mvcore: config flavors and the music-video generation API."""
    logs.setup_logging(logging.DEBUG if verbose else logging.WARNING)


# --------------------------------------------------------------------- flavors
@main.group()
def flavors() -> None:
    """List, show, validate, diff, scaffold and watch flavors."""


@flavors.command("list")
@flavors_dir_option
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
def flavors_list(flavors_dirs: tuple[str, ...], as_json: bool) -> None:
    """Every flavor with its source and status (shadowed ones too)."""
    snap = _store(flavors_dirs).current
    rows = [s.to_dict() for s in sorted(snap.statuses.values(), key=lambda s: s.name)]
    if as_json:
        _emit(
            {"generation": snap.generation, "flavors": rows, "shadowed": [s.to_dict() for s in snap.shadowed]}
        )
        return
    for row in rows:
        mark = {"ok": "ok", "error": "ERROR (serving last good)", "invalid": "INVALID"}.get(
            row["status"], "?"
        )
        click.echo(f"{row['name']:<24} {mark:<26} {row['source']}")
        for err in row["errors"]:
            click.echo(f"    {err['text']}")
    for shadow in snap.shadowed:
        click.echo(f"{shadow.name:<24} {'shadowed':<26} {shadow.loser} (using {shadow.winner})")


@flavors.command("show")
@click.argument("name")
@flavors_dir_option
@click.option("--type", "config_type", help="Only this config type.")
@click.option("--json", "as_json", is_flag=True, help="Print exactly one JSON object.")
@click.option("--strict", is_flag=True, help="Fail instead of falling back to 'default'.")
def flavors_show(
    name: str, flavors_dirs: tuple[str, ...], config_type: str | None, as_json: bool, strict: bool
) -> None:
    """Resolved values of a flavor, with the layer each value came from."""
    store = _store(flavors_dirs)
    snap = store.current
    try:
        resolution = snap.resolve(name, strict=strict or store.strict)
        if config_type and config_type not in resolution.configs:
            snap.config(name, config_type)  # raises NotFound with alternatives
        wire = resolution.to_wire(config_type)
    except MvcoreError as exc:
        _fail(exc, as_json)
    if as_json:
        click.echo(json.dumps(wire))
        return
    header = f"flavor {wire['flavor_used']} (generation {wire['generation']})"
    if wire["fallback"]:
        header += f" -- fallback: {name!r} not found"
    click.echo(header)
    for type_name, config in wire["configs"].items():
        click.echo(f"\n[{type_name}]")
        for path, value in leaf_paths(config["values"]).items():
            prov = config["provenance"].get(path, {})
            where = f"{prov.get('file')}:{prov.get('line')}" if prov.get("file") else "(in code)"
            shown = json.dumps(value) if not isinstance(value, str) else value.strip().replace("\n", "\\n")
            if len(shown) > 70:
                shown = shown[:67] + "..."
            click.echo(f"  {path:<28} = {shown:<72} [{prov.get('layer')}] {where}")


def _fail(exc: MvcoreError, as_json: bool) -> NoReturn:
    """Report ``exc`` (as JSON on stdout with --json) and exit 1; usage errors stay click's exit 2."""
    if as_json:
        click.echo(json.dumps({"detail": exc.to_detail()}))
        sys.exit(CommandFailed.exit_code)
    raise CommandFailed(exc.message, exc.hint)


@flavors.command("validate")
@click.argument("path", required=False, type=click.Path(exists=True, file_okay=False))
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
def flavors_validate(path: str | None, as_json: bool) -> None:
    """Check every file under PATH (a flavors root or one flavor; default: the configured roots).

    Each problem is printed once as file:line: key: message, with the path as you typed it,
    so it opens from the current directory.  Exit 1 on any error.
    """
    logging.getLogger("mvcore").setLevel(logging.ERROR)  # the printed list is the report
    count, issues = _validation_issues(path)
    errors = [i for i in issues if i.severity == "error"]
    if as_json:
        _emit({"ok": not errors, "issues": [i.to_dict() for i in issues]})
    else:
        for issue in issues:
            is_error = issue.severity == "error"
            click.echo(f"{issue}" + ("" if is_error else " (warning)"), err=is_error)
        click.echo(
            f"{count} flavor(s) checked: {len(errors)} error(s), {len(issues) - len(errors)} warning(s)"
        )
    sys.exit(1 if errors else 0)


def _validation_issues(path: str | None) -> tuple[int, list[Issue]]:
    """How many flavors were checked and their issues: each once, in file order, paths as given."""
    if path is not None and _looks_like_flavor(Path(path)):
        flavor_dir = Path(path).resolve()
        store = FlavorStore([flavor_dir.parent], _app_host())
        status = store.current.statuses.get(flavor_dir.name)
        found: Iterable[Issue] = [
            *(status.issues if status else ()),
            *(i for i in store.current.issues if flavor_dir.name in getattr(i, "flavors", ())),
        ]
        given, count = {f"{flavor_dir.parent.name}/{flavor_dir.name}/": path}, 1
    else:
        roots = [Path(path)] if path is not None else list(_settings(()).flavors_dirs)
        store = FlavorStore([r.resolve() for r in roots], _app_host())
        snap = store.current
        found = [*snap.issues, *(i for s in snap.statuses.values() for i in s.issues)]
        given, count = {f"{r.resolve().name}/": str(r) for r in roots}, len(snap.statuses)
    unique = {str(i): _as_given(i, given) for i in found}
    return count, sorted(unique.values(), key=lambda i: (i.file or "", i.line or 0, i.path))


def _as_given(issue: Issue, given: dict[str, str]) -> Issue:
    """Issues name files relative to their root's parent; print them under the path the user typed."""
    for shown, typed in given.items():
        if issue.file and issue.file.startswith(shown):
            return dataclasses.replace(issue, file=os.path.join(typed, issue.file[len(shown) :]))
    return issue


def _looks_like_flavor(path: Path) -> bool:
    names = ("flavor", "parameters", "scene_prompts", "image_prompts", "image_params")
    return any((path / f"{name}.yaml").is_file() for name in names)


@flavors.command("diff")
@click.argument("a")
@click.argument("b")
@flavors_dir_option
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
def flavors_diff(a: str, b: str, flavors_dirs: tuple[str, ...], as_json: bool) -> None:
    """Resolved values that differ between two flavors."""
    snap = _store(flavors_dirs).current
    try:
        left, right = snap.resolve(a, strict=True), snap.resolve(b, strict=True)
    except MvcoreError as exc:
        _fail(exc, as_json)
    rows = []
    for type_name in snap.registry.names():
        lv = leaf_paths(left.configs[type_name].values)
        rv = leaf_paths(right.configs[type_name].values)
        for key in sorted(set(lv) | set(rv)):
            if lv.get(key) != rv.get(key):
                rows.append({"config_type": type_name, "key": key, a: lv.get(key), b: rv.get(key)})
    if as_json:
        _emit(rows)
        return
    if not rows:
        click.echo(f"{a} and {b} resolve to the same values")
    for row in rows:
        click.echo(f"{row['config_type']}.{row['key']}:\n  - {a}: {row[a]!r}\n  + {b}: {row[b]!r}")


@flavors.command("new")
@click.argument("name")
@click.option(
    "--dir", "root", type=click.Path(file_okay=False), default=None, help="Flavor root to create it in."
)
@click.option("--force", is_flag=True, help="Overwrite an existing flavor.")
@click.option("--extends", default=None, help="Parent flavor to inherit from (default: 'default').")
def flavors_new(name: str, root: str | None, force: bool, extends: str | None) -> None:
    """Scaffold a flavor whose files validate, with every key commented out."""
    from mvcore.config.scaffold import scaffold_flavor

    settings = _settings(())
    target_root = Path(root) if root else settings.flavors_dirs[0]
    try:
        created = scaffold_flavor(name, target_root, force=force, extends=extends)
    except MvcoreError as exc:
        _fail(exc, False)
    click.echo(f"created {created}")


@flavors.command("render")
@click.argument("name")
@flavors_dir_option
@click.option("--idea", required=True, help="What the video is about (the scene prompt's {idea}).")
@click.option("--character", "character", required=True, help="The character description.")
@click.option("--video-prompt", default=None, help="Scene description for the video prompt.")
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="TYPE.KEY=VALUE",
    help="A per-request config override (repeatable); VALUE is read as YAML.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the preview as one JSON object.")
def flavors_render(
    name: str,
    flavors_dirs: tuple[str, ...],
    idea: str,
    character: str,
    video_prompt: str | None,
    overrides: tuple[str, ...],
    as_json: bool,
) -> None:
    """Show the exact prompts and parameters each generator would send; calls no provider."""
    from mvcore.config.overrides import apply_overrides, check_overrides
    from mvcore.generators.preview import RenderRequest, render_preview

    settings = _settings(flavors_dirs)
    snap = FlavorStore.from_settings(settings).current
    try:
        parsed = _parse_overrides(overrides)
        request = RenderRequest(
            idea=idea, character_description=character, video_prompt=video_prompt, config_overrides=parsed
        )
        resolution = snap.resolve(name, strict=True)
        if parsed:
            check_overrides(parsed, snap.registry, settings.overridable_keys)
            resolution = apply_overrides(resolution, parsed)
        preview = render_preview(
            resolution, request, max_chars=settings.max_prompt_chars, models=_catalogue()
        )
    except MvcoreError as exc:
        _fail(exc, as_json)
    if as_json:
        _emit(preview)
        return
    for generator, call in preview["generators"].items():
        click.echo(f"== {generator} ({call['replicate']['model']})")
        if call["prompt"]:
            click.echo(call["prompt"].rstrip())
        for key, prov in call["provenance"].items():
            where = f"{prov['file']}:{prov['line']}" if prov.get("file") else ""
            click.echo(f"  {key:<28} <- {prov['source']:<40} [{prov['layer']}] {where}")
        click.echo(f"  replicate input: {json.dumps(call['replicate']['inputs'][0], ensure_ascii=False)}\n")


def _parse_overrides(items: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    import yaml

    from mvcore.errors import BadInput

    out: dict[str, dict[str, Any]] = {}
    for item in items:
        target, sep, raw = item.partition("=")
        config_type, dot, key = target.partition(".")
        if not sep or not dot or not key:
            raise BadInput(f"--set {item!r}: write TYPE.KEY=VALUE, e.g. parameters.camera_angle=wide")
        out.setdefault(config_type, {})[key] = yaml.safe_load(raw) if raw else ""
    return out


@flavors.command("watch")
@flavors_dir_option
@click.option("--poll", is_flag=True, help="Use the polling observer (network filesystems).")
def flavors_watch(flavors_dirs: tuple[str, ...], poll: bool) -> None:
    """Print reload events as flavor files change (Ctrl-C to stop)."""
    from mvcore.config.reload import Reloader

    settings = _settings(flavors_dirs)
    store = FlavorStore.from_settings(settings)
    click.echo(f"watching {', '.join(map(str, store.watch_roots()))} (generation {store.current.generation})")

    def show(event: ReloadEvent) -> None:
        click.echo(json.dumps(event.to_dict()))

    store.subscribe(show)
    if poll:
        settings = settings.model_copy(update={"watch": "poll"})
    with Reloader.from_settings(store, settings):
        try:
            import threading

            threading.Event().wait()
        except KeyboardInterrupt:
            pass


# --------------------------------------------------------------------- plugins
@main.group()
def plugins() -> None:
    """Installed plugins."""


@plugins.command("list")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
def plugins_list(as_json: bool) -> None:
    """Each plugin, its version, its hooks and its errors."""
    from mvcore.providers.catalogue import app_plugin_host

    settings = _settings(())
    host = app_plugin_host(settings)
    host.contributions()  # call the hooks so their errors show
    report = host.report()
    if as_json:
        _emit(report)
        return
    for row in report:
        state = "enabled" if row["enabled"] else "disabled"
        click.echo(
            f"{row['name']:<20} {row['version'] or '-':<10} {state:<9} {row['source']:<12} "
            f"{', '.join(row['hooks']) or '-'}"
        )
        for err in row["errors"]:
            click.echo(f"    error: {err}")


# --------------------------------------------------------------------- models
@main.group()
def models() -> None:
    """The model catalogue: each model's published input schema and where it came from."""


def _catalogue() -> Any:
    from mvcore.providers.catalogue import app_catalogue, app_plugin_host

    return app_catalogue(app_plugin_host(_settings(())))


@models.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array.")
def models_list(as_json: bool) -> None:
    """Every catalogued model, its inputs, source and date."""
    catalogue = _catalogue()
    entries = [catalogue.entries[n] for n in catalogue.names()]
    if as_json:
        _emit([{k: v for k, v in e.to_dict().items() if k != "input_schema"} for e in entries])
        return
    for entry in entries:
        inputs = ", ".join(entry.properties)
        click.echo(f"{entry.name:<26} retrieved {entry.retrieved}  ({entry.owner})  inputs: {inputs}")
        click.echo(f"    source: {entry.source}")


@models.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print exactly one JSON object.")
def models_show(name: str, as_json: bool) -> None:
    """One model: every input with its type, accepted values and default; notes on inferred fields."""
    from mvcore.config.model_checks import accepted_text

    catalogue = _catalogue()
    entry = catalogue.get(name)
    if entry is None:
        _fail(NotFound(f"Model {name!r} is not in the catalogue", alternatives=catalogue.names()), as_json)
    if as_json:
        click.echo(json.dumps(entry.to_dict()))
        return
    click.echo(f"{entry.name}" + (f" (version {entry.version})" if entry.version else ""))
    click.echo(f"source:    {entry.source}\nretrieved: {entry.retrieved}\nowner:     {entry.owner}")
    for input_name, prop in entry.properties.items():
        required = " required" if input_name in entry.required else ""
        default = f" default {json.dumps(prop['default'])}" if "default" in prop else ""
        click.echo(f"  {input_name:<24} {accepted_text(prop)}{default}{required}")
    for note in entry.notes:
        click.echo(f"note: {note}")
    if entry.inferred:
        click.echo(f"inferred: {', '.join(entry.inferred)}")


# --------------------------------------------------------------------- schemas
@main.group()
def schemas() -> None:
    """JSON Schemas of the config types."""


@schemas.command("export")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False),
    default="schemas",
    show_default=True,
    help="Directory to write the *.schema.json files to.",
)
@click.option("--check", is_flag=True, help="Exit 1 if the files differ from the models; write nothing.")
def schemas_export(directory: str, check: bool) -> None:
    """Write the JSON Schema of every config type (from the pydantic models) for editors and CI."""
    from mvcore.config.schema_export import export_schemas

    registry = PluginHost(entry_points=False).contributions().registry
    differing = export_schemas(registry, Path(directory), check=check)
    if check:
        for name in differing:
            click.echo(f"{directory}/{name} is out of date; run `mvcore schemas export`", err=True)
        sys.exit(1 if differing else 0)
    click.echo(f"wrote {len(differing)} changed schema file(s) to {directory}/")


# --------------------------------------------------------------------- server
@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8000, show_default=True, type=int, help="TCP port to listen on.")
@click.option(
    "--reload-flavors/--no-reload-flavors",
    default=True,
    show_default=True,
    help="Watch the flavor directories and hot-reload edits.",
)
@flavors_dir_option
def serve(host: str, port: int, reload_flavors: bool, flavors_dirs: tuple[str, ...]) -> None:
    """Serve the API and web UI (offline provider and local storage unless configured)."""
    import uvicorn

    from mvcore.api.app import create_app
    from mvcore.config.store import freeze_startup_heap

    settings = _settings(flavors_dirs)
    if not reload_flavors:
        settings = settings.model_copy(update={"watch": "off"})
    logs.setup_logging(logging.INFO)
    app = create_app(settings)
    freeze_startup_heap()
    for line in _serve_banner(settings, host, port):
        click.echo(line, err=line.startswith("warning"))
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="info",
        log_config=logs.uvicorn_log_config(),
        access_log=bool(os.environ.get("MVCORE_ACCESS_LOG")),
    )


def _serve_banner(settings: Settings, host: str, port: int) -> list[str]:
    """Where to point a browser, and what this server reads and writes, before uvicorn's own lines."""
    shown = f"[{host}]" if ":" in host else host
    base = f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else shown}:{port}"
    lines = [
        f"mvcore {__version__}",
        f"  web UI:   {base}/",
        f"  OpenAPI:  {base}/schema/openapi.json  (browse at {base}/schema)",
        f"  data:     {settings.data_dir.resolve()}",
    ]
    for root in settings.flavors_dirs:
        if root.is_dir():
            lines.append(f"  flavors:  {root.resolve()}")
        else:
            lines.append(
                f"warning: flavors directory {root} does not exist ({root.resolve()}): serving the "
                "built-in defaults only. Create it (mvcore flavors new NAME) or set MVCORE_FLAVORS_DIR."
            )
    return lines


@main.command()
@click.option("--concurrency", default=2, show_default=True, type=int, help="Jobs run at once.")
def worker(concurrency: int) -> None:
    """Run generation jobs from Redis (MVCORE_REDIS_URL) in this process."""
    from mvcore.jobs.worker import run_worker

    settings = _settings(())
    logs.setup_logging(logging.INFO)
    run_worker(settings, concurrency=concurrency)


# --------------------------------------------------------------------- jobs
@main.group()
def jobs() -> None:
    """Inspect and steer jobs in the Redis job store (MVCORE_REDIS_URL)."""


def _jobs(action: str, job_id: str | None, status: str | None, limit: int, as_json: bool) -> None:
    from mvcore.jobs.admin import jobs_command

    try:
        answer, lines = jobs_command(_settings(()), action, job_id, status, limit)
    except MvcoreError as exc:
        _fail(exc, as_json)
    if as_json:
        _emit(answer)
    else:
        for line in lines:
            click.echo(line)


@jobs.command("list")
@click.option("--status", default=None, help="Only jobs with this status (queued, running, ...).")
@click.option("--limit", default=50, type=click.IntRange(1, 500), help="At most this many (default 50).")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
def jobs_list(status: str | None, limit: int, as_json: bool) -> None:
    """Recent jobs, newest first."""
    _jobs("list", None, status, limit, as_json)


@jobs.command("show")
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
def jobs_show(job_id: str, as_json: bool) -> None:
    """One job: status, attempts, progress, result or error."""
    _jobs("show", job_id, None, 1, as_json)


@jobs.command("cancel")
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
def jobs_cancel(job_id: str, as_json: bool) -> None:
    """Cancel a queued job, or ask a running one to stop (waits up to 5 s)."""
    _jobs("cancel", job_id, None, 1, as_json)


@jobs.command("retry")
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
def jobs_retry(job_id: str, as_json: bool) -> None:
    """Queue a failed or cancelled job again (same id; attempts start over)."""
    _jobs("retry", job_id, None, 1, as_json)


if __name__ == "__main__":  # pragma: no cover
    main()
