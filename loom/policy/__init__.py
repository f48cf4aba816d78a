"""Loom's one policy engine: oslo.policy check strings, defaults registered
by each API, overridden by the operator's policy YAML file."""

from loom.policy.enforcer import (
    ADMIN,
    ADMIN_OR_PROJECT_MANAGER,
    ADMIN_OR_PROJECT_MEMBER,
    ADMIN_OR_PROJECT_READER,
    PROJECT_MANAGER,
    PROJECT_MEMBER,
    PROJECT_READER,
    DuplicatePolicy,
    Enforcer,
    PolicyNotRegistered,
    Rule,
    credentials_of,
)
from loom.policy.rules import Check, parse

__all__ = [
    "ADMIN",
    "ADMIN_OR_PROJECT_MANAGER",
    "ADMIN_OR_PROJECT_MEMBER",
    "ADMIN_OR_PROJECT_READER",
    "PROJECT_MANAGER",
    "PROJECT_MEMBER",
    "PROJECT_READER",
    "Check",
    "DuplicatePolicy",
    "Enforcer",
    "PolicyNotRegistered",
    "Rule",
    "credentials_of",
    "parse",
]
