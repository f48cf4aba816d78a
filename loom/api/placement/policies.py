"""Default policy rules of the placement API: admin only, as Placement's
own defaults are for every operation."""

from __future__ import annotations

from loom.policy.enforcer import ADMIN, Rule

RP = "/resource_providers/{uuid}"


def _rule(name: str, description: str, method: str, path: str) -> Rule:
    return Rule(f"placement:{name}", ADMIN, description, ((method, "/placement" + path),))


RULES = [
    _rule("resource_providers:list", "List resource providers.", "GET", "/resource_providers"),
    _rule("resource_providers:create", "Create a resource provider.", "POST", "/resource_providers"),
    _rule("resource_providers:show", "Show a resource provider.", "GET", RP),
    _rule("resource_providers:update", "Update a resource provider.", "PUT", RP),
    _rule("resource_providers:delete", "Delete a resource provider.", "DELETE", RP),
    _rule("resource_providers:inventories:list", "List a provider's inventories.", "GET", RP + "/inventories"),
    _rule("resource_providers:inventories:create", "Add one inventory.", "POST", RP + "/inventories"),
    _rule("resource_providers:inventories:show", "Show one inventory.", "GET",
          RP + "/inventories/{resource_class}"),
    _rule("resource_providers:inventories:update", "Replace inventories.", "PUT", RP + "/inventories"),
    _rule("resource_providers:inventories:delete", "Delete inventories.", "DELETE", RP + "/inventories"),
    _rule("resource_providers:aggregates:list", "List a provider's aggregates.", "GET", RP + "/aggregates"),
    _rule("resource_providers:aggregates:update", "Replace a provider's aggregates.", "PUT", RP + "/aggregates"),
    _rule("resource_providers:usages", "Show a provider's usages.", "GET", RP + "/usages"),
    _rule("usages", "Show usages of a project (and user).", "GET", "/usages"),
    _rule("resource_providers:traits:list", "List a provider's traits.", "GET", RP + "/traits"),
    _rule("resource_providers:traits:update", "Replace a provider's traits.", "PUT", RP + "/traits"),
    _rule("resource_providers:traits:delete", "Remove a provider's traits.", "DELETE", RP + "/traits"),
    _rule("traits:list", "List traits.", "GET", "/traits"),
    _rule("traits:show", "Show whether a trait exists.", "GET", "/traits/{name}"),
    _rule("traits:update", "Create a custom trait.", "PUT", "/traits/{name}"),
    _rule("traits:delete", "Delete a custom trait.", "DELETE", "/traits/{name}"),
    _rule("resource_classes:list", "List resource classes.", "GET", "/resource_classes"),
    _rule("resource_classes:create", "Create a custom resource class.", "POST", "/resource_classes"),
    _rule("resource_classes:show", "Show a resource class.", "GET", "/resource_classes/{name}"),
    _rule("resource_classes:update", "Create or rename a custom resource class.", "PUT",
          "/resource_classes/{name}"),
    _rule("resource_classes:delete", "Delete a custom resource class.", "DELETE", "/resource_classes/{name}"),
    _rule("allocations:list", "List a consumer's allocations.", "GET", "/allocations/{consumer_uuid}"),
    _rule("allocations:manage", "Write allocations of several consumers.", "POST", "/allocations"),
    _rule("allocations:update", "Replace a consumer's allocations.", "PUT", "/allocations/{consumer_uuid}"),
    _rule("allocations:delete", "Delete a consumer's allocations.", "DELETE", "/allocations/{consumer_uuid}"),
    _rule("resource_providers:allocations:list", "List allocations against a provider.", "GET",
          RP + "/allocations"),
    _rule("allocation_candidates:list", "List allocation candidates.", "GET", "/allocation_candidates"),
    _rule("reshaper:reshape", "Move inventories and allocations atomically.", "POST", "/reshaper"),
]
