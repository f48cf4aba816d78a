"""How values and errors cross the bus: JSON bytes, nothing else.

Dates, UUIDs, enums and dataclasses arrive as their JSON forms (ISO
strings, strings, dicts); any other object is refused at the sender.
"""

from __future__ import annotations

from typing import Any

import orjson

from loom import errors

# Naive datetimes are UTC in Loom; both forms go out ending in Z.
_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC


def _refuse(value: Any) -> Any:
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, bytes):
        raise TypeError("bytes cannot cross the bus; encode them (base64) first")
    raise TypeError(f"a {type(value).__name__} cannot cross the bus")


def dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value, default=_refuse, option=_OPTIONS)
    except TypeError as exc:
        # orjson puts our own, more helpful message in the cause.
        raise errors.SerializationError(str(exc.__cause__ or exc)) from None


def loads(data: bytes) -> Any:
    return orjson.loads(data)


def error_to_dict(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, errors.LoomError):
        data = exc.to_dict()
        data["declared"] = True
        return data
    return {"type": type(exc).__name__, "message": str(exc), "details": {}, "declared": False}


def error_from_dict(data: dict[str, Any]) -> errors.LoomError:
    """Rebuild an error: the same class when it is one of Loom's declared
    errors, otherwise a RemoteError naming the remote type."""
    cls = errors.error_class(data.get("class", "")) if data.get("declared") else None
    if cls is None:
        return errors.RemoteError(data.get("type", "Exception"), data.get("message", ""))
    exc = cls.__new__(cls)
    Exception.__init__(exc, data.get("message", ""))
    exc.message = data.get("message", "")
    exc.details = data.get("details") or {}
    if isinstance(exc, errors.RemoteError):
        exc.exc_type = exc.details.get("exc_type", "Exception")
        exc.remote_message = exc.details.get("remote_message", exc.message)
    return exc
