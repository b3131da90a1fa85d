"""The replicate provider and its call machinery import one way, and stay off the client's privates."""

from __future__ import annotations

import ast
from pathlib import Path

PROVIDERS = Path(__file__).resolve().parents[2] / "mvcore" / "providers"
CONFIG = PROVIDERS.parent / "config"


def imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_replicate_call_does_not_import_the_provider_back() -> None:
    assert "mvcore.providers.replicate_call" in imported_modules(PROVIDERS / "replicate.py")
    assert "mvcore.providers.replicate" not in imported_modules(PROVIDERS / "replicate_call.py")


def test_no_private_attribute_of_the_replicate_client_is_touched() -> None:
    for path in PROVIDERS.glob("replicate*.py"):
        text = path.read_text()
        assert "_Client__" not in text, path.name
        assert "._async_client" not in text and "._async_request" not in text, path.name


def test_the_model_checks_of_the_framework_import_no_application_package() -> None:
    for module in imported_modules(CONFIG / "model_checks.py"):
        assert not module.startswith(("mvcore.providers", "mvcore.generators", "mvcore.api")), module
