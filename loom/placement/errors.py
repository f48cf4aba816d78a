"""Placement's errors: Loom's categories, each carrying the error code
Placement's API reports (``code`` in its JSON errors)."""

from __future__ import annotations

from typing import ClassVar

from loom import errors

DEFAULT_CODE = "placement.undefined_code"


class _Coded:
    code: ClassVar[str] = DEFAULT_CODE


def code_of(exc: BaseException) -> str:
    """The Placement error code of any Loom error."""
    return getattr(exc, "code", DEFAULT_CODE)


class PlacementNotFound(_Coded, errors.NotFound):
    """The placement resource could not be found."""


class ProviderNotFound(PlacementNotFound):
    """The resource provider could not be found."""


class PlacementInvalid(_Coded, errors.Invalid):
    """The placement request is invalid."""


class BadQueryValue(PlacementInvalid):
    """A query parameter has a value that cannot be used."""

    code = "placement.query.bad_value"


class MissingQueryValue(PlacementInvalid):
    """A query parameter needs another that is missing."""

    code = "placement.query.missing_value"


class DuplicateQueryKey(PlacementInvalid):
    """A query parameter was given more than once where only one is allowed."""

    code = "placement.query.duplicate_key"


class PlacementConflict(_Coded, errors.Conflict):
    """The placement request conflicts with the current state."""


class ConcurrentUpdate(PlacementConflict):
    """A generation did not match: someone else changed the provider or
    consumer since it was read. Re-read and try again."""

    code = "placement.concurrent_update"


class ProviderGenerationRace(ConcurrentUpdate):
    """A provider's generation moved between the read and the write of a
    claim; the claim is retried from the start (internal)."""


class InsufficientCapacity(PlacementConflict):
    """An allocation does not fit a provider's inventory (capacity, or its
    min_unit/max_unit/step_size)."""


class InventoryInUse(PlacementConflict):
    """Inventory that allocations consume cannot be removed."""

    code = "placement.inventory.inuse"


class DuplicateName(PlacementConflict):
    """A resource provider with that name already exists."""

    code = "placement.duplicate_name"


class ProviderInUse(PlacementConflict):
    """A resource provider with allocations cannot be deleted."""

    code = "placement.resource_provider.inuse"


class CannotDeleteParent(PlacementConflict):
    """A resource provider with children cannot be deleted."""

    code = "placement.resource_provider.cannot_delete_parent"


class ResourceClassInUse(PlacementConflict):
    """A resource class that inventories use cannot be deleted."""


class TraitInUse(PlacementConflict):
    """A trait that resource providers have cannot be deleted."""
