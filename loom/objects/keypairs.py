"""Keypairs: public keys a user injects into servers. Imported keys are
parsed, not trusted; generated ones return their private key once."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509 import load_pem_x509_certificate
from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from loom.db import fast
from loom.db.models.compute import KeyPair
from loom.errors import Conflict, Invalid, NotFound

SSH_TYPES = ("ssh-rsa", "ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521")


def fingerprint_ssh(public_key: str) -> str:
    """The key's MD5 fingerprint, colon-separated, as Nova prints it (and
    as ``ssh-keygen -l -E md5`` does after its ``MD5:`` prefix)."""
    parts = public_key.strip().split()
    if len(parts) < 2 or parts[0] not in SSH_TYPES:
        raise Invalid("Keypair data is invalid: the public key is not an OpenSSH key of a supported type.")
    try:
        serialization.load_ssh_public_key(" ".join(parts[:2]).encode())
        blob = base64.b64decode(parts[1], validate=True)
    except Exception:
        raise Invalid("Keypair data is invalid: failed to parse the public key.") from None
    digest = hashlib.md5(blob, usedforsecurity=False).hexdigest()
    return ":".join(digest[i:i + 2] for i in range(0, 32, 2))


def fingerprint_x509(certificate: str) -> str:
    try:
        cert = load_pem_x509_certificate(certificate.encode())
    except Exception:
        raise Invalid("Keypair data is invalid: failed to parse the x509 certificate.") from None
    # SHA-1 of the certificate, as Nova computes it for x509 keypairs.
    digest = cert.fingerprint(hashes.SHA1())
    return ":".join(f"{b:02x}" for b in digest)


def generate(key_type: str = "ssh") -> tuple[str, str]:
    """A new key pair: (private key in OpenSSH PEM, public key line)."""
    if key_type != "ssh":
        raise Invalid("Generating x509 keypairs is not supported: import a certificate.")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return private, public.decode() + " Generated-by-Loom"


async def get(session: AsyncSession, user_id: str, name: str) -> KeyPair:
    row = await session.scalar(select(KeyPair).where(KeyPair.user_id == user_id, KeyPair.name == name))
    if row is None:
        raise NotFound(f"Keypair {name} not found for user {user_id}")
    return row


_PUBLIC_KEY = fast.Statement(select(KeyPair.public_key).where(KeyPair.user_id == bindparam("user_id"),
                                                              KeyPair.name == bindparam("name")))


async def public_key(session: fast.Session, user_id: str, name: str) -> str:
    """The public key of the user's key pair ``name`` (``get`` without the ORM)."""
    row = await fast.first(session, _PUBLIC_KEY, {"user_id": user_id, "name": name})
    if row is None:
        raise NotFound(f"Keypair {name} not found for user {user_id}")
    return str(row.public_key)


async def list_(session: AsyncSession, user_id: str, limit: int | None, marker: str | None) -> list[KeyPair]:
    rows = list(await session.scalars(select(KeyPair).where(KeyPair.user_id == user_id).order_by(KeyPair.name)))
    if marker is not None:
        names = [k.name for k in rows]
        if marker not in names:
            raise Invalid(f"marker [{marker}] not found")
        rows = rows[names.index(marker) + 1:]
    return rows[:limit] if limit is not None else rows


async def create(session: AsyncSession, *, user_id: str, name: str, public_key: str, key_type: str) -> KeyPair:
    """Insert a key pair; the caller checks the quota after, in the same
    transaction (quotas.check_key_pairs)."""
    fingerprint = fingerprint_x509(public_key) if key_type == "x509" else fingerprint_ssh(public_key)
    if await session.scalar(select(KeyPair.id).where(KeyPair.user_id == user_id, KeyPair.name == name)):
        raise Conflict(f"Key pair '{name}' already exists.")
    row = KeyPair(name=name, user_id=user_id, public_key=public_key.strip(), fingerprint=fingerprint, type=key_type)
    session.add(row)
    await session.flush()
    return row


async def delete(session: AsyncSession, user_id: str, name: str) -> None:
    await session.delete(await get(session, user_id, name))


def view(k: KeyPair, **extra: Any) -> dict[str, Any]:
    return {"name": k.name, "public_key": k.public_key, "fingerprint": k.fingerprint, **extra}
