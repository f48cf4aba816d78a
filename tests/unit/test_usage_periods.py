"""The audit period and the hours a server is billed for in a usage window:
pure arithmetic, no database."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

from loom.api.compute.simple_tenant_usage import _hours
from loom.objects.task_logs import last_completed_hour

T = dt.datetime


def test_the_last_completed_hour_ends_at_the_last_full_hour() -> None:
    assert last_completed_hour(T(2026, 3, 1, 10, 25)) == (T(2026, 3, 1, 9), T(2026, 3, 1, 10))
    # Exactly on the hour, the hour just begun is not complete.
    assert last_completed_hour(T(2026, 3, 1, 10)) == (T(2026, 3, 1, 8), T(2026, 3, 1, 9))
    assert last_completed_hour(T(2026, 1, 1, 0, 30)) == (T(2025, 12, 31, 23), T(2026, 1, 1))


def server(launched: dt.datetime | None, terminated: dt.datetime | None = None) -> SimpleNamespace:
    return SimpleNamespace(launched_at=launched, terminated_at=terminated)


def test_hours_are_counted_inside_the_window_only() -> None:
    start, stop = T(2026, 1, 1), T(2026, 1, 2)
    assert _hours(server(T(2026, 1, 1, 6)), start, stop) == 18.0
    assert _hours(server(T(2025, 12, 31), T(2026, 1, 1, 3)), start, stop) == 3.0
    assert _hours(server(T(2026, 1, 1, 12), T(2026, 1, 1, 18)), start, stop) == 6.0
    assert _hours(server(T(2026, 1, 3)), start, stop) == 0
    assert _hours(server(T(2025, 12, 1), T(2025, 12, 2)), start, stop) == 0
    assert _hours(server(None), start, stop) == 0
