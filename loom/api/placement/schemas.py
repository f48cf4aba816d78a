"""Request bodies of the placement API (pydantic), as Placement's JSON
schemas define them; version-dependent fields are checked by handlers."""

from __future__ import annotations

import uuid as uuidlib
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator

from loom.placement.capacity import MAX_INT, MAX_RATIO
from loom.placement.errors import PlacementInvalid

Int = Annotated[StrictInt, Field(ge=0, le=MAX_INT)]
PosInt = Annotated[StrictInt, Field(ge=1, le=MAX_INT)]


def normal_uuid(value: str, what: str = "uuid") -> str:
    try:
        return str(uuidlib.UUID(value))
    except (ValueError, TypeError, AttributeError):
        raise PlacementInvalid(f"Malformed {what}: {value}") from None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProviderCreate(_Strict):
    name: str = Field(min_length=1, max_length=200)
    uuid: str | None = None
    parent_provider_uuid: str | None = None

    @field_validator("uuid", "parent_provider_uuid")
    @classmethod
    def _uuid(cls, value: str | None) -> str | None:
        return None if value is None else str(uuidlib.UUID(value))


class ProviderUpdate(_Strict):
    name: str = Field(min_length=1, max_length=200)
    parent_provider_uuid: str | None = None

    @field_validator("parent_provider_uuid")
    @classmethod
    def _uuid(cls, value: str | None) -> str | None:
        return None if value is None else str(uuidlib.UUID(value))


class InventoryFields(_Strict):
    total: PosInt
    reserved: Int = 0
    min_unit: PosInt = 1
    max_unit: PosInt = MAX_INT
    step_size: PosInt = 1
    allocation_ratio: float = Field(default=1.0, le=MAX_RATIO)

    def spec(self) -> dict[str, Any]:
        return self.model_dump()


class InventoryOne(InventoryFields):
    resource_provider_generation: StrictInt


class InventoryCreate(InventoryFields):
    resource_class: str = Field(pattern=r"^[A-Z0-9_]+$")
    resource_provider_generation: StrictInt | None = None


class Inventories(_Strict):
    resource_provider_generation: StrictInt
    inventories: dict[str, InventoryFields]


class Traits(_Strict):
    traits: list[str]
    resource_provider_generation: StrictInt


class Aggregates(_Strict):
    aggregates: list[str]
    resource_provider_generation: StrictInt

    @field_validator("aggregates")
    @classmethod
    def _uuids(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("aggregates must be unique")
        return [str(uuidlib.UUID(v)) for v in value]


class ResourceClassCreate(_Strict):
    name: str = Field(max_length=255)
