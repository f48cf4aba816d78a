"""The small, rarely changing identity tables (domains, roles and their
implications, the catalog) held in memory between identity changes, so a
token costs no queries for them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from loom.db.models import Domain, Role
from loom.errors import NotFound
from loom.identity import catalog, roles


@dataclass
class Reference:
    domains: dict[str, Domain]
    roles: dict[str, Role]
    implications: dict[str, set[str]]
    catalog: list[dict[str, Any]]

    @classmethod
    async def load(cls, session: AsyncSession) -> Reference:
        domains = {d.id: d for d in await session.scalars(select(Domain))}
        all_roles = {r.id: r for r in await session.scalars(select(Role))}
        return cls(domains, all_roles, await roles.implications(session), await catalog.build(session))

    def domain(self, domain_id: str) -> Domain:
        try:
            return self.domains[domain_id]
        except KeyError:
            raise NotFound(f"Could not find domain: {domain_id}.") from None

    def find_domain(self, ref: Any) -> Domain:
        """A domain named by ``{"id": ...}`` or ``{"name": ...}``."""
        if isinstance(ref, dict) and ref.get("id"):
            return self.domain(str(ref["id"]))
        if isinstance(ref, dict) and ref.get("name"):
            for domain in self.domains.values():
                if domain.name == ref["name"]:
                    return domain
            raise NotFound(f"Could not find domain: {ref['name']}.")
        raise NotFound("A domain must be given by id or name.")

    def expand(self, role_ids: Iterable[str]) -> set[str]:
        return roles.expand_with(self.implications, role_ids)

    def role_list(self, role_ids: Iterable[str]) -> list[Role]:
        return sorted((self.roles[i] for i in role_ids if i in self.roles), key=lambda r: r.name)
