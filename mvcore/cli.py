"""The ``mvcore`` command: flavors, plugins, schemas, serve, worker, jobs."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import click

from mvcore import logs
from mvcore.config.merge import leaf_paths
from mvcore.config.plugins import PluginHost
from mvcore.config.store import FlavorStore, ReloadEvent
from mvcore.errors import MvcoreError
from mvcore.settings import Settings


def _settings(flavors_dirs: tuple[str, ...]) -> Settings:
    settings = Settings()
    if flavors_dirs:
        settings = settings.model_copy(update={"flavors_dirs": [Path(p) for p in flavors_dirs]})
    logs.configure(debug_mode=settings.debug_mode, secrets=settings.secrets())
    return settings


def _store(flavors_dirs: tuple[str, ...]) -> FlavorStore:
    return FlavorStore.from_settings(_settings(flavors_dirs))


flavors_dir_option = click.option(
    "--flavors-dir",
    "flavors_dirs",
    multiple=True,
    type=click.Path(file_okay=False),
    help="Flavor root (repeatable). Default: $MVCORE_FLAVORS_DIR or ./flavors",
)


def _emit(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, sort_keys=False, default=str))


@click.group()
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
@click.option("--json", "as_json", is_flag=True)
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


def _fail(exc: MvcoreError, as_json: bool) -> Any:
    if as_json:
        click.echo(json.dumps({"detail": exc.to_detail()}))
    else:
        click.echo(f"error: {exc.message}", err=True)
        if exc.hint:
            click.echo(f"hint: {exc.hint}", err=True)
    sys.exit(1 if exc.status_code != 404 else 2)


@flavors.command("validate")
@click.argument("path", required=False, type=click.Path(exists=True, file_okay=False))
@click.option("--json", "as_json", is_flag=True)
def flavors_validate(path: str | None, as_json: bool) -> None:
    """Check every file; exit 1 on any error (printed as file:line: key: message)."""
    root = Path(path) if path else None
    if root is not None and _looks_like_flavor(root):
        store = FlavorStore([root.parent], PluginHost())
        statuses = {n: s for n, s in store.current.statuses.items() if n == root.name}
        issues = [i for s in statuses.values() for i in s.issues]
    else:
        store = FlavorStore([root], PluginHost()) if root is not None else _store(())
        snap = store.current
        issues = list(snap.issues) + [i for s in snap.statuses.values() for i in s.issues]
    errors = [i for i in issues if i.severity == "error"]
    if as_json:
        _emit({"ok": not errors, "issues": [i.to_dict() for i in issues]})
    else:
        for issue in issues:
            click.echo(
                f"{issue}" + ("" if issue.severity == "error" else " (warning)"),
                err=issue.severity == "error",
            )
        count = len(store.current.statuses)
        click.echo(
            f"{count} flavor(s) checked: {len(errors)} error(s), {len(issues) - len(errors)} warning(s)"
        )
    sys.exit(1 if errors else 0)


def _looks_like_flavor(path: Path) -> bool:
    return any(
        (path / f).is_file()
        for f in (
            "flavor.yaml",
            "parameters.yaml",
            "scene_prompts.yaml",
            "image_prompts.yaml",
            "image_params.yaml",
        )
    )


@flavors.command("diff")
@click.argument("a")
@click.argument("b")
@flavors_dir_option
@click.option("--json", "as_json", is_flag=True)
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
def flavors_new(name: str, root: str | None, force: bool) -> None:
    """Scaffold a flavor whose files validate, with every key commented out."""
    from mvcore.config.scaffold import scaffold_flavor

    settings = _settings(())
    target_root = Path(root) if root else settings.flavors_dirs[0]
    try:
        created = scaffold_flavor(name, target_root, force=force)
    except MvcoreError as exc:
        _fail(exc, False)
    click.echo(f"created {created}")


@flavors.command("watch")
@flavors_dir_option
@click.option("--poll", is_flag=True, help="Use the polling observer.")
def flavors_watch(flavors_dirs: tuple[str, ...], poll: bool) -> None:
    """Print reload events as flavor files change (Ctrl-C to stop)."""
    from mvcore.config.reload import Reloader

    settings = _settings(flavors_dirs)
    store = FlavorStore.from_settings(settings)
    click.echo(f"watching {', '.join(map(str, store.watch_roots()))} (generation {store.current.generation})")

    def show(event: ReloadEvent) -> None:
        click.echo(json.dumps(event.to_dict()))

    store.subscribe(show)
    mode = "poll" if poll else settings.watch
    with Reloader(store, mode=mode, debounce_ms=settings.debounce_ms):
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
@click.option("--json", "as_json", is_flag=True)
def plugins_list(as_json: bool) -> None:
    """Each plugin, its version, its hooks and its errors."""
    settings = _settings(())
    host = PluginHost(allow=settings.plugins, deny=settings.disable_plugins)
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


# --------------------------------------------------------------------- schemas
@main.group()
def schemas() -> None:
    """JSON Schemas of the config types."""


@schemas.command("export")
@click.option("--dir", "directory", type=click.Path(file_okay=False), default="schemas")
@click.option("--check", is_flag=True, help="Exit 1 if the files differ from the models; write nothing.")
def schemas_export(directory: str, check: bool) -> None:
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
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--reload-flavors/--no-reload-flavors", default=True, show_default=True)
@flavors_dir_option
def serve(host: str, port: int, reload_flavors: bool, flavors_dirs: tuple[str, ...]) -> None:
    """Serve the API and web UI (offline provider and local storage unless configured)."""
    import uvicorn

    from mvcore.api.app import create_app

    settings = _settings(flavors_dirs)
    if not reload_flavors:
        settings = settings.model_copy(update={"watch": "off"})
    logs.setup_logging(logging.INFO)
    app = create_app(settings)
    uvicorn.run(
        app, host=host, port=port, log_level="info", access_log=bool(os.environ.get("MVCORE_ACCESS_LOG"))
    )


@main.command()
@click.option("--concurrency", default=2, show_default=True, type=int)
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
        return
    if as_json:
        _emit(answer)
    else:
        for line in lines:
            click.echo(line)


@jobs.command("list")
@click.option("--status", default=None, help="Only jobs with this status (queued, running, ...).")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 500))
@click.option("--json", "as_json", is_flag=True)
def jobs_list(status: str | None, limit: int, as_json: bool) -> None:
    """Recent jobs, newest first."""
    _jobs("list", None, status, limit, as_json)


@jobs.command("show")
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True)
def jobs_show(job_id: str, as_json: bool) -> None:
    """One job: status, attempts, progress, result or error."""
    _jobs("show", job_id, None, 1, as_json)


@jobs.command("cancel")
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True)
def jobs_cancel(job_id: str, as_json: bool) -> None:
    """Cancel a queued job, or ask a running one to stop (waits up to 5 s)."""
    _jobs("cancel", job_id, None, 1, as_json)


@jobs.command("retry")
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True)
def jobs_retry(job_id: str, as_json: bool) -> None:
    """Queue a failed or cancelled job again (same id; attempts start over)."""
    _jobs("retry", job_id, None, 1, as_json)


if __name__ == "__main__":  # pragma: no cover
    main()
