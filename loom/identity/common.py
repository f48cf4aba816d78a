"""What the identity modules share: list filters and name lookups."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select

DEFAULT_DOMAIN_ID = "default"


def truthy(value: str | bool) -> bool:
    if isinstance(value, bool):
        return value
    return value.lower() in ("1", "true", "yes", "on")


def filter_by(query: Select[Any], model: Any, filters: dict[str, Any], allowed: tuple[str, ...]) -> Select[Any]:
    """Apply equality filters from a query string; ``enabled`` takes the
    usual spellings of true and false."""
    for key in allowed:
        if key not in filters or filters[key] is None:
            continue
        value = filters[key]
        if key == "enabled":
            value = truthy(value)
        query = query.where(getattr(model, key) == value)
    return query
