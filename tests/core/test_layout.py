"""The two wings stay apart: the framework imports nothing from the application (ast walk)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "mvcore"
APPLICATION = ("api", "generators", "providers", "storage", "jobs", "media", "projects", "web", "testing")
ROOT_MODULES = {"__init__.py", "__main__.py", "cli.py", "settings.py", "errors.py", "logs.py"}


def _module_name(path: Path, package: Path) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, package: Path = PACKAGE) -> set[str]:
    """Every mvcore module ``path`` imports, at any depth (TYPE_CHECKING and function bodies too)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    here = _module_name(path, package).split(".")
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here if is_package else here[:-1]
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return {m for m in found if m == "mvcore" or m.startswith("mvcore.")}


def _violations(wing: str, forbidden: tuple[str, ...], package: Path = PACKAGE) -> list[str]:
    out = []
    for path in sorted((package / wing).rglob("*.py")):
        for module in sorted(imports_of(path, package)):
            parts = module.split(".")
            if len(parts) > 1 and parts[1] in forbidden:
                out.append(f"{path.relative_to(package.parent)} imports {module}")
    return out


def test_the_framework_imports_nothing_from_the_application() -> None:
    assert _violations("config", APPLICATION) == []


def test_media_does_not_import_providers_or_anything_above_it() -> None:
    assert _violations("media", ("providers", "generators", "api", "jobs", "projects")) == []


def test_the_package_root_holds_only_the_shared_modules() -> None:
    loose = sorted(p.name for p in PACKAGE.glob("*.py") if p.name not in ROOT_MODULES)
    assert loose == []


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_every_module_is_under_600_lines(path: Path) -> None:
    assert len(path.read_text().splitlines()) < 600


def test_the_import_walker_sees_relative_typed_and_nested_imports(tmp_path: Path) -> None:
    """The check above must not pass by missing an import form."""
    package = tmp_path / "mvcore"
    (package / "config").mkdir(parents=True)
    fake = package / "config" / "probe.py"
    fake.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from mvcore.api import app\n"
        "def f():\n    from ..providers import offline\n    import mvcore.jobs.service\n"
    )
    assert imports_of(fake, package) >= {"mvcore.api", "mvcore.providers", "mvcore.jobs.service"}
    assert len(_violations("config", APPLICATION, package)) >= 3
