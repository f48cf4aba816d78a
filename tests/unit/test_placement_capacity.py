"""Capacity arithmetic of placement inventories."""

from __future__ import annotations

import pytest

from loom.placement.capacity import MAX_INT, InventorySpec, capacity, fits, invalid_reason, unit_violation


def test_capacity_is_total_less_reserved_times_ratio() -> None:
    assert capacity(8, 0, 16.0) == 128
    assert capacity(4096, 512, 1.5) == 5376
    assert InventorySpec(total=10, reserved=10).capacity == 0


def test_defaults_fill_missing_fields() -> None:
    spec = InventorySpec.of({"total": 4})
    assert spec == InventorySpec(4, 0, 1, MAX_INT, 1, 1.0)
    assert InventorySpec.of(spec) is spec


@pytest.mark.parametrize(("used", "amount", "ok"), [(0, 16, True), (15, 1, True), (15, 2, False), (16, 1, False)])
def test_fits_within_capacity(used: int, amount: int, ok: bool) -> None:
    assert fits(InventorySpec(total=8, allocation_ratio=2.0), used, amount) is ok


def test_unit_constraints() -> None:
    spec = InventorySpec(total=100, min_unit=2, max_unit=10, step_size=2)
    assert unit_violation(spec, 1) and unit_violation(spec, 12) and unit_violation(spec, 3)
    assert unit_violation(spec, 4) is None
    assert not fits(spec, 0, 3)


def test_invalid_inventories() -> None:
    assert invalid_reason(InventorySpec(total=4, reserved=5))
    assert invalid_reason(InventorySpec(total=4, reserved=4)) is None
    assert invalid_reason(InventorySpec(total=4, reserved=4), reserved_may_equal_total=False)
    assert invalid_reason(InventorySpec(total=4, min_unit=5, max_unit=4))
    assert invalid_reason(InventorySpec(total=4, allocation_ratio=0))
    assert invalid_reason(InventorySpec(total=0))
