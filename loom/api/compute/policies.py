"""Default policy rules of the compute API, by Nova's rule names so that
operators' existing overrides carry over."""

from __future__ import annotations

from loom.policy.enforcer import ADMIN, ADMIN_OR_PROJECT_MEMBER, ADMIN_OR_PROJECT_READER, Rule

OWNER_USER = f"({ADMIN}) or user_id:%(user_id)s"
ANY = ""

RULES = [
    Rule("os_compute_api:os-instance-actions:list", ADMIN_OR_PROJECT_READER, "List a server's actions."),
    Rule("os_compute_api:os-instance-actions:show", ADMIN_OR_PROJECT_READER, "Show a server action."),
    Rule("os_compute_api:os-instance-actions:events", ADMIN, "Show action events before 2.51."),
    Rule("os_compute_api:os-instance-actions:events:details", ADMIN, "Show event hosts and tracebacks."),
    Rule("os_compute_api:servers:index", ADMIN_OR_PROJECT_READER, "List servers."),
    Rule("os_compute_api:servers:detail", ADMIN_OR_PROJECT_READER, "List servers with details."),
    Rule("os_compute_api:servers:detail:get_all_tenants", ADMIN, "List the servers of every project, in detail."),
    Rule("os_compute_api:servers:index:get_all_tenants", ADMIN, "List the servers of every project."),
    Rule("os_compute_api:servers:show", ADMIN_OR_PROJECT_READER, "Show a server."),
    Rule("os_compute_api:servers:create", ADMIN_OR_PROJECT_MEMBER, "Create a server."),
    Rule("os_compute_api:servers:update", ADMIN_OR_PROJECT_MEMBER, "Update a server."),
    Rule("os_compute_api:servers:delete", ADMIN_OR_PROJECT_MEMBER, "Delete a server."),
    Rule("os_compute_api:os-flavor-manage:create", ADMIN, "Create a flavor."),
    Rule("os_compute_api:os-flavor-manage:update", ADMIN, "Update a flavor's description."),
    Rule("os_compute_api:os-flavor-manage:delete", ADMIN, "Delete a flavor."),
    Rule("os_compute_api:os-flavor-extra-specs:index", ADMIN_OR_PROJECT_READER, "List a flavor's extra specs."),
    Rule("os_compute_api:os-flavor-extra-specs:show", ADMIN_OR_PROJECT_READER, "Show a flavor extra spec."),
    Rule("os_compute_api:os-flavor-extra-specs:create", ADMIN, "Create flavor extra specs."),
    Rule("os_compute_api:os-flavor-extra-specs:update", ADMIN, "Update a flavor extra spec."),
    Rule("os_compute_api:os-flavor-extra-specs:delete", ADMIN, "Delete a flavor extra spec."),
    Rule("os_compute_api:os-flavor-access", ADMIN, "List the projects with access to a private flavor."),
    Rule("os_compute_api:os-flavor-access:add_tenant_access", ADMIN, "Give a project a private flavor."),
    Rule("os_compute_api:os-flavor-access:remove_tenant_access", ADMIN, "Take a private flavor from a project."),
    Rule("os_compute_api:os-keypairs:index", OWNER_USER, "List keypairs."),
    Rule("os_compute_api:os-keypairs:show", OWNER_USER, "Show a keypair."),
    Rule("os_compute_api:os-keypairs:create", OWNER_USER, "Create or import a keypair."),
    Rule("os_compute_api:os-keypairs:delete", OWNER_USER, "Delete a keypair."),
]


def _module_rules() -> list[Rule]:
    from loom.api.compute.routes import MODULES

    return [rule for module in MODULES for rule in module.RULES]


RULES += _module_rules()
