"""The built-in layer, registered through the same hooks as any plugin."""

from __future__ import annotations

from mvcore.config.config_types import ConfigType, builtin_config_types
from mvcore.config.hookspecs import hookimpl


# tryfirst: the built-in types are the base that plugin types extend or replace on purpose.
@hookimpl(tryfirst=True)
def mvcore_config_types() -> list[ConfigType]:
    return builtin_config_types()
