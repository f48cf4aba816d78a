"""What every format parser shares: the error it raises, and the view of the stream it reads from.

A parser is a function ``(Source) -> int`` returning the virtual size in
bytes, or raising :class:`InspectionError`. It reads the stream only through
:meth:`Source.read`; when the bytes it asks for were not kept, the source
raises :class:`NeedBytes`, which the inspector turns into "keep this region
as it streams by" while the upload runs, or into a refusal once it is over.
"""

from __future__ import annotations

import struct
from typing import Any, Protocol

from loom.errors import Invalid

SECTOR = 512


class InspectionError(Invalid):
    """The image content was refused by the format inspector."""


class NeedBytes(Exception):
    """A parser asked for bytes the inspector does not hold (yet).

    ``offset`` is None for a read relative to the end of a stream whose size
    is not known yet.
    """

    def __init__(self, offset: int | None, length: int) -> None:
        super().__init__(offset, length)
        self.offset = offset
        self.length = length


class Source(Protocol):
    """Random access to the regions of the upload the inspector kept."""

    @property
    def size(self) -> int | None:
        """The stream's total size, once it has ended."""

    def read(self, offset: int, length: int, *, clamp: bool = False) -> bytes:
        """``length`` bytes at ``offset``, or NeedBytes. With ``clamp``, a read
        running past the end of the stream returns what there is instead."""

    def read_end(self, length: int) -> bytes:
        """The last ``length`` bytes of the stream, or NeedBytes."""


def unpack(fmt: str, data: bytes, offset: int = 0) -> tuple[Any, ...]:
    return struct.unpack_from(fmt, data, offset)


def text_until_nul(data: bytes) -> str:
    """Descriptor text as C code reads it: up to the first NUL byte."""
    return data.split(b"\0", 1)[0].decode("utf-8", "replace")
