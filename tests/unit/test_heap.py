"""loom.cmd.heap: the collector settings a started service runs with."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from loom.cmd import heap


@pytest.fixture
def collector() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_settle_freezes_what_exists_and_raises_the_first_threshold(collector: None) -> None:
    _, second, third = gc.get_threshold()
    heap.settle(5000)
    assert gc.get_threshold() == (5000, second, third)
    assert gc.get_freeze_count() > 0


def test_zero_leaves_the_collector_alone(collector: None) -> None:
    before = gc.get_threshold()
    frozen = gc.get_freeze_count()
    heap.settle(0)
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == frozen
