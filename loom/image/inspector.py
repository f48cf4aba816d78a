"""Disk-image format inspection on the upload stream.

Guards against the class of bug behind OSSA-2024-001 (CVE-2024-32498) and
its relatives: an image whose header makes QEMU open another host file (a
qcow2 backing or data file, VMDK extents, a VHD/VHDX/VDI parent), and an
image whose content is not the format it is declared as (a qcow2 uploaded
as ``raw`` is read as qcow2 by anything that probes).

The format is decided from content, by signatures at their defined offsets
only (a raw disk or an ISO may contain anything further in). Uploads stream
through :meth:`StreamInspector.feed` and are never buffered whole. Memory
held per upload is bounded by ``head_size`` (2 MiB: every header, qcow2
extensions up to the largest cluster, the ISO volume descriptor) plus at
most ``CAPTURE_BUDGET`` (2 MiB) of regions a header points to further on
(VHDX metadata, a distant VMDK descriptor) plus the last 1.5 KiB (VHD and
VMDK footers): about 4 MiB at worst, ~2 MiB in practice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from loom.image.formats import iso, qcow2, vdi, vhd, vhdx, vmdk
from loom.image.formats.base import InspectionError, NeedBytes, Source

__all__ = ["Inspection", "InspectionError", "StreamInspector", "check_declared"]

DEFAULT_MAX_VIRTUAL_SIZE = 16 << 40
HEAD_SIZE = 2 << 20
CAPTURE_BUDGET = 2 << 20
TAIL_SIZE = 3 * 512
_MAX_CAPTURES = 16
_MIN_HEAD_SIZE = 64 << 10  # the ISO volume descriptor ends at 34 KiB

_PARSERS: dict[str, Callable[[Source], int]] = {
    "qcow2": qcow2.inspect, "vmdk": vmdk.inspect, "vhd": vhd.inspect, "vhdx": vhdx.inspect,
    "vdi": vdi.inspect, "iso": iso.inspect,
}
# Formats QEMU would open but Loom does not accept: recognised only to refuse.
_UNSUPPORTED = ((b"QED\0", "qed"), (b"LUKS\xba\xbe", "luks"),
                (b"WithoutFreeSpace", "parallels"), (b"WithouFreSpacExt", "parallels"))
# Glance disk_format names and the content each must have.
_DECLARED = {"raw": "raw", "ami": "raw", "ari": "raw", "aki": "raw", "qcow2": "qcow2", "vmdk": "vmdk",
             "vhd": "vhd", "vhdx": "vhdx", "vdi": "vdi", "iso": "iso"}


@dataclass(frozen=True)
class Inspection:
    """What the content is: ``virtual_size`` is the disk size QEMU presents."""

    format: str
    virtual_size: int
    actual_size: int


def check_declared(inspection: Inspection, disk_format: str) -> None:
    """Refuse content that is not the declared ``disk_format``: a consumer
    trusting the declaration would read the image in another format."""
    if disk_format == "ploop":
        raise InspectionError("disk_format 'ploop' is not supported: its content cannot be inspected")
    expected = _DECLARED.get(disk_format)
    if expected is None:
        raise InspectionError(f"disk_format {disk_format!r} is not supported")
    if expected != inspection.format:
        raise InspectionError(
            f"image content is {inspection.format}, but disk_format is {disk_format}; "
            "images whose content does not match their disk_format are refused")


class _Capture:
    """A region past the head, kept as the stream goes by."""

    __slots__ = ("data", "length", "offset")

    def __init__(self, offset: int, length: int, initial: bytes) -> None:
        self.offset, self.length, self.data = offset, length, bytearray(initial)

    def absorb(self, start: int, view: memoryview) -> bool:
        """Take this region's part of a chunk starting at stream offset
        ``start``; True once the region is complete."""
        wanted, end = self.offset + len(self.data), self.offset + self.length
        if start <= wanted < start + len(view):
            self.data += view[wanted - start:min(len(view), end - start)]
        return len(self.data) == self.length


class _Kept:
    """The :class:`~loom.image.formats.base.Source` over what was kept."""

    def __init__(self, head: bytearray, captures: list[_Capture], tail: bytes, size: int | None) -> None:
        self._head, self._captures, self._tail, self._size = head, captures, tail, size

    @property
    def size(self) -> int | None:
        return self._size

    def read(self, offset: int, length: int, *, clamp: bool = False) -> bytes:
        if self._size is not None:
            if clamp:
                length = max(0, min(length, self._size - offset))
            if offset < 0 or offset + length > self._size:
                raise NeedBytes(max(offset, 0), length)
        end = offset + length
        if end <= len(self._head):
            return bytes(self._head[offset:end])
        for capture in self._captures:
            if capture.offset <= offset and end <= capture.offset + len(capture.data):
                return bytes(capture.data[offset - capture.offset:end - capture.offset])
        if self._size is not None and offset >= self._size - len(self._tail):
            start = offset - (self._size - len(self._tail))
            return self._tail[start:start + length]
        raise NeedBytes(offset, length)

    def read_end(self, length: int) -> bytes:
        if self._size is None:
            raise NeedBytes(None, length)
        if length > self._size:
            raise NeedBytes(0, length)
        return self.read(self._size - length, length)


def _detect(head: bytes | bytearray, tail: bytes | None) -> dict[str, str]:
    """Every format whose signature sits at its defined offset, and where."""
    found: dict[str, str] = {}
    if head.startswith(qcow2.MAGIC):
        found["qcow2"] = "offset 0"
    elif head.startswith(vhdx.SIGNATURE):
        found["vhdx"] = "offset 0"
    elif head.startswith(vhd.COOKIE):
        found["vhd"] = "offset 0"
    elif head.startswith((vmdk.SPARSE_MAGIC, vmdk.COWD_MAGIC)) or vmdk.looks_like_descriptor(bytes(head[:2048])):
        found["vmdk"] = "offset 0"
    else:
        found.update((name, "offset 0") for magic, name in _UNSUPPORTED if head.startswith(magic))
    if head[vdi.SIGNATURE_OFFSET:vdi.SIGNATURE_OFFSET + 4] == vdi.SIGNATURE:
        found["vdi"] = f"offset 0x{vdi.SIGNATURE_OFFSET:x}"
    if head[iso.MAGIC_OFFSET:iso.MAGIC_OFFSET + 5] == iso.MAGIC:
        found["iso"] = f"offset 0x{iso.MAGIC_OFFSET:x}"
    if tail is not None and len(tail) >= 512 and tail[-512:].startswith(vhd.COOKIE):
        found.setdefault("vhd", "the last 512 bytes")
    return found


def _decide(found: dict[str, str]) -> str:
    if len(found) > 1:
        where = ", ".join(f"{name} at {place}" for name, place in found.items())
        raise InspectionError(f"image content matches more than one format ({where}); ambiguous images are refused")
    if not found:
        return "raw"
    (name,) = found
    if name not in _PARSERS:
        raise InspectionError(f"image content is a {name} image, which is not accepted")
    return name


class StreamInspector:
    """Inspects an upload chunk by chunk; :meth:`finish` decides and validates.

    ``feed`` keeps the first ``head_size`` bytes, the last 1.5 KiB, and the
    few regions a header points to past the head (within CAPTURE_BUDGET);
    once the head is full and no region is pending, a chunk costs one small
    copy of its last 1.5 KiB.
    """

    def __init__(self, max_virtual_size: int = DEFAULT_MAX_VIRTUAL_SIZE, *, head_size: int = HEAD_SIZE) -> None:
        if max_virtual_size <= 0:
            raise ValueError("max_virtual_size must be positive")
        if head_size < _MIN_HEAD_SIZE:
            raise ValueError(f"head_size must be at least {_MIN_HEAD_SIZE} bytes")
        self.max_virtual_size = max_virtual_size
        self._head_size = head_size
        self._head = bytearray()
        self._tail = b""
        self._pos = 0  # stream offset of the next byte not yet handled
        self._captures: list[_Capture] = []
        self._pending: list[_Capture] = []
        self._budget = CAPTURE_BUDGET
        self._finished = False

    @property
    def buffered_bytes(self) -> int:
        """Bytes held right now: the memory bound in practice."""
        return len(self._head) + len(self._tail) + sum(len(c.data) for c in self._captures)

    def feed(self, chunk: bytes | bytearray | memoryview) -> None:
        """Account for the next chunk of the upload."""
        if self._finished:
            raise RuntimeError("the inspector has already finished")
        if self._pos < self._head_size or self._pending:
            self._feed_regions(memoryview(chunk))
        else:
            self._pos += len(chunk)
        if len(chunk) >= TAIL_SIZE:
            self._tail = bytes(chunk[-TAIL_SIZE:])
        elif chunk:
            self._tail = (self._tail + bytes(chunk))[-TAIL_SIZE:]

    def finish(self, total_size: int | None = None) -> Inspection:
        """Decide the format and check it is safe; InspectionError otherwise."""
        if total_size is not None and total_size != self._pos:
            raise ValueError(f"the inspector was fed {self._pos} bytes, not {total_size}")
        self._finished = True
        size = self._pos
        name = _decide(_detect(self._head, self._tail))
        virtual_size = size
        if name != "raw":
            source = _Kept(self._head, self._captures, self._tail, size)
            try:
                virtual_size = _PARSERS[name](source)
            except NeedBytes as need:
                raise self._unreadable(name, need, size) from None
            if virtual_size <= 0:
                raise InspectionError(f"{name} image has a virtual size of zero")
        if virtual_size > self.max_virtual_size:
            raise InspectionError(
                f"{name} image's virtual size of {virtual_size} bytes exceeds the limit of {self.max_virtual_size}")
        return Inspection(name, virtual_size, size)

    def _feed_regions(self, view: memoryview) -> None:
        if self._pos < self._head_size:
            take = min(len(view), self._head_size - self._pos)
            self._head += view[:take]
            self._pos += take
            view = view[take:]
            if self._pos == self._head_size:
                self._look_ahead()
        if view and self._pending:
            index = 0
            while index < len(self._pending):  # _look_ahead may add regions within this very chunk
                if self._pending[index].absorb(self._pos, view):
                    self._pending.pop(index)
                    self._look_ahead()
                else:
                    index += 1
        self._pos += len(view)

    def _look_ahead(self) -> None:
        """Parse what is kept so far; a region the parser wants past the
        head is kept when the stream reaches it. Errors wait for finish."""
        try:
            name = _decide(_detect(self._head, None))
            if name != "raw":
                _PARSERS[name](_Kept(self._head, self._captures, b"", None))
        except NeedBytes as need:
            if need.offset is not None:
                self._capture(need.offset, need.length)
        except InspectionError:
            pass

    def _capture(self, offset: int, length: int) -> None:
        end = offset + length
        if any(c.offset <= offset and end <= c.offset + c.length for c in self._captures):
            return
        if offset < self._pos and self._pos > len(self._head):
            return  # already streamed past: finish explains
        if length > self._budget or len(self._captures) >= _MAX_CAPTURES:
            return
        self._budget -= length
        capture = _Capture(offset, length, bytes(self._head[offset:min(end, self._pos)]) if offset < self._pos else b"")
        self._captures.append(capture)
        if len(capture.data) < length:
            self._pending.append(capture)

    @staticmethod
    def _unreadable(name: str, need: NeedBytes, size: int) -> InspectionError:
        end = (need.offset or 0) + need.length
        if need.offset is None or end > size:
            return InspectionError(
                f"{name} image is truncated: its headers need {end} bytes but the upload has {size}")
        return InspectionError(
            f"{name} image keeps header data at bytes {need.offset}..{end}, which could not be kept while "
            "streaming (out of order, or larger than the inspection limit)")
