"""Sessions: tests, lint, typecheck, schemas, bench."""

from __future__ import annotations

import os

import nox

nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = True

PLUGIN = "plugins/mvcore_plugin_neon"


def _install(session: nox.Session, extras: str = "test") -> None:
    session.install("-e", f".[{extras}]", "-e", PLUGIN)


@nox.session(python=False if os.environ.get("MVCORE_NOX_NO_VENV") else None)
def tests(session: nox.Session) -> None:
    """The whole test suite (browser and Redis tests run when CI=true)."""
    if session.venv_backend != "none":
        _install(session)
    session.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", "mvcore", "tests", "benchmarks", "plugins", "noxfile.py")


@nox.session
def typecheck(session: nox.Session) -> None:
    _install(session, "dev")
    session.run("mypy", "mvcore")


@nox.session
def schemas(session: nox.Session) -> None:
    """Fail when schemas/ drifts from the pydantic models (write them with `mvcore schemas export`)."""
    _install(session)
    session.run("mvcore", "schemas", "export", "--check")


@nox.session
def bench(session: nox.Session) -> None:
    """Ratio benchmarks against baselines in the same process; `-- --quick` for a short run."""
    _install(session)
    session.install("dynaconf", "omegaconf", "hydra-core")
    session.run("python", "-m", "benchmarks", *session.posargs)
