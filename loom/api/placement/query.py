"""Query strings of the placement API into ``loom.placement.request``
values: ``resources=VCPU:2,MEMORY_MB:1024``, ``required=A,!B`` and
``required=in:A,B``, ``member_of=in:agg1,agg2`` and ``member_of=!agg3``,
granular groups (``resources1``, ``required_NET``...). Pure functions."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Sequence

from loom.placement.errors import BadQueryValue, MissingQueryValue, PlacementInvalid
from loom.placement.request import (
    UNNUMBERED,
    AggregateFilter,
    CandidateRequest,
    RequestGroup,
    TraitFilter,
)

Version = tuple[int, int]
Params = Sequence[tuple[str, str]]
_NUMBERED = re.compile(r"^[1-9][0-9]*$")
_NAMED = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_GROUP_KEYS = ("resources", "required", "member_of", "in_tree")
_RC = re.compile(r"^[A-Z0-9_]+$")


def check_keys(params: Params, allowed: Iterable[str]) -> None:
    known = set(allowed)
    for key, _ in params:
        if key not in known:
            raise PlacementInvalid(f"Invalid query string parameters: Additional properties are not allowed "
                                   f"('{key}' was unexpected)")


def one(params: Params, key: str) -> str | None:
    """The value of a parameter that may be given once (the last wins)."""
    values = [v for k, v in params if k == key]
    return values[-1] if values else None


def parse_resources(value: str, key: str = "resources") -> dict[str, int]:
    out: dict[str, int] = {}
    for part in value.split(","):
        rc, sep, amount = part.partition(":")
        rc = rc.strip()
        if not sep or not rc or not _RC.match(rc):
            raise BadQueryValue(f"Badly formed {key} parameter. Expected {key} query string parameter in form: "
                                f"?{key}=VCPU:2,MEMORY_MB:1024. Got: {value}.")
        try:
            n = int(amount)
        except ValueError:
            raise BadQueryValue(f"Requested resource {rc} expected positive integer amount. Got: {amount}.") from None
        if n < 1:
            raise BadQueryValue(f"Requested resource {rc} requires amount >= 1. Got: {n}.")
        if rc in out:
            raise BadQueryValue(f"Badly formed {key} parameter. The resource class {rc} was given more than once.")
        out[rc] = n
    return out


def parse_required(values: Sequence[str], *, forbidden_ok: bool, any_ok: bool, key: str = "required"
                   ) -> TraitFilter:
    """``A,!B`` (forbidden from 1.22) and ``in:A,B`` (any of, from 1.39);
    several values (from 1.39) all hold."""
    required: list[str] = []
    forbidden: list[str] = []
    any_of: list[list[str]] = []
    for value in (values if any_ok else values[-1:]):
        if any_ok and value.startswith("in:"):
            names = value[3:].split(",")
            if any(not n or n.startswith("!") for n in names):
                raise BadQueryValue(f"Invalid query string parameters: Expected '{key}' parameter value of the "
                                    f"form: in:HW_CPU_X86_VMX,CUSTOM_MAGIC. Got: {value}")
            any_of.append(names)
            continue
        for name in value.split(","):
            if forbidden_ok and name.startswith("!"):
                forbidden.append(name[1:])
            else:
                required.append(name)
        if any(not n for n in [*required, *forbidden]):
            raise BadQueryValue(f"Invalid query string parameters: Expected '{key}' parameter value of the form: "
                                f"HW_CPU_X86_VMX,CUSTOM_MAGIC. Got: {value}")
    both = set(required) & set(forbidden)
    if both:
        raise BadQueryValue(f"Conflicting required and forbidden traits found in the following traits keys: "
                            f"{key}: ({', '.join(sorted(both))})")
    return TraitFilter.of(required, forbidden, any_of)


def _uuids(values: list[str], key: str) -> list[str]:
    out = []
    for value in values:
        try:
            out.append(str(uuid.UUID(value)))
        except ValueError:
            raise BadQueryValue(f"Invalid query string parameters: Expected '{key}' parameter to contain valid "
                                f"UUID(s). Got: {value}") from None
    return out


def parse_member_of(values: Sequence[str], *, multiple_ok: bool, forbidden_ok: bool, key: str = "member_of"
                    ) -> AggregateFilter:
    """``agg``, ``in:agg1,agg2`` (1.3), several of them (1.24), and
    ``!agg`` / ``!in:agg1,agg2`` (1.32)."""
    any_of: list[list[str]] = []
    forbidden: list[str] = []
    for value in (values if multiple_ok else values[-1:]):
        negative = forbidden_ok and value.startswith("!")
        body = value[1:] if negative else value
        if body.startswith("in:"):
            names = body[3:].split(",")
        else:
            names = [body]
            if "," in body:
                raise BadQueryValue(f"Invalid query string parameters: Expected '{key}' parameter to start with "
                                    f"'in:' when several aggregates are given. Got: {value}")
        if any(n.startswith("!") for n in names):
            raise BadQueryValue(f"Invalid query string parameters: Forbidden aggregates are expressed with "
                                f"'!in:', not '!' inside 'in:'. Got: {value}")
        names = _uuids(names, key)
        if negative:
            forbidden.extend(names)
        else:
            any_of.append(names)
    return AggregateFilter.of(any_of, forbidden)


def _split_group_key(key: str, version: Version) -> tuple[str, str] | None:
    for base in _GROUP_KEYS:
        if key.startswith(base):
            suffix = key[len(base):]
            if suffix == "":
                return base, UNNUMBERED
            if version >= (1, 33) and _NAMED.match(suffix):
                return base, suffix
            if version >= (1, 25) and _NUMBERED.match(suffix):
                return base, suffix
    return None


def parse_candidates(params: Params, version: Version) -> CandidateRequest:
    """``GET /allocation_candidates``' query string at ``version``."""
    single = {"limit": (1, 16), "group_policy": (1, 25), "root_required": (1, 35), "same_subtree": (1, 36)}
    raw: dict[str, dict[str, list[str]]] = {}
    for key, value in params:
        if key in single and version >= single[key]:
            continue
        split = _split_group_key(key, version)
        allowed = {"resources": (1, 10), "required": (1, 17), "member_of": (1, 21), "in_tree": (1, 31)}
        if split is None or version < allowed[split[0]]:
            raise PlacementInvalid(f"Invalid query string parameters: Additional properties are not allowed "
                                   f"('{key}' was unexpected)")
        raw.setdefault(split[1], {}).setdefault(split[0], []).append(value)
    groups: dict[str, RequestGroup] = {}
    for suffix, values in raw.items():
        groups[suffix] = _group(suffix, values, version)
    same_subtree = tuple(tuple(v.split(",")) for k, v in params if k == "same_subtree" and version >= (1, 36))
    _check_groups(groups, same_subtree, version)
    numbered = [s for s, g in groups.items() if s != UNNUMBERED and g.resources]
    policy = one(params, "group_policy") if version >= (1, 25) else None
    if policy is not None and policy not in ("none", "isolate"):
        raise BadQueryValue(f"Invalid query string parameters: 'group_policy' must be one of none, isolate. "
                            f"Got: {policy}")
    if len(numbered) > 1 and policy is None:
        raise MissingQueryValue('The "group_policy" parameter is required when specifying more than one '
                                '"resources{$S}" parameter.')
    limit = None
    if version >= (1, 16) and one(params, "limit") is not None:
        text = one(params, "limit") or ""
        if not text.isdigit() or int(text) < 1:
            raise BadQueryValue(f"Invalid query string parameters: 'limit' must be a positive integer. Got: {text}")
        limit = int(text)
    root_values = [v for k, v in params if k == "root_required"] if version >= (1, 35) else []
    root_required = parse_required(root_values, forbidden_ok=True, any_ok=False, key="root_required") \
        if root_values else TraitFilter()
    return CandidateRequest(groups, policy or "none", limit, root_required, same_subtree)


