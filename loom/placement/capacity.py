"""Capacity arithmetic: what an inventory can hold and whether an amount
fits. Pure functions, shared by claims, usages and allocation candidates.

Capacity is ``(total - reserved) * allocation_ratio`` (a float, as in
Placement); an amount fits when it respects the inventory's ``min_unit``,
``max_unit`` and ``step_size`` and ``used + amount <= capacity``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Placement's upper bound for integer fields (a signed 32-bit int).
MAX_INT = 2147483647
MAX_RATIO = 3.40282e38

FIELDS = ("total", "reserved", "min_unit", "max_unit", "step_size", "allocation_ratio")
DEFAULTS: dict[str, Any] = {"reserved": 0, "min_unit": 1, "max_unit": MAX_INT, "step_size": 1,
                            "allocation_ratio": 1.0}


@dataclass(frozen=True)
class InventorySpec:
    """One resource class's inventory on one provider."""

    total: int
    reserved: int = 0
    min_unit: int = 1
    max_unit: int = MAX_INT
    step_size: int = 1
    allocation_ratio: float = 1.0

    @classmethod
    def of(cls, values: Any) -> InventorySpec:
        """From a dict (defaults filled in) or anything with the attributes."""
        if isinstance(values, InventorySpec):
            return values
        if isinstance(values, dict):
            return cls(**{**DEFAULTS, **{k: v for k, v in values.items() if k in FIELDS}})
        return cls(**{name: getattr(values, name) for name in FIELDS})

    @property
    def capacity(self) -> float:
        return capacity(self.total, self.reserved, self.allocation_ratio)

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in FIELDS}


def capacity(total: int, reserved: int, allocation_ratio: float) -> float:
    return (total - reserved) * allocation_ratio


def invalid_reason(inv: InventorySpec, *, reserved_may_equal_total: bool = True) -> str | None:
    """Why an inventory cannot be stored, or None if it can."""
    if inv.total < 1 or inv.reserved < 0 or inv.min_unit < 1 or inv.max_unit < 1 or inv.step_size < 1:
        return "total, min_unit, max_unit and step_size must be at least 1 and reserved at least 0"
    if inv.allocation_ratio <= 0:
        return "allocation_ratio must be greater than 0"
    if inv.reserved > inv.total or (inv.reserved == inv.total and not reserved_may_equal_total):
        return f"reserved ({inv.reserved}) must be less than {'or equal to ' if reserved_may_equal_total else ''}" \
               f"total ({inv.total})"
    if inv.min_unit > inv.max_unit:
        return f"min_unit ({inv.min_unit}) must not exceed max_unit ({inv.max_unit})"
    return None


def unit_violation(inv: InventorySpec, amount: int) -> str | None:
    """Why ``amount`` breaks the inventory's min_unit/max_unit/step_size, if it does."""
    if amount < inv.min_unit:
        return f"{amount} is less than min_unit {inv.min_unit}"
    if amount > inv.max_unit:
        return f"{amount} is more than max_unit {inv.max_unit}"
    if amount % inv.step_size:
        return f"{amount} is not a multiple of step_size {inv.step_size}"
    return None


def fits(inv: InventorySpec, used: int, amount: int) -> bool:
    """Whether ``amount`` more can be allocated on top of ``used``."""
    return unit_violation(inv, amount) is None and used + amount <= inv.capacity


def free(inv: InventorySpec, used: int) -> float:
    return inv.capacity - used
