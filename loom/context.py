"""The request context: who asked, and the request id that follows the
request through the API and across every RPC hop."""

from __future__ import annotations

import contextvars
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

_current: contextvars.ContextVar[RequestContext | None] = contextvars.ContextVar(
    "loom_request_context", default=None
)


def new_request_id() -> str:
    return f"req-{uuid.uuid4()}"


@dataclass(frozen=True)
class RequestContext:
    request_id: str = field(default_factory=new_request_id)
    user_id: str | None = None
    project_id: str | None = None
    domain_id: str | None = None
    roles: tuple[str, ...] = ()
    is_admin: bool = False
    # Set when a service acts on its own behalf (periodic tasks, workflows).
    service: str | None = None
    global_request_id: str | None = None
    system_scope: str | None = None
    user_name: str | None = None
    project_name: str | None = None
    user_domain_id: str | None = None
    project_domain_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        # Built by hand: dataclasses.asdict deep-copies, and this runs on
        # every RPC message.
        return {
            "request_id": self.request_id,
            "user_id": self.user_id,
            "project_id": self.project_id,
            "domain_id": self.domain_id,
            "roles": list(self.roles),
            "is_admin": self.is_admin,
            "service": self.service,
            "global_request_id": self.global_request_id,
            "system_scope": self.system_scope,
            "user_name": self.user_name,
            "project_name": self.project_name,
            "user_domain_id": self.user_domain_id,
            "project_domain_id": self.project_domain_id,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RequestContext:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["roles"] = tuple(known.get("roles") or ())
        return cls(**known)

    def elevated(self) -> RequestContext:
        """The same request, with admin rights (for a service's own reads)."""
        return replace(self, is_admin=True)

    @classmethod
    def for_service(cls, name: str) -> RequestContext:
        return cls(service=name, is_admin=True)


def current() -> RequestContext | None:
    """The context of the request being handled, if any."""
    return _current.get()


def bind(ctx: RequestContext | None) -> contextvars.Token[RequestContext | None]:
    """Make ``ctx`` current for logging and outgoing RPC; undo with ``unbind``."""
    return _current.set(ctx)


def unbind(token: contextvars.Token[RequestContext | None]) -> None:
    _current.reset(token)
