"""Keeping a fake host's guests on disk, so they outlive its compute service."""

from __future__ import annotations

import json
import os
from pathlib import Path

from loom import errors
from loom.virt.fake.guest import FakeGuest

# In a state directory: the host whose guests it holds.
HOST_FILE = "host"
# In a state directory: the file name prefix of a kept source copy.
KEPT_PREFIX = "kept-"


def _load(path: Path, host: str, prefix: str = "") -> dict[str, FakeGuest]:
    """The guests in ``path`` (or with ``prefix``, the kept source copies)."""
    if not path.is_dir():
        return {}
    owner = path / HOST_FILE
    if owner.exists() and owner.read_text(encoding="utf-8").strip() != host:
        raise errors.Invalid(f"{path} holds the guests of host {owner.read_text(encoding='utf-8').strip()}, "
                             f"not of {host}")
    files = [f for f in sorted(path.glob(f"{prefix}*.json")) if f.name.startswith(KEPT_PREFIX) == bool(prefix)]
    guests = (FakeGuest.from_dict(json.loads(f.read_text(encoding="utf-8"))) for f in files)
    return {guest.spec.uuid: guest for guest in guests}


def _claim_directory(path: Path, host: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    (path / HOST_FILE).write_text(host + "\n", encoding="utf-8")


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)
