"""Password hashing with bcrypt, off the event loop.

bcrypt reads at most 72 bytes (the bcrypt package refuses more), so every
password is first reduced to base64(sha256(password)): 44 ASCII bytes,
without NULs, so long passwords are neither cut short nor refused and
every byte of them counts.

A hash at the default cost takes a quarter of a second of CPU: it runs in
a worker thread so the API keeps serving other requests meanwhile.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import secrets

import bcrypt

LOG = logging.getLogger(__name__)

DEFAULT_ROUNDS = 12
# Salt and digest of a hash of no one's password: checked when there is no
# real hash, so an unknown user name costs the same time as a wrong password.
_DUMMY_SALT_AND_DIGEST = b"gsAC/2T.8sLNHu7kJ3aG0OWY7L4UkdYy78clYcJXfYy.c5wNM64y6"


def _prehash(password: str) -> bytes:
    # surrogatepass: JSON can carry lone surrogates; hash them, do not fail.
    digest = hashlib.sha256(password.encode("utf-8", "surrogatepass")).digest()
    return base64.b64encode(digest)


def _hash(password: str, rounds: int) -> str:
    return bcrypt.hashpw(_prehash(password), bcrypt.gensalt(rounds)).decode("ascii")


def _verify(password: str, hashed: str | None, rounds: int) -> bool:
    if hashed is None:
        bcrypt.checkpw(_prehash(password), b"$2b$%02d$%s" % (rounds, _DUMMY_SALT_AND_DIGEST))
        return False
    try:
        return bcrypt.checkpw(_prehash(password), hashed.encode("ascii"))
    except ValueError:
        # A stored hash bcrypt cannot read matches no password; say so in
        # the log, as the account cannot log in until it is reset.
        LOG.warning("stored password hash is not a bcrypt hash; refusing the password")
        return False


async def hash_password(password: str, rounds: int = DEFAULT_ROUNDS) -> str:
    """The bcrypt hash to store for ``password``, at cost ``rounds`` (4 to
    31; each step doubles the time)."""
    return await asyncio.to_thread(_hash, password, rounds)


async def verify_password(password: str, hashed: str | None, *, rounds: int = DEFAULT_ROUNDS) -> bool:
    """Whether ``password`` matches ``hashed``. With ``hashed`` None (no such
    user, or one without a password) the answer is False after the same
    bcrypt work at cost ``rounds``, which should be the deployment's cost,
    so timing does not tell a wrong user name from a wrong password."""
    return await asyncio.to_thread(_verify, password, hashed, rounds)


def generate_secret() -> str:
    """A new application credential secret: 64 url-safe characters (384
    random bits)."""
    return secrets.token_urlsafe(48)
