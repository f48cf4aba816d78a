"""What crosses the bus: JSON values, and errors that keep their class."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import uuid
from typing import Any

import pytest

from loom import errors
from loom.bus import serialize
from loom.timeutils import utcnow


class WidgetNotFound(errors.NotFound):
    """Declared outside loom.errors, as a service's own error would be."""


class Colour(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class Point:
    x: int
    y: int


def over_the_bus(value: Any) -> Any:
    return serialize.loads(serialize.dumps(value))


def error_over_the_bus(exc: BaseException) -> errors.LoomError:
    """What the caller raises when ``exc`` was raised on the far side."""
    return serialize.error_from_dict(over_the_bus(serialize.error_to_dict(exc)))


def remote_error_over_the_bus(exc: BaseException) -> errors.RemoteError:
    back = error_over_the_bus(exc)
    assert type(back) is errors.RemoteError
    return back


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        0,
        -(2**63),
        1.5,
        "",
        "naïve ☃",
        [],
        {},
        [1, "two", None, [3.0]],
        {"server": {"id": "abc", "tags": ["a", "b"], "metadata": {}, "locked": False}},
    ],
)
def test_json_values_round_trip(value: Any) -> None:
    assert over_the_bus(value) == value


def test_dumps_gives_bytes() -> None:
    assert serialize.dumps({"a": 1}) == b'{"a":1}'


def test_aware_datetime_becomes_iso_string_with_z() -> None:
    when = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    assert over_the_bus({"at": when}) == {"at": "2024-01-02T03:04:05Z"}


def test_datetime_in_another_zone_keeps_its_offset() -> None:
    when = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert over_the_bus(when) == "2024-01-02T03:04:05+02:00"


def test_naive_utc_datetime_becomes_iso_string_with_z() -> None:
    assert over_the_bus(utcnow()).endswith("Z")


def test_sets_and_tuples_become_lists() -> None:
    assert over_the_bus((1, 2, 3)) == [1, 2, 3]
    assert over_the_bus({"roles": ("admin", "member")}) == {"roles": ["admin", "member"]}
    assert sorted(over_the_bus({3, 1, 2})) == [1, 2, 3]
    assert over_the_bus({"ids": frozenset({"a"})}) == {"ids": ["a"]}


def test_uuids_enums_and_dataclasses_become_their_json_forms() -> None:
    ident = uuid.uuid4()
    assert over_the_bus([ident, Colour.RED, Point(1, 2)]) == [str(ident), "red", {"x": 1, "y": 2}]


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (object(), "object"),
        ({"nested": [object()]}, "object"),
        (b"raw", "bytes"),
        ({"data": b"raw"}, "bytes"),
        ({1: "non-string key"}, "key"),
        (2**64, "64-bit"),
    ],
)
def test_values_json_cannot_carry_are_refused(value: Any, why: str) -> None:
    with pytest.raises(errors.SerializationError, match=why):
        serialize.dumps(value)


def test_refusal_is_a_declared_error() -> None:
    """So a handler returning something unserialisable fails the call
    cleanly with Invalid rather than as an anonymous remote error."""
    assert issubclass(errors.SerializationError, errors.Invalid)


@pytest.mark.parametrize(
    "exc",
    [
        errors.NotFound("server abc not found", server_id="abc"),
        errors.BadState("server is locked", state="ACTIVE", task_state=None),
        errors.NoResources(),
        WidgetNotFound("widget 7 not found", widget=7),
    ],
    ids=lambda exc: type(exc).__name__,
)
def test_declared_errors_come_back_as_themselves(exc: errors.LoomError) -> None:
    back = error_over_the_bus(exc)
    assert type(back) is type(exc)
    assert back.message == exc.message
    assert str(back) == str(exc)
    assert back.details == exc.details
    assert back.status == exc.status


def test_undeclared_errors_become_remote_errors() -> None:
    back = remote_error_over_the_bus(ValueError("flavor must be positive"))
    assert back.exc_type == "ValueError"
    assert back.remote_message == "flavor must be positive"
    assert "ValueError" in back.message
    assert "flavor must be positive" in back.message


def test_undeclared_error_named_like_a_declared_one_stays_remote() -> None:
    class NotFound(Exception):  # same name as a declared error, but not one
        pass

    back = remote_error_over_the_bus(NotFound("lookalike"))
    assert back.exc_type == "NotFound"


def test_remote_error_crossing_twice_keeps_exc_type() -> None:
    """conductor → compute → conductor → api: the api still learns what
    the compute host raised."""
    once = remote_error_over_the_bus(KeyError("disk"))
    twice = remote_error_over_the_bus(once)
    assert twice.exc_type == "KeyError"
    assert twice.message == once.message
    assert remote_error_over_the_bus(twice).exc_type == "KeyError"


def test_remote_error_crossing_twice_keeps_remote_message() -> None:
    once = remote_error_over_the_bus(ValueError("bad"))
    assert remote_error_over_the_bus(once).remote_message == once.remote_message == "bad"


def test_error_from_dict_tolerates_missing_fields() -> None:
    back = serialize.error_from_dict({})
    assert type(back) is errors.RemoteError
    assert back.exc_type == "Exception"
