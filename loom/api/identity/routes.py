"""The identity API's route table."""

from __future__ import annotations

from loom.api.http import Endpoint as E
from loom.api.identity import (
    app_creds,
    catalog,
    domains,
    grants,
    groups,
    projects,
    roles,
    tokens,
    users,
    versions,
)

V3 = "/v3"
ACTORS = ("users/{user_id}", "groups/{group_id}")


def _grant_routes() -> list[E]:
    out = []
    for target in ("projects/{project_id}", "domains/{domain_id}", "system"):
        for actor in ACTORS:
            base = f"{V3}/{target}/{actor}/roles"
            out.append(E("GET", base, grants.list_roles))
            for method in ("PUT", "HEAD", "GET", "DELETE"):
                out.append(E(method, base + "/{role_id}", grants.grant))
    for target in ("projects/{project_id}", "domains/{domain_id}"):
        for actor in ACTORS:
            base = f"{V3}/OS-INHERIT/{target}/{actor}/roles"
            for method in ("PUT", "HEAD", "GET", "DELETE"):
                out.append(E(method, base + "/{role_id}/inherited_to_projects", grants.grant))
            out.append(E("GET", base + "/inherited_to_projects", grants.list_roles))
    return out


def _crud(path: str, module: object, key: str) -> list[E]:
    return [
        E("GET", f"{V3}/{path}", module.list_),  # type: ignore[attr-defined]
        E("POST", f"{V3}/{path}", module.create),  # type: ignore[attr-defined]
        E("GET", f"{V3}/{path}/{{{key}}}", module.show),  # type: ignore[attr-defined]
        E("PATCH", f"{V3}/{path}/{{{key}}}", module.update),  # type: ignore[attr-defined]
        E("DELETE", f"{V3}/{path}/{{{key}}}", module.delete),  # type: ignore[attr-defined]
    ]


ENDPOINTS: list[E] = [
    E("GET", "/", versions.root, auth=False),
    E("GET", V3, versions.v3, auth=False),
    E("GET", V3 + "/", versions.v3, auth=False),
    E("POST", V3 + "/auth/tokens", tokens.issue, auth=False),
    E("GET", V3 + "/auth/tokens", tokens.validate),
    E("HEAD", V3 + "/auth/tokens", tokens.validate),
    E("DELETE", V3 + "/auth/tokens", tokens.revoke),
    E("GET", V3 + "/auth/catalog", tokens.auth_catalog),
    E("GET", V3 + "/auth/projects", tokens.auth_projects),
    E("GET", V3 + "/auth/domains", tokens.auth_domains),
    E("GET", V3 + "/auth/system", tokens.auth_system),
    *_crud("domains", domains, "domain_id"),
    *_crud("projects", projects, "project_id"),
    *_crud("users", users, "user_id"),
    E("POST", V3 + "/users/{user_id}/password", users.change_password),
    E("GET", V3 + "/users/{user_id}/projects", users.list_projects),
    E("GET", V3 + "/users/{user_id}/groups", users.list_groups),
    *_crud("groups", groups, "group_id"),
    E("GET", V3 + "/groups/{group_id}/users", groups.list_users),
    *(E(m, V3 + "/groups/{group_id}/users/{user_id}", groups.membership)
      for m in ("PUT", "HEAD", "GET", "DELETE")),
    *_crud("roles", roles, "role_id"),
    E("GET", V3 + "/roles/{prior_role_id}/implies", roles.list_implies),
    *(E(m, V3 + "/roles/{prior_role_id}/implies/{implied_role_id}", roles.implies)
      for m in ("PUT", "HEAD", "GET", "DELETE")),
    E("GET", V3 + "/role_inferences", roles.list_inferences),
    *_grant_routes(),
    E("GET", V3 + "/role_assignments", grants.role_assignments),
    E("GET", V3 + "/regions", catalog.list_regions),
    E("POST", V3 + "/regions", catalog.create_region),
    E("GET", V3 + "/regions/{region_id}", catalog.show_region),
    E("PUT", V3 + "/regions/{region_id}", catalog.create_region),
    E("PATCH", V3 + "/regions/{region_id}", catalog.update_region),
    E("DELETE", V3 + "/regions/{region_id}", catalog.delete_region),
    E("GET", V3 + "/services", catalog.list_services),
    E("POST", V3 + "/services", catalog.create_service),
    E("GET", V3 + "/services/{service_id}", catalog.show_service),
    E("PATCH", V3 + "/services/{service_id}", catalog.update_service),
    E("DELETE", V3 + "/services/{service_id}", catalog.delete_service),
    E("GET", V3 + "/endpoints", catalog.list_endpoints),
    E("POST", V3 + "/endpoints", catalog.create_endpoint),
    E("GET", V3 + "/endpoints/{endpoint_id}", catalog.show_endpoint),
    E("PATCH", V3 + "/endpoints/{endpoint_id}", catalog.update_endpoint),
    E("DELETE", V3 + "/endpoints/{endpoint_id}", catalog.delete_endpoint),
    E("GET", V3 + "/users/{user_id}/application_credentials", app_creds.list_),
    E("POST", V3 + "/users/{user_id}/application_credentials", app_creds.create),
    E("GET", V3 + "/users/{user_id}/application_credentials/{cred_id}", app_creds.show),
    E("DELETE", V3 + "/users/{user_id}/application_credentials/{cred_id}", app_creds.delete),
]
