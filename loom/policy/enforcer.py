"""The policy enforcer every Loom API uses.

Each API registers its default rules in code; an operator's policy YAML
file (rule name → check string, as for any OpenStack service) overrides
them and may add aliases. The file is re-read when it changes, so edits
take effect without a restart.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from loom.context import RequestContext
from loom.errors import Forbidden, Invalid, LoomError
from loom.policy.rules import Check, parse

LOG = logging.getLogger(__name__)

# Check strings every API composes its defaults from. Loom's tokens carry
# implied roles (admin → manager → member → reader), so a reader check also
# passes for a member.
ADMIN = "role:admin"
PROJECT_MANAGER = "role:manager and project_id:%(project_id)s"
PROJECT_MEMBER = "role:member and project_id:%(project_id)s"
PROJECT_READER = "role:reader and project_id:%(project_id)s"
ADMIN_OR_PROJECT_MANAGER = f"({ADMIN}) or ({PROJECT_MANAGER})"
ADMIN_OR_PROJECT_MEMBER = f"({ADMIN}) or ({PROJECT_MEMBER})"
ADMIN_OR_PROJECT_READER = f"({ADMIN}) or ({PROJECT_READER})"

# How often, at most, the policy file's modification time is looked at.
RELOAD_INTERVAL = 1.0


class PolicyNotRegistered(LoomError):
    """Code enforced a rule name no API registered (a programming error)."""


class DuplicatePolicy(LoomError):
    """Two registrations gave one rule name different defaults."""


@dataclass(frozen=True)
class Rule:
    """A default rule: its name, check string, and what it protects."""

    name: str
    check_str: str
    description: str = ""
    # (method, path) pairs the rule guards, for the generated sample.
    operations: tuple[tuple[str, str], ...] = ()


def credentials_of(who: RequestContext | Mapping[str, Any]) -> dict[str, Any]:
    """The credential attributes rules test: a request context's, or a plain
    dict's (its other keys kept), with roles lower-cased into a frozenset."""
    if isinstance(who, Mapping):
        creds = dict(who)
        roles = creds.get("roles") or ()
        if isinstance(roles, str):
            roles = (roles,)
        creds.setdefault("is_admin", False)
    else:
        roles = who.roles
        creds = {
            "user_id": who.user_id,
            "project_id": who.project_id,
            "domain_id": who.domain_id,
            # Newer context fields, read with a default (as oslo.context's
            # to_policy_values offers them to rules).
            "user_domain_id": getattr(who, "user_domain_id", None),
            "project_domain_id": getattr(who, "project_domain_id", None),
            "system_scope": getattr(who, "system_scope", None),
            "is_admin": who.is_admin,
        }
    creds["roles"] = frozenset(str(role).lower() for role in roles)
    return creds


