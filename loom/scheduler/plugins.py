"""Filters and weighers are plugins, named in the configuration. A name
is looked up among the built-in ones, then among the entry points of the
plugin group (``loom.scheduler.filters`` / ``loom.scheduler.weighers``),
then as a dotted path (``package.module:Class`` or ``package.module.Class``).
An unknown name fails when the scheduler starts, not on the first request.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from importlib import metadata
from typing import TypeVar, cast

from loom.scheduler.errors import UnknownPlugin

T = TypeVar("T")


def resolve(kind: str, names: Iterable[str], builtins: Mapping[str, type[T]], base: type,
            group: str) -> list[type[T]]:
    """The plugin classes called ``names``, in order, each once."""
    out: list[type[T]] = []
    for name in dict.fromkeys(names):
        cls = builtins.get(name) or _entry_point(group, name) or _dotted(name)
        if cls is None:
            raise UnknownPlugin(f"unknown scheduler {kind} {name!r}: the built-in {kind}s are "
                                f"{', '.join(sorted(builtins))}; others are named by entry point "
                                f"(group {group}) or as package.module:Class", plugin=name)
        if not (isinstance(cls, type) and issubclass(cls, base)):
            raise UnknownPlugin(f"scheduler {kind} {name!r} is not a {base.__name__}", plugin=name)
        if cls not in out:
            out.append(cast(type[T], cls))
    return out


def _entry_point(group: str, name: str) -> type | None:
    for ep in metadata.entry_points(group=group):
        if ep.name == name:
            loaded = ep.load()
            return loaded if isinstance(loaded, type) else None
    return None


def _dotted(name: str) -> type | None:
    module_name, sep, attr = name.partition(":") if ":" in name else name.rpartition(".")
    if not sep or not module_name or not attr:
        return None
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    found = getattr(module, attr, None)
    return found if isinstance(found, type) else None
