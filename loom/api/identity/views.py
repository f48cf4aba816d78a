"""How identity resources look on the wire."""

from __future__ import annotations

from typing import Any

from loom.db.models import (
    AppCredential,
    CatalogEndpoint,
    CatalogService,
    Domain,
    Group,
    Project,
    Region,
    Role,
    User,
)
from loom.timeutils import isotime


class Views:
    def __init__(self, base_url: str) -> None:
        self.base = base_url.rstrip("/") + "/identity/v3"

    def link(self, path: str) -> dict[str, str]:
        return {"self": f"{self.base}/{path}"}

    def collection(self, name: str, items: list[dict[str, Any]], path: str) -> dict[str, Any]:
        return {name: items, "links": {"self": f"{self.base}/{path}", "previous": None, "next": None}}

    def domain(self, d: Domain) -> dict[str, Any]:
        return {**d.extra, "id": d.id, "name": d.name, "description": d.description or "",
                "enabled": d.enabled, "tags": [], "options": {}, "links": self.link(f"domains/{d.id}")}

    def project(self, p: Project) -> dict[str, Any]:
        return {**p.extra, "id": p.id, "name": p.name, "domain_id": p.domain_id,
                "description": p.description or "", "enabled": p.enabled,
                "parent_id": p.parent_id or p.domain_id, "is_domain": False, "tags": list(p.tags),
                "options": {}, "links": self.link(f"projects/{p.id}")}

    def user(self, u: User) -> dict[str, Any]:
        out = {**u.extra, "id": u.id, "name": u.name, "domain_id": u.domain_id, "enabled": u.enabled,
               "password_expires_at": None, "options": dict(u.options), "links": self.link(f"users/{u.id}")}
        if u.default_project_id:
            out["default_project_id"] = u.default_project_id
        if u.description is not None:
            out["description"] = u.description
        return out

    def group(self, g: Group) -> dict[str, Any]:
        return {**g.extra, "id": g.id, "name": g.name, "domain_id": g.domain_id,
                "description": g.description or "", "links": self.link(f"groups/{g.id}")}

    def role(self, r: Role) -> dict[str, Any]:
        return {**r.extra, "id": r.id, "name": r.name, "domain_id": r.domain_id or None,
                "description": r.description, "options": dict(r.options), "links": self.link(f"roles/{r.id}")}

    def role_ref(self, r: Role) -> dict[str, Any]:
        return {"id": r.id, "name": r.name, "domain_id": r.domain_id or None,
                "links": self.link(f"roles/{r.id}")}

    def region(self, r: Region) -> dict[str, Any]:
        return {**r.extra, "id": r.id, "description": r.description or "",
                "parent_region_id": r.parent_region_id, "links": self.link(f"regions/{r.id}")}

    def service(self, s: CatalogService) -> dict[str, Any]:
        extra = {k: v for k, v in s.extra.items() if k != "managed_by"}
        out = {**extra, "id": s.id, "type": s.type, "enabled": s.enabled,
               "links": self.link(f"services/{s.id}")}
        if s.name is not None:
            out["name"] = s.name
        if s.description is not None:
            out["description"] = s.description
        return out

    def endpoint(self, e: CatalogEndpoint) -> dict[str, Any]:
        return {**e.extra, "id": e.id, "interface": e.interface, "region": e.region_id,
                "region_id": e.region_id, "service_id": e.service_id, "url": e.url, "enabled": e.enabled,
                "links": self.link(f"endpoints/{e.id}")}

    def app_cred(self, c: AppCredential, roles: list[Role]) -> dict[str, Any]:
        return {"id": c.id, "name": c.name, "description": c.description, "user_id": c.user_id,
                "project_id": c.project_id, "roles": [self.role_ref(r) for r in roles],
                "expires_at": _iso_micro(c.expires_at), "unrestricted": c.unrestricted,
                "access_rules": [], "links": self.link(f"users/{c.user_id}/application_credentials/{c.id}")}


def _iso_micro(value: Any) -> str | None:
    if value is None:
        return None
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f")


def iso(value: Any) -> str | None:
    return isotime(value)
