"""Request bodies of the identity API. Unknown attributes are kept as
extra attributes of the resource, as Keystone keeps them."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool

Name = Annotated[str, Field(min_length=1, max_length=255)]
Id = Annotated[str, Field(min_length=1, max_length=64)]


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")

    def known(self, *names: str) -> dict[str, Any]:
        return {n: getattr(self, n) for n in names if n in self.model_fields_set}

    def extras(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class DomainCreate(_Open):
    name: Name
    description: str | None = None
    enabled: StrictBool = True
    tags: list[str] = []
    options: dict[str, Any] = {}


class DomainUpdate(_Open):
    name: Name | None = None
    description: str | None = None
    enabled: StrictBool | None = None
    tags: list[str] | None = None
    options: dict[str, Any] | None = None


class ProjectCreate(_Open):
    name: Annotated[str, Field(min_length=1, max_length=64)]
    domain_id: Id | None = None
    parent_id: Id | None = None
    description: str | None = None
    enabled: StrictBool = True
    is_domain: StrictBool = False
    tags: list[Annotated[str, Field(min_length=1, max_length=255)]] = []
    options: dict[str, Any] = {}


class ProjectUpdate(_Open):
    name: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    domain_id: Id | None = None
    description: str | None = None
    enabled: StrictBool | None = None
    tags: list[Annotated[str, Field(min_length=1, max_length=255)]] | None = None
    options: dict[str, Any] | None = None


class UserCreate(_Open):
    name: Name
    domain_id: Id | None = None
    password: str | None = None
    enabled: StrictBool = True
    default_project_id: Id | None = None
    description: str | None = None
    options: dict[str, Any] = {}


class UserUpdate(_Open):
    name: Name | None = None
    password: str | None = None
    enabled: StrictBool | None = None
    default_project_id: Id | None = None
    description: str | None = None
    options: dict[str, Any] | None = None


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    original_password: str
    password: Annotated[str, Field(min_length=1)]


class GroupCreate(_Open):
    name: Name
    domain_id: Id | None = None
    description: str | None = None


class GroupUpdate(_Open):
    name: Name | None = None
    description: str | None = None


class RoleCreate(_Open):
    name: Name
    domain_id: Id | None = None
    description: str | None = None
    options: dict[str, Any] = {}


class RoleUpdate(_Open):
    name: Name | None = None
    description: str | None = None
    options: dict[str, Any] | None = None


class RegionCreate(_Open):
    id: Annotated[str, Field(min_length=1, max_length=255)] | None = None
    description: str | None = None
    parent_region_id: str | None = None


class RegionUpdate(_Open):
    description: str | None = None
    parent_region_id: str | None = None


class ServiceCreate(_Open):
    type: Name
    name: Name | None = None
    description: str | None = None
    enabled: StrictBool = True


class ServiceUpdate(_Open):
    type: Name | None = None
    name: Name | None = None
    description: str | None = None
    enabled: StrictBool | None = None


class EndpointCreate(_Open):
    service_id: Id
    interface: str
    url: Annotated[str, Field(min_length=1)]
    region_id: str | None = None
    region: str | None = None
    enabled: StrictBool = True


class EndpointUpdate(_Open):
    service_id: Id | None = None
    interface: str | None = None
    url: Annotated[str, Field(min_length=1)] | None = None
    region_id: str | None = None
    region: str | None = None
    enabled: StrictBool | None = None


class RoleRef(BaseModel):
    id: Id | None = None
    name: Name | None = None


class AppCredentialCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name
    description: str | None = None
    secret: Annotated[str, Field(min_length=1)] | None = None
    expires_at: str | None = None
    roles: list[RoleRef] | None = None
    unrestricted: StrictBool = False
    access_rules: list[dict[str, Any]] | None = None
