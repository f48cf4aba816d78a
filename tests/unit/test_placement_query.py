"""Parsing placement query strings and matching traits and aggregates."""

from __future__ import annotations

import uuid

import pytest

from loom.api.placement import query
from loom.api.placement.microversion import NotAcceptable, parse
from loom.placement.errors import BadQueryValue, MissingQueryValue, PlacementInvalid
from loom.placement.request import AggregateFilter, TraitFilter

A, B, C = (str(uuid.uuid4()) for _ in range(3))
LATEST = (1, 39)


def test_resources() -> None:
    assert query.parse_resources("VCPU:2,MEMORY_MB:1024") == {"VCPU": 2, "MEMORY_MB": 1024}
    for bad in ("VCPU", "VCPU:0", "VCPU:x", "vcpu:1", "VCPU:1,VCPU:2", ""):
        with pytest.raises(BadQueryValue):
            query.parse_resources(bad)


def test_required_forbidden_and_any_of() -> None:
    f = query.parse_required(["A,!B", "in:C,D"], forbidden_ok=True, any_ok=True)
    assert f.required == {"A"} and f.forbidden == {"B"} and frozenset({"C", "D"}) in f.any_of
    assert f.matches({"A", "C"}) and not f.matches({"A"}) and not f.matches({"A", "C", "B"})
    # Before 1.22 "!" is part of a (then unknown) name; before 1.39 only the last value counts.
    assert query.parse_required(["!B"], forbidden_ok=False, any_ok=False).required == {"!B"}
    assert query.parse_required(["A", "B"], forbidden_ok=True, any_ok=False).required == {"B"}
    with pytest.raises(BadQueryValue):
        query.parse_required(["A,!A"], forbidden_ok=True, any_ok=True)
    with pytest.raises(BadQueryValue):
        query.parse_required(["in:A,!B"], forbidden_ok=True, any_ok=True)
    with pytest.raises(BadQueryValue):
        query.parse_required(["A,"], forbidden_ok=True, any_ok=True)


def test_member_of() -> None:
    f = query.parse_member_of([f"in:{A},{B}", C, f"!in:{B}"], multiple_ok=True, forbidden_ok=True)
    assert f == AggregateFilter.of([[A, B], [C]], [B])
    assert f.matches({A, C})
    assert not f.matches({A, B, C}) and not f.matches({A})
    with pytest.raises(BadQueryValue):
        query.parse_member_of(["not-a-uuid"], multiple_ok=True, forbidden_ok=True)
    with pytest.raises(BadQueryValue):
        query.parse_member_of([f"in:{A},!{B}"], multiple_ok=True, forbidden_ok=True)
    with pytest.raises(BadQueryValue):
        query.parse_member_of([f"{A},{B}"], multiple_ok=True, forbidden_ok=True)


def test_candidate_request_groups() -> None:
    params = [("resources", "VCPU:1"), ("resources1", "VGPU:1"), ("required1", "CUSTOM_X"),
              ("resources_NET", "SRIOV_NET_VF:1"), ("group_policy", "isolate"), ("limit", "5"),
              ("root_required", "!CUSTOM_Z"), ("same_subtree", "1,_NET"), ("in_tree", A)]
    req = query.parse_candidates(params, LATEST)
    assert set(req.groups) == {"", "1", "_NET"} and req.group_policy == "isolate" and req.limit == 5
    assert req.groups["1"].traits == TraitFilter.of(["CUSTOM_X"])
    assert req.groups[""].in_tree == A and req.root_required.forbidden == {"CUSTOM_Z"}
    assert req.same_subtree == (("1", "_NET"),)
    assert req.resource_classes() == {"VCPU", "VGPU", "SRIOV_NET_VF"}


@pytest.mark.parametrize(("params", "version", "error"), [
    ([("resources1", "VCPU:1"), ("resources2", "VCPU:1")], LATEST, MissingQueryValue),
    ([("resources_X", "VCPU:1")], (1, 32), PlacementInvalid),
    ([("resources1", "VCPU:1")], (1, 24), PlacementInvalid),
    ([("required", "CUSTOM_X")], LATEST, BadQueryValue),
    ([("resources", "VCPU:1"), ("required1", "CUSTOM_X")], (1, 35), BadQueryValue),
    ([("resources", "VCPU:1"), ("limit", "0")], LATEST, BadQueryValue),
    ([("resources", "VCPU:1"), ("group_policy", "odd")], LATEST, BadQueryValue),
    ([("resources", "VCPU:1"), ("same_subtree", "9")], LATEST, BadQueryValue),
    ([("resources", "VCPU:1"), ("member_of", A)], (1, 20), PlacementInvalid),
])
def test_bad_candidate_requests(params: list[tuple[str, str]], version: tuple[int, int],
                                error: type[Exception]) -> None:
    with pytest.raises(error):
        query.parse_candidates(params, version)


def test_microversion_header() -> None:
    assert parse(None) == (1, 0)
    assert parse("placement 1.28") == (1, 28)
    assert parse("compute 2.1, placement latest") == (1, 39)
    assert parse("compute 2.1") == (1, 0)
    with pytest.raises(NotAcceptable):
        parse("placement 1.40")
    with pytest.raises(PlacementInvalid):
        parse("placement one")
