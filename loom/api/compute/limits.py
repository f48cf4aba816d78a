"""``/limits``: the project's absolute limits and their usage, by Nova's
names (there are no rate limits: ``rate`` is always empty)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.responses import Response

from loom.api.compute.base import enforce
from loom.api.compute.quota_sets import strict_query
from loom.api.http import JSON, Call, Endpoint
from loom.objects import quotas
from loom.policy.enforcer import ADMIN, Rule

LIMIT_NAMES = {
    "ram": ("maxTotalRAMSize",),
    "instances": ("maxTotalInstances",),
    "cores": ("maxTotalCores",),
    "key_pairs": ("maxTotalKeypairs",),
    "floating_ips": ("maxTotalFloatingIps",),
    "metadata_items": ("maxServerMeta", "maxImageMeta"),
    "injected_files": ("maxPersonality",),
    "injected_file_content_bytes": ("maxPersonalitySize",),
    "security_groups": ("maxSecurityGroups",),
    "security_group_rules": ("maxSecurityGroupRules",),
    "server_groups": ("maxServerGroups",),
    "server_group_members": ("maxServerGroupMembers",),
}
USED_NAMES = {
    "totalRAMUsed": "ram",
    "totalCoresUsed": "cores",
    "totalInstancesUsed": "instances",
    "totalFloatingIpsUsed": "floating_ips",
    "totalSecurityGroupsUsed": "security_groups",
    "totalServerGroupsUsed": "server_groups",
}


def absolute(limits: Mapping[str, int], used: Mapping[str, int], version: quotas.Version) -> dict[str, int]:
    """Nova's absolute limits at a microversion: 2.36 drops the network
    ones, 2.39 maxImageMeta, 2.57 the personality ones."""
    hidden = quotas.hidden(version)
    out: dict[str, int] = {}
    for resource, names in LIMIT_NAMES.items():
        if resource in hidden:
            continue
        for name in names:
            if name != "maxImageMeta" or not version.at_least("2.39"):
                out[name] = limits[resource]
    out.update({name: used[r] for name, r in USED_NAMES.items() if r not in hidden})
    return out


async def index(call: Call) -> Response:
    strict_query(call, ("tenant_id",))
    enforce(call, "os_compute_api:limits", {})
    project_id = call.ctx.project_id or ""
    if "tenant_id" in call.request.query_params:
        project_id = call.query["tenant_id"]
        enforce(call, "os_compute_api:limits:other_project:index", {"project_id": project_id})
    async with call.deps.db.session() as session:
        limits = await quotas.limits(session, call.deps.settings.quota, project_id)
        used = await quotas.usage(session, project_id)
    body: dict[str, Any] = {"limits": {"rate": [], "absolute": absolute(limits, used, call.version)}}
    return JSON(body)


ENDPOINTS: list[Endpoint] = [Endpoint("GET", "/limits", index)]
RULES: list[Rule] = [
    Rule("os_compute_api:limits", "", "Show the rate and absolute limits of one's project.", (("GET", "/limits"),)),
    Rule(
        "os_compute_api:limits:other_project:index",
        ADMIN,
        "Show another project's limits (tenant_id).",
        (("GET", "/limits"),),
    ),
]