def _group(suffix: str, values: dict[str, list[str]], version: Version) -> RequestGroup:
    resources: dict[str, int] = {}
    for value in values.get("resources", []):
        if resources:
            raise BadQueryValue(f"Query parameter 'resources{suffix}' is given more than once.")
        resources = parse_resources(value, f"resources{suffix}")
    traits = parse_required(values.get("required", []), forbidden_ok=version >= (1, 22),
                            any_ok=version >= (1, 39), key=f"required{suffix}") \
        if values.get("required") else TraitFilter()
    member_of = parse_member_of(values.get("member_of", []), multiple_ok=True, forbidden_ok=version >= (1, 32),
                                key=f"member_of{suffix}") if values.get("member_of") else AggregateFilter()
    in_tree = None
    if values.get("in_tree"):
        in_tree = _uuids(values["in_tree"][-1:], f"in_tree{suffix}")[0]
    return RequestGroup(resources, traits, member_of, in_tree)


def _check_groups(groups: dict[str, RequestGroup], same_subtree: tuple[tuple[str, ...], ...],
                  version: Version) -> None:
    if not any(g.resources for g in groups.values()):
        if version < (1, 25):
            raise BadQueryValue("Invalid query string parameters: 'resources' is a required property")
        raise BadQueryValue("At least one request group (`resources` or `resources{$S}`) is required.")
    in_subtree = {s for group in same_subtree for s in group}
    for suffix in in_subtree:
        if suffix not in groups or suffix == UNNUMBERED:
            raise BadQueryValue(f"Real suffixes should be specified in `same_subtree`: {suffix!r} not found in "
                                "request groups.")
    for suffix, g in groups.items():
        if suffix != UNNUMBERED and not g.resources:
            if version < (1, 36):
                raise BadQueryValue(f"All request groups must specify resources: resources{suffix} is missing.")
            if suffix not in in_subtree:
                raise BadQueryValue("Resourceless suffixed group request should be specified in `same_subtree` "
                                    f"query param: {suffix}")