class Enforcer:
    """Registered default rules, overridden by an optional policy file."""

    def __init__(
        self,
        defaults: Iterable[Rule] = (),
        policy_file: Path | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Load ``policy_file`` now; a file that does not parse raises
        ``Invalid``. A missing file means no overrides (yet)."""
        self._defaults: dict[str, Rule] = {}
        self._default_checks: dict[str, Check] = {}
        self._policy_file = Path(policy_file) if policy_file is not None else None
        self._clock = clock
        self._file_rules: dict[str, str] = {}
        self._file_checks: dict[str, Check] = {}
        self._file_signature: tuple[int, int, int] | None = None
        self._table: dict[str, Check] = {}
        self._next_stat = 0.0
        self.register(defaults)
        self.reload()

    @property
    def defaults(self) -> Mapping[str, Rule]:
        """The registered default rules, by name, in registration order."""
        return MappingProxyType(self._defaults)

    @property
    def policy_file(self) -> Path | None:
        return self._policy_file

    def register(self, rules: Iterable[Rule]) -> None:
        """Add default rules. Registering an identical rule again is harmless;
        giving a name a different default raises ``DuplicatePolicy``."""
        added: dict[str, Rule] = {}
        for rule in rules:
            known = self._defaults.get(rule.name) or added.get(rule.name)
            if known is not None and known.check_str != rule.check_str:
                raise DuplicatePolicy(
                    f"Policy rule {rule.name!r} registered twice with different defaults",
                    rule=rule.name,
                )
            added[rule.name] = rule
        # Parse every rule before keeping any, so a bad default changes nothing.
        checks = {name: parse(rule.check_str, name) for name, rule in added.items()}
        self._defaults.update(added)
        self._default_checks.update(checks)
        self._rebuild()

    def authorize(
        self,
        rule_name: str,
        credentials: RequestContext | Mapping[str, Any],
        target: Mapping[str, Any] | None = None,
    ) -> bool:
        """Whether ``credentials`` pass rule ``rule_name`` for ``target``.

        Raises ``PolicyNotRegistered`` if no API registered ``rule_name``.
        """
        if self._policy_file is not None:
            self._maybe_reload()
        if rule_name not in self._defaults:
            raise PolicyNotRegistered(f"Policy rule {rule_name!r} is not registered", rule=rule_name)
        table = self._table
        return table[rule_name].evaluate(
            credentials_of(credentials), target if target is not None else {}, table, (rule_name,)
        )

    def enforce(
        self,
        rule_name: str,
        credentials: RequestContext | Mapping[str, Any],
        target: Mapping[str, Any] | None = None,
    ) -> None:
        """Raise ``Forbidden`` unless ``credentials`` pass ``rule_name``."""
        if not self.authorize(rule_name, credentials, target):
            raise Forbidden(f"Policy doesn't allow {rule_name} to be performed.", rule=rule_name)

    def check_str(self, rule_name: str) -> str | None:
        """The check string in force for ``rule_name``: the policy file's if
        it overrides the rule, else the default; None for an unknown name."""
        if rule_name in self._file_rules:
            return self._file_rules[rule_name]
        rule = self._defaults.get(rule_name)
        return None if rule is None else rule.check_str

    def reload(self) -> None:
        """Re-read the policy file now; raises ``Invalid`` if it does not parse
        (and keeps the rules in force before)."""
        if self._policy_file is None:
            return
        signature = self._signature()
        rules = self._read_file() if signature is not None else {}
        # Parse every rule before keeping any, so a bad file changes nothing.
        checks = {name: self._parse_file_rule(name, check_str) for name, check_str in rules.items()}
        self._file_rules, self._file_checks = rules, checks
        self._file_signature = signature
        self._next_stat = self._clock() + RELOAD_INTERVAL
        self._rebuild()
        self._warn_dangling_references()

    def _maybe_reload(self) -> None:
        now = self._clock()
        if now < self._next_stat:
            return
        self._next_stat = now + RELOAD_INTERVAL
        signature = self._signature()
        if signature == self._file_signature:
            return
        if signature is None:
            LOG.warning("Policy file %s is gone; using the default rules", self._policy_file)
        try:
            self.reload()
        except Invalid:
            # Deny-all or a 400 for every request would be worse than the
            # last good rules; try again once the file changes again.
            self._file_signature = signature
            LOG.exception("Keeping the previous policy rules")
        else:
            LOG.info("Reloaded policy file %s", self._policy_file)

    def _signature(self) -> tuple[int, int, int] | None:
        assert self._policy_file is not None
        try:
            st = os.stat(self._policy_file)
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def _read_file(self) -> dict[str, str]:
        path = self._policy_file
        try:
            data = yaml.safe_load(path.read_text()) if path is not None else None
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise Invalid(f"Policy file {path} cannot be read: {exc}", path=str(path)) from None
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise Invalid(f"Policy file {path} must map rule names to check strings", path=str(path))
        for name, check_str in data.items():
            if not isinstance(name, str) or not isinstance(check_str, str):
                raise Invalid(
                    f"Policy file {path}: rule {name!r} must be a string mapped to a check string"
                    f' (use "" or "@" to allow everyone), not {check_str!r}',
                    path=str(path),
                )
        return data

    def _parse_file_rule(self, name: str, check_str: str) -> Check:
        try:
            return parse(check_str, name)
        except Invalid as exc:
            path = str(self._policy_file)
            raise Invalid(f"Policy file {path}: {exc.message}", path=path, **exc.details) from None

    def _rebuild(self) -> None:
        # A new dict swapped in whole: an evaluation in flight keeps the old one.
        self._table = {**self._default_checks, **self._file_checks}

    def _warn_dangling_references(self) -> None:
        for name, check in self._file_checks.items():
            for ref in check.references():
                if ref not in self._table:
                    LOG.warning("Policy rule %r refers to unknown rule %r, which always fails", name, ref)

    def generate_sample(self) -> str:
        """A policy YAML file listing every default rule, commented out, each
        with its description and the operations it guards."""
        lines = [
            "# Loom policy file. Uncomment a rule to override its default;",
            "# rules not listed keep the defaults shown here.",
        ]
        for rule in self._defaults.values():
            lines.append("")
            for text in (rule.description or "").strip().splitlines():
                lines.append(f"# {text}".rstrip())
            for method, path in rule.operations:
                lines.append(f"# {method} {path}")
            # JSON strings are valid YAML double-quoted scalars.
            lines.append(f"#{json.dumps(rule.name)}: {json.dumps(rule.check_str)}")
        return "\n".join(lines) + "\n"
