"""The layer rules of ARCHITECTURE.md, checked on the source: every module
under loom/ is parsed with ``ast``, none is imported. Packages that do not
exist yet contribute no modules; once they appear, the rules hold for them.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy
import sqlalchemy.ext.asyncio
from sqlalchemy.ext.asyncio import create_async_engine as bound_before_the_guard

from loom.db.engine import Database

LOOM = Path(__file__).resolve().parents[2] / "loom"

# Modules under loom/virt/ that every driver may import. Add a shared helper
# here when one appears; anything else under loom/virt/ is some driver's own.
SHARED_VIRT_MODULES = frozenset({"driver"})


@dataclass(frozen=True)
class Module:
    name: str
    # Dotted names the module imports (modules, and names from them) and the
    # functions it calls, as written at the call (``config.load_settings``).
    uses: frozenset[str]


def under(*packages: str) -> Callable[[str], bool]:
    """Whether a dotted name is one of ``packages`` or inside one."""

    def match(name: str) -> bool:
        return any(name == package or name.startswith(package + ".") for package in packages)

    return match


def is_manager_module(used: str) -> bool:
    """``loom.<service>.manager`` and anything inside it (not ``loom.manager``,
    the base class every service shares)."""
    parts = used.split(".")
    return parts[0] == "loom" and "manager" in parts[2:]


def is_another_virt_driver(module: str, used: str) -> bool:
    mine, theirs = module.split("."), used.split(".")
    if theirs[:2] != ["loom", "virt"] or len(theirs) < 3:
        return False
    return theirs[2] not in SHARED_VIRT_MODULES and theirs[2] != mine[2]


@dataclass(frozen=True)
class Rule:
    name: str
    applies_to: Callable[[str], bool]  # the module's dotted name
    forbids: Callable[[str, str], bool]  # (the module, a name it uses)


RULES = [
    Rule(
        "drivers, compute and the bus import no database code",
        under("loom.virt", "loom.compute", "loom.network.driver", "loom.network.drivers", "loom.bus"),
        lambda module, used: under("loom.db", "loom.objects", "sqlalchemy")(used),
    ),
    Rule(
        "the api imports service rpcapi modules, never manager modules",
        under("loom.api"),
        lambda module, used: is_manager_module(used),
    ),
    Rule(
        "configuration is read only at entry points",
        lambda module: not under("loom.cmd", "loom.config")(module),
        lambda module, used: used.rpartition(".")[2] == "load_settings",
    ),
    Rule(
        "virt drivers do not import each other",
        # Every module under loom/virt/; the package's __init__ is no driver.
        lambda module: module.startswith("loom.virt."),
        is_another_virt_driver,
    ),
]


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else node.attr
    return None


def parse(name: str, source: str, *, is_package: bool = False) -> Module:
    """The names module ``name`` uses, relative imports made absolute."""
    package = name.split(".") if is_package else name.split(".")[:-1]
    uses: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            uses.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parent = package[: len(package) - node.level + 1]
                base = ".".join([*parent, node.module] if node.module else parent)
            else:
                base = node.module or ""
            uses.add(base)
            uses.update(f"{base}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Call) and (called := _dotted(node.func)):
            uses.add(called)
    return Module(name, frozenset(uses))


@functools.cache
def loom_modules() -> tuple[Module, ...]:
    modules = []
    for path in sorted(LOOM.rglob("*.py")):
        parts = path.relative_to(LOOM.parent).with_suffix("").parts
        is_package = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if is_package else parts)
        modules.append(parse(name, path.read_text(encoding="utf-8"), is_package=is_package))
    return tuple(modules)


def broken(rule: Rule, modules: tuple[Module, ...] | list[Module]) -> list[str]:
    return [
        f"{module.name} uses {used}"
        for module in modules
        if rule.applies_to(module.name)
        for used in sorted(module.uses)
        if rule.forbids(module.name, used)
    ]


def test_every_module_under_loom_is_read() -> None:
    names = {module.name for module in loom_modules()}
    assert {"loom", "loom.config", "loom.bus.rpc", "loom.cmd.main", "loom.db.engine"} <= names


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.name)
def test_loom_keeps_the_layer_rule(rule: Rule) -> None:
    assert broken(rule, loom_modules()) == []


# (module, source, is it a package, which rule it breaks or None)
EXAMPLES = [
    ("loom.virt.fake", "from loom.db import models", False, RULES[0]),
    ("loom.virt.qemu", "from loom import db", True, RULES[0]),
    ("loom.compute.build", "import sqlalchemy.orm as orm", False, RULES[0]),
    ("loom.network.drivers.linux", "from ...db.engine import Database", False, RULES[0]),
    ("loom.network.driver", "from sqlalchemy import select", False, RULES[0]),
    ("loom.bus.amqp", "from ..db import services", False, RULES[0]),
    ("loom.network.manager", "from loom.db import models", False, None),
    ("loom.conductor.build", "from sqlalchemy import select", False, None),
    ("loom.api.compute.servers", "from loom.conductor import manager", False, RULES[1]),
    ("loom.api.compute.servers", "from loom.compute.manager import ComputeManager", False, RULES[1]),
    ("loom.api.compute", "import loom.scheduler.manager", True, RULES[1]),
    ("loom.api.compute.servers", "from loom.conductor import rpcapi", False, None),
    ("loom.api.app", "from loom.manager import Manager", False, None),
    ("loom.service", "settings = load_settings()", False, RULES[2]),
    ("loom.compute.manager", "from loom.config import load_settings", False, RULES[2]),
    ("loom.api.app", "s = config.load_settings(path)", False, RULES[2]),
    ("loom.cmd.main", "settings = load_settings(path)", False, None),
    ("loom.cmd.up.main", "from loom.config import load_settings", False, None),
    ("loom.virt.qemu.driver", "from loom.virt import fake", False, RULES[3]),
    ("loom.virt.qemu.driver", "from loom.virt.fake import FakeDriver", False, RULES[3]),
    ("loom.virt.fake", "from .qemu import driver", False, RULES[3]),
    ("loom.virt.driver", "import loom.virt.fake", False, RULES[3]),
    ("loom.virt.qemu.driver", "from loom.virt.driver import ComputeDriver", False, None),
    ("loom.virt.qemu.driver", "from loom.virt.qemu import disk\nfrom . import xml", False, None),
    ("loom.virt.qemu", "from .driver import QemuDriver", True, None),
    ("loom.virt.fake", "from loom import errors\nfrom loom.config import Settings", False, None),
]


@pytest.mark.parametrize(
    ("name", "source", "is_package", "breaks"),
    EXAMPLES,
    ids=[f"{name}: {source.splitlines()[0]}" for name, source, _, _ in EXAMPLES],
)
def test_the_checker_catches_what_it_should(
    name: str, source: str, is_package: bool, breaks: Rule | None
) -> None:
    """The rules pass on loom today partly because most packages are still
    empty; these examples show each one bites once code arrives."""
    module = parse(name, source, is_package=is_package)
    broken_rules = [rule for rule in RULES if broken(rule, [module])]
    assert broken_rules == ([breaks] if breaks else [])


def test_unit_tests_cannot_create_a_database_engine() -> None:
    """The guard in tests/unit/conftest.py: the unit tier's own layer rule."""
    with pytest.raises(AssertionError, match="unit tests cannot touch a database"):
        Database("sqlite:///x.db")
    with pytest.raises(AssertionError, match="unit tests cannot touch a database"):
        sqlalchemy.create_engine("sqlite://")
    with pytest.raises(AssertionError, match="unit tests cannot touch a database"):
        sqlalchemy.ext.asyncio.create_async_engine("sqlite+aiosqlite://")
    with pytest.raises(AssertionError, match="unit tests cannot touch a database"):
        bound_before_the_guard("sqlite+aiosqlite://")
