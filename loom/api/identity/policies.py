"""Default policy rules of the identity API. Operators override any of
them by name in the policy file."""

from __future__ import annotations

from loom.policy.enforcer import ADMIN, Rule

ANY = ""
DOMAIN_READER = "role:reader and domain_id:%(target.domain_id)s"
SELF = "user_id:%(target.user.id)s"


def _r(name: str, check: str, description: str) -> Rule:
    return Rule(f"identity:{name}", check, description)


def _admin_or(*alternatives: str) -> str:
    return " or ".join([ADMIN, *(f"({a})" for a in alternatives)])


RULES = [
    _r("get_domain", _admin_or("domain_id:%(target.domain.id)s",
                               "project_domain_id:%(target.domain.id)s"), "Show a domain."),
    _r("list_domains", ADMIN, "List domains."),
    _r("create_domain", ADMIN, "Create a domain."),
    _r("update_domain", ADMIN, "Update a domain."),
    _r("delete_domain", ADMIN, "Delete a domain."),
    _r("get_project", _admin_or("project_id:%(target.project.id)s",
                                "role:reader and domain_id:%(target.project.domain_id)s"), "Show a project."),
    _r("list_projects", _admin_or(DOMAIN_READER), "List projects."),
    _r("list_user_projects", _admin_or(SELF, "role:reader and domain_id:%(target.user.domain_id)s"),
       "List the projects a user has roles on."),
    _r("create_project", _admin_or("role:manager and domain_id:%(target.project.domain_id)s"),
       "Create a project."),
    _r("update_project", _admin_or("role:manager and domain_id:%(target.project.domain_id)s"),
       "Update a project."),
    _r("delete_project", _admin_or("role:manager and domain_id:%(target.project.domain_id)s"),
       "Delete a project."),
    _r("get_user", _admin_or(SELF, "role:reader and domain_id:%(target.user.domain_id)s"), "Show a user."),
    _r("list_users", _admin_or(DOMAIN_READER), "List users."),
    _r("create_user", _admin_or("role:manager and domain_id:%(target.user.domain_id)s"), "Create a user."),
    _r("update_user", _admin_or("role:manager and domain_id:%(target.user.domain_id)s"), "Update a user."),
    _r("delete_user", _admin_or("role:manager and domain_id:%(target.user.domain_id)s"), "Delete a user."),
    _r("get_group", _admin_or("role:reader and domain_id:%(target.group.domain_id)s"), "Show a group."),
    _r("list_groups", _admin_or(DOMAIN_READER), "List groups."),
    _r("list_groups_for_user", _admin_or(SELF, "role:reader and domain_id:%(target.user.domain_id)s"),
       "List the groups a user is in."),
    _r("create_group", _admin_or("role:manager and domain_id:%(target.group.domain_id)s"), "Create a group."),
    _r("update_group", _admin_or("role:manager and domain_id:%(target.group.domain_id)s"), "Update a group."),
    _r("delete_group", _admin_or("role:manager and domain_id:%(target.group.domain_id)s"), "Delete a group."),
    _r("list_users_in_group", _admin_or("role:reader and domain_id:%(target.group.domain_id)s"),
       "List a group's members."),
    _r("check_user_in_group", _admin_or("role:reader and domain_id:%(target.group.domain_id)s"),
       "Check group membership."),
    _r("add_user_to_group", _admin_or("role:manager and domain_id:%(target.group.domain_id)s"),
       "Add a user to a group."),
    _r("remove_user_from_group", _admin_or("role:manager and domain_id:%(target.group.domain_id)s"),
       "Remove a user from a group."),
    _r("get_role", _admin_or("role:manager"), "Show a role."),
    _r("list_roles", _admin_or("role:manager"), "List roles."),
    _r("create_role", ADMIN, "Create a role."),
    _r("update_role", ADMIN, "Update a role."),
    _r("delete_role", ADMIN, "Delete a role."),
    _r("implied_roles", ADMIN, "Show, list, create and delete role implications."),
    _r("check_grant", _admin_or("role:reader and domain_id:%(target.domain.id)s",
                                "role:reader and domain_id:%(target.project.domain_id)s"),
       "Check a role assignment."),
    _r("list_grants", _admin_or("role:reader and domain_id:%(target.domain.id)s",
                                "role:reader and domain_id:%(target.project.domain_id)s"),
       "List the roles of a user or group on a project or domain."),
    _r("create_grant", _admin_or("role:manager and domain_id:%(target.domain.id)s",
                                 "role:manager and domain_id:%(target.project.domain_id)s"),
       "Assign a role."),
    _r("revoke_grant", _admin_or("role:manager and domain_id:%(target.domain.id)s",
                                 "role:manager and domain_id:%(target.project.domain_id)s"),
       "Remove a role assignment."),
    _r("system_grants", ADMIN, "Assign, check, list and remove roles on the system."),
    _r("list_role_assignments", _admin_or(DOMAIN_READER), "List role assignments."),
    _r("list_regions", ANY, "List regions."),
    _r("get_region", ANY, "Show a region."),
    _r("manage_regions", ADMIN, "Create, update and delete regions."),
    _r("list_services", ADMIN, "List catalog services."),
    _r("get_service", ADMIN, "Show a catalog service."),
    _r("manage_services", ADMIN, "Create, update and delete catalog services."),
    _r("list_endpoints", ADMIN, "List endpoints."),
    _r("get_endpoint", ADMIN, "Show an endpoint."),
    _r("manage_endpoints", ADMIN, "Create, update and delete endpoints."),
    _r("validate_token", _admin_or("role:service", "user_id:%(target.token.user_id)s"),
       "Validate or check a token."),
    _r("revoke_token", _admin_or("role:service", "user_id:%(target.token.user_id)s"), "Revoke a token."),
    _r("get_application_credential", _admin_or(SELF), "Show an application credential."),
    _r("list_application_credentials", _admin_or(SELF), "List application credentials."),
    _r("create_application_credential", SELF, "Create an application credential for oneself."),
    _r("delete_application_credential", _admin_or(SELF), "Delete an application credential."),
]
