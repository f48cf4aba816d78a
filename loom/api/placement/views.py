"""How placement resources look in the API, per microversion."""

from __future__ import annotations

from typing import Any

from loom.api.http import Call
from loom.api.placement.base import PREFIX, at_least, rp_path
from loom.db.models import ProviderInventory
from loom.placement.capacity import FIELDS
from loom.placement.providers import ProviderInfo


def provider(call: Call, rp: ProviderInfo) -> dict[str, Any]:
    path = rp_path(rp.uuid)
    links = [{"rel": "self", "href": path}, {"rel": "inventories", "href": path + "/inventories"},
             {"rel": "usages", "href": path + "/usages"}]
    if at_least(call, 1):
        links.append({"rel": "aggregates", "href": path + "/aggregates"})
    if at_least(call, 6):
        links.append({"rel": "traits", "href": path + "/traits"})
    if at_least(call, 11):
        links.append({"rel": "allocations", "href": path + "/allocations"})
    out: dict[str, Any] = {"uuid": rp.uuid, "name": rp.name, "generation": rp.generation, "links": links}
    if at_least(call, 14):
        out["parent_provider_uuid"] = rp.parent_provider_uuid
        out["root_provider_uuid"] = rp.root_provider_uuid
    return out


def inventory(row: ProviderInventory) -> dict[str, Any]:
    return {name: getattr(row, name) for name in FIELDS}


def resource_class(name: str) -> dict[str, Any]:
    return {"name": name, "links": [{"rel": "self", "href": f"{PREFIX}/resource_classes/{name}"}]}
