"""The Fernet key repository tokens are encrypted with, laid out as Keystone's.

A directory of key files named by integers. ``0`` is the *staged* key: it
decrypts but never encrypts, so it can be copied to every API host before a
rotation makes it the primary there. The highest number is the *primary*:
it encrypts new tokens. Every other key only decrypts, so tokens issued
before a rotation stay valid until their key is pruned.

Rotation (``rotate``, run by an operator on one host, the directory then
copied to the others) only renames and writes files; every API process sees
the change on its own, because ``keys`` looks at the directory again at
most once per second.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from cryptography.fernet import Fernet

from loom.errors import LoomError

STAGED = 0
# How often, in seconds, ``keys`` looks for a rotation made elsewhere.
RELOAD_INTERVAL = 1.0
_LOCK_NAME = ".lock"
_TEMP_PREFIX = ".tmp-"
# A key file can vanish between listing and reading while a rotation runs.
_LOAD_ATTEMPTS = 5


class KeyRepositoryError(LoomError):
    """The Fernet key repository is missing, empty or holds a corrupt key."""

    status = 500


class KeyRepository:
    """The key files under ``path``; at most ``max_active_keys`` of them
    (the staged key included, as in Keystone) survive a rotation."""

    def __init__(
        self,
        path: Path,
        max_active_keys: int = 3,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_active_keys < 2:
            raise ValueError("max_active_keys must be at least 2: the staged key and the primary key")
        self.path = Path(path)
        self.max_active_keys = max_active_keys
        self._clock = clock
        self._checked_at = -float("inf")
        self._signature: tuple[int, tuple[str, ...]] | None = None
        self._keys: tuple[bytes, ...] = ()

    # -- writing ---------------------------------------------------------

    def setup(self) -> None:
        """Create the directory with a staged and a primary key unless it
        already holds keys; safe to run on every start."""
        if not self.path.exists():
            self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(self.path, 0o700)  # mkdir's mode is filtered by the umask
        with self._locked():
            numbers = self._numbers()
            if STAGED not in numbers:
                self._write_key(STAGED, Fernet.generate_key())
                numbers.add(STAGED)
            if max(numbers) == STAGED:
                # Fresh (or half-made) repository: the first rotation makes
                # a primary of the staged key and stages a new one.
                self._rotate_locked(numbers)
        self._invalidate()

    def rotate(self) -> None:
        """Promote the staged key to primary, stage a new key, and prune the
        oldest secondary keys beyond ``max_active_keys``."""
        with self._locked():
            numbers = self._numbers()
            if STAGED not in numbers:
                raise KeyRepositoryError(
                    f"Fernet key repository {self.path} has no staged key {STAGED}; run setup first"
                )
            self._rotate_locked(numbers)
        self._invalidate()

    def _rotate_locked(self, numbers: set[int]) -> None:
        new_primary = max(numbers) + 1
        # Write the new staged key aside first, so the directory never lacks
        # a staged key for longer than one rename.
        staged_temp = self._write_temp(Fernet.generate_key())
        try:
            os.rename(self.path / str(STAGED), self.path / str(new_primary))
        except BaseException:
            os.unlink(staged_temp)
            raise
        os.replace(staged_temp, self.path / str(STAGED))
        numbers.add(new_primary)
        # Oldest first; the staged key and the new primary are never pruned.
        prunable = sorted(n for n in numbers if n not in (STAGED, new_primary))
        excess = len(numbers) - self.max_active_keys
        for number in prunable[: max(excess, 0)]:
            (self.path / str(number)).unlink(missing_ok=True)
        self._sync_directory()

    def _write_key(self, number: int, key: bytes) -> None:
        os.replace(self._write_temp(key), self.path / str(number))
        self._sync_directory()

    def _write_temp(self, key: bytes) -> str:
        """A fully written, fsynced, 0600 file in the repository holding
        ``key``, under a name ``keys`` ignores until it is renamed."""
        fd, temp = tempfile.mkstemp(dir=self.path, prefix=_TEMP_PREFIX)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, key)
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            os.unlink(temp)
            raise
        os.close(fd)
        return temp

    def _sync_directory(self) -> None:
        fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialise setup and rotation between processes on this host."""
        fd = os.open(self.path / _LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    # -- reading ---------------------------------------------------------

    def keys(self) -> list[bytes]:
        """The keys, primary first, then the others (staged included)."""
        return list(self.snapshot())

    def snapshot(self) -> tuple[bytes, ...]:
        """The keys as ``keys`` orders them, as a tuple that stays the same
        object until the key set changes, so callers can cache what they
        build from it and compare with ``is``."""
        now = self._clock()
        if now - self._checked_at >= RELOAD_INTERVAL:
            self._refresh()
            self._checked_at = now
        return self._keys

    def _invalidate(self) -> None:
        self._checked_at = -float("inf")

    def _refresh(self) -> None:
        for _ in range(_LOAD_ATTEMPTS):
            signature = self._read_signature()
            if signature == self._signature:
                return
            try:
                keys = tuple(self._read_key(int(name)) for name in signature[1])
            except FileNotFoundError:
                continue  # a rotation renamed a file under us: look again
            self._keys, self._signature = keys, signature
            return
        raise KeyRepositoryError(f"Fernet key repository {self.path} keeps changing while being read")

    def _read_signature(self) -> tuple[int, tuple[str, ...]]:
        """The directory's mtime and key file names, primary first: what
        tells a rotation (here or copied in from another host) happened."""
        try:
            mtime = os.stat(self.path).st_mtime_ns
            numbers = self._numbers()
        except OSError as exc:
            raise KeyRepositoryError(
                f"Fernet key repository {self.path} cannot be read ({exc.strerror}); run setup"
            ) from None
        if not numbers:
            raise KeyRepositoryError(f"Fernet key repository {self.path} holds no keys; run setup")
        primary = max(numbers)
        ordered = [primary, *sorted((n for n in numbers if n != primary), reverse=True)]
        return mtime, tuple(str(n) for n in ordered)

    def _numbers(self) -> set[int]:
        """Numbers of the key files; temporary files, the lock and anything
        else (an rsync's ``.1.XyZ``, a ``01``) are not keys."""
        return {
            int(name)
            for name in os.listdir(self.path)
            if name.isascii() and name.isdigit() and str(int(name)) == name
        }

    def _read_key(self, number: int) -> bytes:
        path = self.path / str(number)
        try:
            key = path.read_bytes().strip()
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise KeyRepositoryError(f"Fernet key file {path} cannot be read: {exc.strerror}") from None
        try:
            raw = base64.urlsafe_b64decode(key)
        except ValueError:  # binascii.Error included
            raw = b""
        # The decoder skips stray characters; a key must also re-encode as-is.
        if len(raw) != 32 or base64.urlsafe_b64encode(raw) != key:
            raise KeyRepositoryError(
                f"Fernet key file {path} is corrupt: not a url-safe base64 encoded 32-byte key"
            )
        return key
