"""The pure parts of server groups: the late policy check's rule, and how a
create body is read at each microversion."""

from __future__ import annotations

from typing import Any

import pytest

from loom.api.compute.server_groups import group_hint, parse_create
from loom.errors import Invalid
from loom.objects.server_groups import violation


@pytest.mark.parametrize(("policy", "rules", "others", "host", "refused"), [
    ("anti-affinity", {}, [], "h1", False),
    ("anti-affinity", {}, ["h2", "h3"], "h1", False),
    ("anti-affinity", {}, ["h1"], "h1", True),
    ("anti-affinity", {"max_server_per_host": 2}, ["h1"], "h1", False),
    ("anti-affinity", {"max_server_per_host": 2}, ["h1", "h1"], "h1", True),
    ("affinity", {}, [], "h1", False),
    ("affinity", {}, ["h1", "h1"], "h1", False),
    ("affinity", {}, ["h2"], "h1", True),
    # The soft policies only weigh hosts: nothing is refused late.
    ("soft-anti-affinity", {}, ["h1"], "h1", False),
    ("soft-affinity", {}, ["h2"], "h1", False),
])
def test_violation(policy: str, rules: dict[str, Any], others: list[str], host: str, refused: bool) -> None:
    assert (violation(policy, rules, others, host) is not None) is refused


def test_violation_says_why() -> None:
    assert violation("anti-affinity", {}, ["h1"], "h1") == "host h1 already has 1 member(s) of the group (at most 1)"
    assert violation("affinity", {}, ["h2", "h3"], "h1") == "the group's other members are on h2, h3, not h1"


def test_policies_before_2_64() -> None:
    body = {"server_group": {"name": "g", "policies": ["affinity"]}}
    assert parse_create(body, soft=False, policy_object=False) == ("g", "affinity", {})
    soft = {"server_group": {"name": "g", "policies": ["soft-anti-affinity"]}}
    assert parse_create(soft, soft=True, policy_object=False) == ("g", "soft-anti-affinity", {})
    with pytest.raises(Invalid, match="is not one of"):
        parse_create(soft, soft=False, policy_object=False)
    with pytest.raises(Invalid, match=r"\[\] should be non-empty"):
        parse_create({"server_group": {"name": "g", "policies": []}}, soft=True, policy_object=False)


def test_policy_and_rules_from_2_64() -> None:
    body = {"server_group": {"name": "g", "policy": "anti-affinity", "rules": {"max_server_per_host": "3"}}}
    # The CLI sends the rule as a string; it is kept as the integer Nova shows.
    assert parse_create(body, soft=True, policy_object=True) == ("g", "anti-affinity", {"max_server_per_host": 3})
    with pytest.raises(Invalid, match="'policies' was unexpected"):
        parse_create({"server_group": {"name": "g", "policies": ["affinity"]}}, soft=True, policy_object=True)
    with pytest.raises(Invalid, match="'colour' was unexpected"):
        parse_create({"server_group": {"name": "g", "policy": "anti-affinity", "rules": {"colour": 1}}},
                     soft=True, policy_object=True)
    with pytest.raises(Invalid, match="does not match"):
        parse_create({"server_group": {"name": "g", "policy": "anti-affinity",
                                       "rules": {"max_server_per_host": "two"}}}, soft=True, policy_object=True)


@pytest.mark.parametrize("body", [None, [], {}, {"server_group": "g"}, {"server_group": {"policy": "affinity"}},
                                  {"server_group": {"name": "x" * 256, "policy": "affinity"}},
                                  {"server_group": {"name": "g ", "policy": "affinity"}},
                                  {"server_group": {"name": "g", "policy": "affinity"}, "extra": 1}])
def test_malformed_bodies(body: Any) -> None:
    with pytest.raises(Invalid):
        parse_create(body, soft=True, policy_object=True)


def test_group_hint() -> None:
    assert group_hint({}) is None
    uuid = "9f2a5e4c-3e0b-4a55-9d2e-5b1f1f0c2a11"
    assert group_hint({"group": uuid}) == uuid
    with pytest.raises(Invalid, match="'nope' is not a 'uuid'"):
        group_hint({"group": "nope"})
    with pytest.raises(Invalid, match="is not of type 'string'"):
        group_hint({"group": [uuid]})
