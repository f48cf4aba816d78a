"""The compute API's route table, served under ``/v2.1`` and ``/v2``."""

from __future__ import annotations

from loom.api.compute import (
    aggregates,
    availability_zones,
    flavors,
    hypervisors,
    instance_actions,
    instance_usage_audit_log,
    ips,
    keypairs,
    limits,
    migrations,
    quota_classes,
    quota_sets,
    remote_consoles,
    server_actions,
    server_external_events,
    server_groups,
    server_list,
    server_metadata,
    server_migrations,
    server_tags,
    servers,
    services,
    simple_tenant_usage,
    versions,
)
from loom.api.http import Endpoint as E

RESOURCES = [
    E("GET", "/flavors", flavors.list_),
    E("POST", "/flavors", flavors.create),
    E("GET", "/flavors/detail", flavors.detail),
    E("GET", "/flavors/{flavor_id}", flavors.show),
    E("PUT", "/flavors/{flavor_id}", flavors.update),
    E("DELETE", "/flavors/{flavor_id}", flavors.delete),
    E("POST", "/flavors/{flavor_id}/action", flavors.action),
    E("GET", "/flavors/{flavor_id}/os-flavor-access", flavors.list_access),
    E("GET", "/flavors/{flavor_id}/os-extra_specs", flavors.list_extra_specs),
    E("POST", "/flavors/{flavor_id}/os-extra_specs", flavors.create_extra_specs),
    E("GET", "/flavors/{flavor_id}/os-extra_specs/{key}", flavors.show_extra_spec),
    E("PUT", "/flavors/{flavor_id}/os-extra_specs/{key}", flavors.update_extra_spec),
    E("DELETE", "/flavors/{flavor_id}/os-extra_specs/{key}", flavors.delete_extra_spec),
    E("GET", "/servers", server_list.list_),
    E("POST", "/servers", servers.create),
    E("GET", "/servers/detail", server_list.detail),
    E("GET", "/servers/{server_id}", servers.show),
    E("PUT", "/servers/{server_id}", servers.update),
    E("DELETE", "/servers/{server_id}", servers.delete),
    E("GET", "/servers/{server_id}/os-instance-actions", instance_actions.list_),
    E("GET", "/servers/{server_id}/os-instance-actions/{request_id}", instance_actions.show),
    E("GET", "/os-keypairs", keypairs.list_),
    E("POST", "/os-keypairs", keypairs.create),
    E("GET", "/os-keypairs/{name}", keypairs.show),
    E("DELETE", "/os-keypairs/{name}", keypairs.delete),
]
# Resources whose module declares its own endpoints and policy rules.
MODULES = (quota_sets, quota_classes, limits, server_groups, services, hypervisors, availability_zones,
           server_metadata, server_tags, ips, aggregates, server_actions,
           simple_tenant_usage, server_external_events, instance_usage_audit_log, migrations, server_migrations,
           remote_consoles)
RESOURCES += [ep for module in MODULES for ep in module.ENDPOINTS]


def _under(prefix: str) -> list[E]:
    out = [E("GET", prefix, versions.show, auth=False), E("GET", prefix + "/", versions.show, auth=False)]
    out += [E(ep.method, prefix + ep.path, ep.handler, ep.auth) for ep in RESOURCES]
    # Clients may name the project in the path (/v2.1/{project_id}/servers);
    # those routes come last so a resource's own paths match first.
    out += [E(ep.method, prefix + "/{project_id}" + ep.path, ep.handler, ep.auth) for ep in RESOURCES]
    return out


ENDPOINTS = [E("GET", "/", versions.root, auth=False), *_under("/v2.1"), *_under("/v2")]
