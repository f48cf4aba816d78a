"""The placement API's route table."""

from __future__ import annotations

from loom.api.http import Endpoint as E
from loom.api.placement import (
    aggregates,
    allocation_candidates,
    allocations,
    inventories,
    reshaper,
    resource_classes,
    resource_providers,
    root,
    traits,
    usages,
)

RP = "/resource_providers/{uuid}"

ENDPOINTS = [
    E("GET", "/", root.versions, auth=False),
    E("GET", "/resource_providers", resource_providers.list_),
    E("POST", "/resource_providers", resource_providers.create),
    E("GET", RP, resource_providers.show),
    E("PUT", RP, resource_providers.update),
    E("DELETE", RP, resource_providers.delete),
    E("GET", RP + "/inventories", inventories.list_),
    E("POST", RP + "/inventories", inventories.create),
    E("PUT", RP + "/inventories", inventories.replace),
    E("DELETE", RP + "/inventories", inventories.delete_all),
    E("GET", RP + "/inventories/{resource_class}", inventories.show),
    E("PUT", RP + "/inventories/{resource_class}", inventories.update_one),
    E("DELETE", RP + "/inventories/{resource_class}", inventories.delete_one),
    E("GET", RP + "/aggregates", aggregates.show),
    E("PUT", RP + "/aggregates", aggregates.update),
    E("GET", RP + "/usages", usages.for_provider),
    E("GET", RP + "/allocations", allocations.for_provider),
    E("GET", RP + "/traits", traits.of_provider),
    E("PUT", RP + "/traits", traits.set_for_provider),
    E("DELETE", RP + "/traits", traits.delete_for_provider),
    E("GET", "/usages", usages.for_project),
    E("GET", "/traits", traits.list_),
    E("GET", "/traits/{name}", traits.show),
    E("PUT", "/traits/{name}", traits.put),
    E("DELETE", "/traits/{name}", traits.delete),
    E("GET", "/resource_classes", resource_classes.list_),
    E("POST", "/resource_classes", resource_classes.create),
    E("GET", "/resource_classes/{name}", resource_classes.show),
    E("PUT", "/resource_classes/{name}", resource_classes.put),
    E("DELETE", "/resource_classes/{name}", resource_classes.delete),
    E("POST", "/allocations", allocations.post),
    E("GET", "/allocations/{consumer_uuid}", allocations.show),
    E("PUT", "/allocations/{consumer_uuid}", allocations.update),
    E("DELETE", "/allocations/{consumer_uuid}", allocations.delete),
    E("GET", "/allocation_candidates", allocation_candidates.list_),
    E("POST", "/reshaper", reshaper.reshape),
]
