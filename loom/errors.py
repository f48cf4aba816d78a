"""The few exception categories every layer of Loom uses.

Each category carries the HTTP status the API maps it to. Errors declared
here (and any subclass defined elsewhere in Loom) cross the message bus
intact: a remote ``NotFound`` is raised as ``NotFound`` in the caller.
"""

from __future__ import annotations

from typing import Any, ClassVar

_REGISTRY: dict[str, type[LoomError]] = {}


class LoomError(Exception):
    """Base of Loom's declared errors."""

    status: ClassVar[int] = 500
    message: str

    def __init__(self, message: str | None = None, **details: Any) -> None:
        self.message = message or self.__class__.__doc__ or self.__class__.__name__
        self.details = details
        super().__init__(self.message)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Keyed by module and name: two services may each declare an error
        # with the same short name without one shadowing the other.
        _REGISTRY[_qualified(cls)] = cls

    def to_dict(self) -> dict[str, Any]:
        return {"type": type(self).__name__, "class": _qualified(type(self)), "message": self.message,
                "details": self.details}


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


_REGISTRY[_qualified(LoomError)] = LoomError


def error_class(name: str) -> type[LoomError] | None:
    """The declared error class with this qualified name (``module.Class``)."""
    return _REGISTRY.get(name)


class NotFound(LoomError):
    """The resource could not be found."""

    status = 404


class Conflict(LoomError):
    """The request conflicts with the current state of the resource."""

    status = 409


class BadState(Conflict):
    """The resource is in a state that does not allow this operation."""


class Invalid(LoomError):
    """The request is invalid."""

    status = 400


class Forbidden(LoomError):
    """The operation is not permitted."""

    status = 403


class Unauthorized(LoomError):
    """Authentication is required or has failed."""

    status = 401


class QuotaExceeded(Forbidden):
    """The request would exceed a quota."""


class NoResources(LoomError):
    """No host or resource can satisfy the request."""

    status = 409


class Temporary(LoomError):
    """A temporary failure; the same request may succeed later."""

    status = 503


class MessagingError(Temporary):
    """The message bus failed to deliver a message."""


class MessagingTimeout(MessagingError):
    """No reply arrived in time."""

    status = 504


class BusUnavailable(MessagingError):
    """The message bus cannot be reached."""


class NoListener(MessagingError):
    """Nothing listens on the topic a message was sent to."""


class UnknownMethod(Invalid):
    """The remote service does not expose the requested method."""


class SerializationError(Invalid):
    """A value cannot be carried over the message bus."""


class RemoteError(LoomError):
    """An undeclared exception raised by the remote side of a call."""

    def __init__(self, exc_type: str = "Exception", message: str = "", **details: Any) -> None:
        self.exc_type = exc_type
        super().__init__(
            f"Remote error: {exc_type}: {message}", exc_type=exc_type, remote_message=message, **details
        )
        self.remote_message = message
