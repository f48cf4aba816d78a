"""Placeholder: filled in as its resource is built."""

from __future__ import annotations

from loom.api.http import Endpoint
from loom.policy.enforcer import Rule

ENDPOINTS: list[Endpoint] = []
RULES: list[Rule] = []
