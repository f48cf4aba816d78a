"""Fernet tokens: the whole token is its payload, encrypted and signed.

Nothing is stored per token, so any API process holding the key repository
can validate any token; revocation is checked elsewhere, by audit id.

The payload is a msgpack array, kept small because every request carries
the token in a header: a project-scoped password token is 183 characters
(unscoped 162, with a parent audit id 204), where Keystone's are 180 to
250::

    [version, methods, user_id, issued_at, expires_at, audit_ids,
     project_id, domain_id, system, app_cred_id]

* IDs that are 32 lowercase hex characters (``uuid4().hex``, what Loom
  creates) travel as 16 raw bytes; any other ID as its string.
* ``methods`` is a bit mask when the methods are known ones, unique and in
  ``METHODS`` order; else the list of names (so decoding gives back exactly
  what was issued).
* Times are integer microseconds since the Unix epoch, naive UTC.
* Audit ids (22 characters of url-safe base64) travel as their 16 bytes.
* Trailing ``None`` fields are left off.

The Fernet token's own base64 padding (``=``) is stripped, as Keystone
does, because ``=`` needs quoting in URLs.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import secrets
from dataclasses import dataclass
from typing import Any

import msgpack
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from loom import timeutils
from loom.errors import Unauthorized
from loom.identity.keys import KeyRepository

FORMAT_VERSION = 1
# Bit i of the methods mask is METHODS[i]. Append only: tokens in flight
# were encoded with this order.
METHODS = ("password", "token", "application_credential", "totp", "external", "mapped", "oauth1")
_METHOD_BITS = {name: 1 << i for i, name in enumerate(METHODS)}
# Longer than any token Loom issues; refusing earlier saves the HMAC work.
MAX_TOKEN_LENGTH = 4096
AUTH_REQUIRED = "The request you have made requires authentication."

_EPOCH = dt.datetime(1970, 1, 1)
_HEX = frozenset("0123456789abcdef")


class TokenExpired(Unauthorized):
    """The token has expired."""


@dataclass(frozen=True)
class TokenPayload:
    """What a token says: who, authenticated how, until when, scoped to what.

    At most one of ``project_id``, ``domain_id`` and ``system`` is set; none
    for an unscoped token.
    """

    user_id: str
    methods: tuple[str, ...]
    issued_at: dt.datetime
    expires_at: dt.datetime
    audit_ids: tuple[str, ...]
    project_id: str | None = None
    domain_id: str | None = None
    system: str | None = None
    app_cred_id: str | None = None

    def __post_init__(self) -> None:
        scoped = (self.project_id is not None) + (self.domain_id is not None) + (self.system is not None)
        if scoped > 1:
            raise ValueError("a token is scoped to one project, one domain or the system, not several")


def new_audit_id() -> str:
    """A random 22-character url-safe id, as Keystone's audit ids: what
    revocations and the audit trail name a token (and its chain) by."""
    return base64.urlsafe_b64encode(secrets.token_bytes(16))[:22].decode("ascii")


class TokenProvider:
    """Issues and validates Fernet tokens with the keys of a repository."""

    def __init__(self, keys: KeyRepository) -> None:
        self._keys = keys
        self._key_set: tuple[bytes, ...] | None = None
        self._fernet: MultiFernet | None = None

    def issue(self, payload: TokenPayload) -> str:
        """The token for ``payload``, encrypted with the primary key."""
        return self._multi_fernet().encrypt(_pack(payload)).decode("ascii").rstrip("=")

    def decode(self, token: str, now: dt.datetime | None = None) -> TokenPayload:
        """The payload of ``token``; ``Unauthorized`` with the same message
        whatever is wrong with it (callers must not learn which check
        failed), ``TokenExpired`` once ``expires_at`` is not after ``now``."""
        fernet = self._multi_fernet()  # a broken key repository is no 401
        try:
            if len(token) > MAX_TOKEN_LENGTH:
                raise ValueError("too long")
            data = token.encode("ascii") + b"=" * (-len(token) % 4)
            payload = _unpack(fernet.decrypt(data))
        except (InvalidToken, ValueError, TypeError, IndexError, OverflowError):
            raise Unauthorized(AUTH_REQUIRED) from None
        if payload.expires_at <= (now if now is not None else timeutils.utcnow()):
            raise TokenExpired(AUTH_REQUIRED)
        return payload

    def _multi_fernet(self) -> MultiFernet:
        key_set = self._keys.snapshot()
        if key_set is not self._key_set or self._fernet is None:
            self._fernet = MultiFernet([Fernet(key) for key in key_set])
            self._key_set = key_set
        return self._fernet


# -- serialisation -----------------------------------------------------------


def _pack(payload: TokenPayload) -> bytes:
    fields: list[Any] = [
        FORMAT_VERSION,
        _pack_methods(payload.methods),
        _pack_id(payload.user_id),
        _pack_time(payload.issued_at),
        _pack_time(payload.expires_at),
        [_pack_audit_id(audit_id) for audit_id in payload.audit_ids],
        _pack_id(payload.project_id),
        _pack_id(payload.domain_id),
        payload.system,
        _pack_id(payload.app_cred_id),
    ]
    while fields[-1] is None:
        fields.pop()
    return msgpack.packb(fields, use_bin_type=True)


def _unpack(data: bytes) -> TokenPayload:
    fields = msgpack.unpackb(data, raw=False, use_list=True)
    if not isinstance(fields, list) or fields[0] != FORMAT_VERSION or not 6 <= len(fields) <= 10:
        raise ValueError("not a token payload Loom understands")
    fields += [None] * (10 - len(fields))
    _, methods, user_id, issued_at, expires_at, audit_ids, project_id, domain_id, system, app_cred_id = fields
    if not isinstance(system, str | None):
        raise ValueError("system scope must be a string")
    return TokenPayload(
        user_id=_unpack_id(user_id),
        methods=_unpack_methods(methods),
        issued_at=_unpack_time(issued_at),
        expires_at=_unpack_time(expires_at),
        audit_ids=tuple(_unpack_audit_id(audit_id) for audit_id in audit_ids),
        project_id=_unpack_optional_id(project_id),
        domain_id=_unpack_optional_id(domain_id),
        system=system,
        app_cred_id=_unpack_optional_id(app_cred_id),
    )


def _pack_methods(methods: tuple[str, ...]) -> int | list[str]:
    mask = 0
    for method in methods:
        bit = _METHOD_BITS.get(method, 0)
        if bit <= mask:  # unknown, repeated or out of order: keep the names
            return list(methods)
        mask |= bit
    return mask


def _unpack_methods(methods: int | list[str]) -> tuple[str, ...]:
    if isinstance(methods, int):
        return _methods_in_mask(methods)
    if not all(isinstance(method, str) for method in methods):
        raise ValueError("methods must be strings")
    return tuple(methods)


@functools.lru_cache(maxsize=64)
def _methods_in_mask(mask: int) -> tuple[str, ...]:
    return tuple(name for name, bit in _METHOD_BITS.items() if mask & bit)


def _pack_id(value: str | None) -> str | bytes | None:
    """16 bytes for a ``uuid4().hex`` (lowercase, so it unpacks to the same
    string), the string itself for anything else."""
    if value is not None and len(value) == 32 and _HEX.issuperset(value):
        return bytes.fromhex(value)
    return value


def _unpack_id(value: str | bytes) -> str:
    if isinstance(value, bytes):
        if len(value) != 16:
            raise ValueError("packed ids are 16 bytes")
        return value.hex()
    if not isinstance(value, str):
        raise ValueError("ids are strings")
    return value


def _unpack_optional_id(value: str | bytes | None) -> str | None:
    return None if value is None else _unpack_id(value)


def _pack_audit_id(value: str) -> str | bytes:
    """16 bytes for an id ``new_audit_id`` could have made, else the string."""
    if len(value) == 22:
        try:
            raw = base64.urlsafe_b64decode(value + "==")
        except ValueError:
            return value
        # The decoder skips stray characters; pack only what re-encodes as-is.
        if len(raw) == 16 and base64.urlsafe_b64encode(raw)[:22].decode("ascii") == value:
            return raw
    return value


def _unpack_audit_id(value: str | bytes) -> str:
    if isinstance(value, bytes):
        if len(value) != 16:
            raise ValueError("packed audit ids are 16 bytes")
        return base64.urlsafe_b64encode(value)[:22].decode("ascii")
    if not isinstance(value, str):
        raise ValueError("audit ids are strings")
    return value


def _pack_time(value: dt.datetime) -> int:
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _unpack_time(value: int) -> dt.datetime:
    if not isinstance(value, int):
        raise ValueError("times are integer microseconds")
    return _EPOCH + dt.timedelta(0, value // 1_000_000, value % 1_000_000)
