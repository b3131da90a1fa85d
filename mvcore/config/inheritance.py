"""Flavor inheritance: ``extends:`` in ``flavor.yaml``, one parent, chains allowed.

A flavor resolves as: itself -> its parent -> the parent's parent ... ->
``default`` -> the built-ins, key by key (``merge.py``).  This module answers
the two questions that rule needs: which flavors make up a chain, and what
is wrong with one -- a parent that does not exist, a cycle, a parent that is
itself invalid.  Each problem is reported on the child's ``flavor.yaml`` at
the line of its ``extends:`` key, so an editor can jump to it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping

from mvcore.config.loading import FlavorData
from mvcore.config.validation import Issue

DEFAULT = "default"


def ancestors(name: str, flavors: Mapping[str, FlavorData]) -> list[str]:
    """The parents of ``name``, nearest first, up to (not including) ``default``.

    Stops at a name that is not in ``flavors`` and at a repeat, so it always ends; whether
    the chain is *valid* is ``inheritance_issues``' business.
    """
    out: list[str] = []
    seen = {name}
    current = flavors.get(name)
    while current is not None:
        parent = current.extends
        if parent is None or parent == DEFAULT or parent in seen:
            break
        seen.add(parent)
        out.append(parent)
        current = flavors.get(parent)
    return out


def inheritance_issues(
    flavors: Mapping[str, FlavorData], names: Iterable[str] | None = None
) -> dict[str, tuple[Issue, ...]]:
    """Errors in the ``extends`` chains of ``flavors`` (the data as read now), by flavor name.

    ``names``: check only these (and what their chains reach); ``None`` checks every flavor.
    """
    verdicts: dict[str, tuple[Issue, ...]] = {}
    for name in flavors if names is None else names:
        _check(name, flavors, verdicts, [])
    return {name: issues for name, issues in verdicts.items() if issues}


def _check(
    name: str,
    flavors: Mapping[str, FlavorData],
    verdicts: dict[str, tuple[Issue, ...]],
    path: list[str],
) -> tuple[Issue, ...]:
    """The chain issues of ``name``; ``path`` is the walk that led here (for cycles)."""
    if name in verdicts:
        return verdicts[name]
    data = flavors[name]
    parent = data.extends
    if parent is None or (parent == DEFAULT and name != DEFAULT):
        verdicts[name] = ()
        return ()
    if name == DEFAULT:
        verdicts[name] = (_issue(data, "the default flavor cannot extend another flavor; remove 'extends'"),)
        return verdicts[name]
    if parent == name or parent in path:
        members = [*path[path.index(parent) :], name] if parent in path else [name]
        start = members.index(min(members))  # the same message whichever member the walk began at
        cycle = [*members[start:], *members[:start], members[start]]
        message = f"extends cycle: {' -> '.join(cycle)}; one of them must extend another flavor or none"
        for member in cycle[:-1]:
            verdicts[member] = (_issue(flavors[member], message),)
        return verdicts[name]
    if parent not in flavors:
        guess = difflib.get_close_matches(parent, [n for n in flavors if n != name], n=1, cutoff=0.6)
        hint = f"; did you mean {guess[0]!r}?" if guess else ""
        verdicts[name] = (_issue(data, f"parent flavor {parent!r} does not exist{hint}"),)
        return verdicts[name]
    upstream = _check(parent, flavors, verdicts, [*path, name])
    if name in verdicts:  # we were part of a cycle found further up
        return verdicts[name]
    broken = [i for i in flavors[parent].issues if i.is_error] or [i for i in upstream if i.is_error]
    if broken:
        first = broken[0]
        verdicts[name] = (_issue(data, f"parent flavor {parent!r} is invalid: {first}"),)
    else:
        verdicts[name] = ()
    return verdicts[name]


def _issue(data: FlavorData, message: str) -> Issue:
    file = data.manifest.file or f"{data.source.describe}/flavor.yaml"
    return Issue(file=file, line=data.manifest.extends_line, path="extends", message=message)
