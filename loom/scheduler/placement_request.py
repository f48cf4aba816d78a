"""From a request spec to the question for placement, as Nova asks it:
the flavor's VCPU, MEMORY_MB and DISK_GB, changed by the flavor's extra
specs ``resources[N]:CLASS=amount`` (0 removes a class) and
``trait[N]:NAME=required|forbidden``, plus the image's
``trait:NAME=required`` properties. A numbered (or ``_NAME``) suffix
makes a separate request group, satisfied by one provider;
``group_policy`` (none, isolate) says whether those groups may share one.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

from loom.errors import Invalid
from loom.placement import CandidateRequest, RequestGroup, TraitFilter
from loom.placement.request import UNNUMBERED
from loom.scheduler.filters.image_properties import image_properties
from loom.scheduler.request import RequestSpec

LOG = logging.getLogger(__name__)

_SUFFIX = r"(?P<suffix>[1-9][0-9]*|_[a-zA-Z0-9_-]{1,64})?"
RESOURCES_KEY = re.compile(rf"^resources{_SUFFIX}:(?P<name>.+)$")
TRAIT_KEY = re.compile(rf"^trait{_SUFFIX}:(?P<name>.+)$")


@dataclass
class _Group:
    resources: dict[str, int] = field(default_factory=dict)
    required: set[str] = field(default_factory=set)
    forbidden: set[str] = field(default_factory=set)


def flavor_resources(spec: RequestSpec) -> dict[str, int]:
    flavor = spec.flavor
    # A server booted from a volume keeps its root disk off the host.
    disk = flavor.disk_gb - (flavor.root_gb if spec.is_bfv else 0)
    return {"VCPU": flavor.vcpus, "MEMORY_MB": flavor.memory_mb, "DISK_GB": disk}


def candidate_request(spec: RequestSpec, *, limit: int | None = None) -> CandidateRequest:
    groups: dict[str, _Group] = {UNNUMBERED: _Group(flavor_resources(spec))}
    for key, value in sorted(spec.flavor.extra_specs.items()):
        if m := RESOURCES_KEY.match(key):
            groups.setdefault(m["suffix"] or UNNUMBERED, _Group()).resources[m["name"]] = _amount(key, value)
        elif m := TRAIT_KEY.match(key):
            _add_trait(groups.setdefault(m["suffix"] or UNNUMBERED, _Group()), key, m["name"], value)
    for key, value in sorted(image_properties(spec.image).items()):
        # Images may only require traits (Nova's rule).
        if (m := TRAIT_KEY.match(key)) and not m["suffix"] and value == "required":
            groups[UNNUMBERED].required.add(m["name"])
    policy = str(spec.flavor.extra_specs.get("group_policy") or "none")
    if policy not in ("none", "isolate"):
        raise Invalid(f"Invalid group_policy {policy!r} in the flavor's extra specs: use none or isolate")
    return CandidateRequest(
        {suffix: RequestGroup({rc: n for rc, n in g.resources.items() if n > 0},
                              TraitFilter.of(sorted(g.required), sorted(g.forbidden)))
         for suffix, g in groups.items()},
        group_policy=policy, limit=limit)


def _amount(key: str, value: object) -> int:
    try:
        amount = int(str(value))
    except ValueError:
        amount = -1
    if amount < 0:
        raise Invalid(f"Invalid amount {value!r} for the flavor's extra spec {key}: a whole number >= 0 is needed")
    return amount


def _add_trait(group: _Group, key: str, name: str, value: object) -> None:
    if value == "required":
        group.required.add(name)
    elif value == "forbidden":
        group.forbidden.add(name)
    else:
        LOG.warning("ignoring the flavor's extra spec %s=%s: a trait is 'required' or 'forbidden'", key, value)


def describe(request: CandidateRequest) -> str:
    """``VCPU=2 MEMORY_MB=2048 DISK_GB=20 with trait HW_CPU_X86_AVX`` and so on, per group."""
    parts = []
    for suffix, group in request.groups.items():
        text = " ".join(f"{rc}={n}" for rc, n in group.resources.items())
        if group.traits.required:
            text += f" with {', '.join(sorted(group.traits.required))}"
        if group.traits.forbidden:
            text += f" without {', '.join(sorted(group.traits.forbidden))}"
        text = text.strip()
        if text:
            parts.append(f"(group {suffix}) {text}" if suffix else text)
    return "; ".join(parts)
