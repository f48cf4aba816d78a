"""The serial console log, kept to a bounded size.

QEMU appends to ``console.log`` (the serial socket chardev's log, with
``logappend=on``, so every write goes to the end even after the file is
cut). When the log
passes the cap, its content moves to ``console.log.0`` (replacing the
previous one) and the live file is emptied: the disk holds at most about
twice the cap per guest. Output written between the copy and the cut is
lost; a line or two, rarely, is the price of not running a log daemon.
"""

from __future__ import annotations

import os
from pathlib import Path


def previous(path: Path) -> Path:
    return path.with_name(path.name + ".0")


def rotate(path: Path, cap: int) -> bool:
    """Rotate ``path`` if it is larger than ``cap`` bytes; whether it was."""
    try:
        if path.stat().st_size <= cap:
            return False
        data = path.read_bytes()
    except FileNotFoundError:
        return False
    temporary = previous(path).with_name(path.name + ".0.tmp")
    temporary.write_bytes(data[-cap:])
    os.replace(temporary, previous(path))
    os.truncate(path, 0)
    return True


def read(path: Path, cap: int, length: int | None = None) -> str:
    """The log (the rotated part first), its last ``length`` lines if given."""
    rotate(path, cap)
    data = b""
    for part in (previous(path), path):
        try:
            data += part.read_bytes()
        except FileNotFoundError:
            pass
    text = data.decode(errors="replace").replace("\r", "")
    if length is None:
        return text
    if length <= 0:
        return ""
    lines = text.splitlines(keepends=True)
    return "".join(lines[-length:])
