"""VMDK: only a single self-contained sparse file is accepted.

A VMDK descriptor names extent files by path, and QEMU opens them: a
descriptor uploaded on its own, or a sparse header with zero capacity (QEMU
then follows the embedded descriptor's extents), reads host files. QEMU also
takes ``parentFileNameHint`` from the 10 KiB at offset 512 as a backing file,
whatever the header says, so that window is searched as QEMU searches it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from loom.image.formats.base import SECTOR, InspectionError, Source, text_until_nul, unpack

SPARSE_MAGIC = b"KDMV"
COWD_MAGIC = b"COWD"

_ALLOWED_CREATE_TYPES = ("monolithicSparse", "streamOptimized")
_PARENT_HINT = b"parentFileNameHint"
_QEMU_DESC_OFFSET = 0x200  # where QEMU looks for parentFileNameHint in a sparse file
_QEMU_DESC_SIZE = 20 * SECTOR
_MAX_DESCRIPTOR = 1 << 20  # QEMU reads at most this much descriptor text
_STANDALONE_READ = 64 << 10  # enough to name its files; it is refused whatever the rest says
_GD_AT_END = 0xFFFFFFFFFFFFFFFF
_MARKER_EOS, _MARKER_FOOTER = 0, 3

_EXTENT = re.compile(r"^\s*(RW|RDONLY|NOACCESS)\s+(\d{1,20})\s+(\w+)(?:\s+\"([^\"]*)\")?", re.MULTILINE)
_CREATE_TYPE = re.compile(r"^\s*createType\s*=\s*\"?([^\"\s]*)", re.MULTILINE)
_VERSION_LINE = re.compile(r"version=[123]")


@dataclass(frozen=True)
class Extent:
    access: str
    sectors: int
    kind: str
    filename: str | None


@dataclass(frozen=True)
class Descriptor:
    create_type: str | None
    extents: tuple[Extent, ...]
    has_parent: bool


def looks_like_descriptor(head: bytes) -> bool:
    """QEMU's probe for a text descriptor: after comments and blank lines,
    the first line is ``version=N``. The usual banner counts too."""
    if head.startswith(b"# Disk DescriptorFile"):
        return True
    for raw_line in head[:2048].split(b"\n"):
        line = raw_line.strip(b" \r")
        if not line or line.startswith(b"#"):
            continue
        return _VERSION_LINE.fullmatch(line.decode("latin-1")) is not None
    return False


def parse_descriptor(text: str) -> Descriptor:
    extents = tuple(
        Extent(access, int(sectors), kind.upper(), filename)
        for access, sectors, kind, filename in _EXTENT.findall(text))
    create_type = match.group(1) if (match := _CREATE_TYPE.search(text)) else None
    return Descriptor(create_type, extents, "parentFileNameHint" in text)


def inspect(src: Source) -> int:
    magic = src.read(0, 4)
    if magic == COWD_MAGIC:
        raise InspectionError("VMDK3 (COWD) sparse images are not supported")
    if magic == SPARSE_MAGIC:
        return _inspect_sparse(src)
    return _refuse_descriptor_file(src)


def _inspect_sparse(src: Source) -> int:
    header = src.read(0, 72)
    _, version, _, capacity, _, desc_offset, desc_size, _, _, gd_offset, _ = unpack("<4sIIQQQQIQQQ", header)
    if version not in (1, 2, 3):
        raise InspectionError(f"vmdk sparse version {version} is not supported")
    window = src.read(_QEMU_DESC_OFFSET, _QEMU_DESC_SIZE, clamp=True).split(b"\0", 1)[0]
    if _PARENT_HINT in window:
        raise InspectionError("vmdk image has a parent (parentFileNameHint); images with backing files are refused")
    if capacity == 0:
        raise InspectionError(
            "vmdk sparse header has zero capacity, which makes QEMU follow the descriptor's extent files; refused")

    descriptor = None
    if desc_offset:
        if not 0 < desc_size * SECTOR <= _MAX_DESCRIPTOR:
            raise InspectionError(f"vmdk embedded descriptor size of {desc_size} sectors is invalid")
        descriptor = parse_descriptor(text_until_nul(src.read(desc_offset * SECTOR, desc_size * SECTOR)))
        _check_embedded(descriptor)

    if gd_offset == _GD_AT_END:
        capacity = _footer_capacity(src)
    if descriptor is not None and descriptor.extents[0].sectors != capacity:
        raise InspectionError(
            f"vmdk descriptor describes {descriptor.extents[0].sectors} sectors but the header {capacity}")
    return capacity * SECTOR


def _check_embedded(descriptor: Descriptor) -> None:
    if descriptor.has_parent:
        raise InspectionError("vmdk image has a parent (parentFileNameHint); images with backing files are refused")
    if descriptor.create_type is not None and descriptor.create_type not in _ALLOWED_CREATE_TYPES:
        raise InspectionError(
            f"vmdk createType {descriptor.create_type!r} is not accepted (only monolithicSparse and streamOptimized)")
    if len(descriptor.extents) != 1 or descriptor.extents[0].kind != "SPARSE":
        described = ", ".join(f"{e.kind} {e.filename or ''}".strip() for e in descriptor.extents) or "none"
        raise InspectionError(
            f"vmdk descriptor must describe exactly one SPARSE extent, the file itself; it describes: {described}")


def _footer_capacity(src: Source) -> int:
    """streamOptimized files may keep their real header in a footer, which
    QEMU prefers over the one at the start."""
    footer = src.read_end(3 * SECTOR)
    markers = unpack("<QII", footer) + unpack("<QII", footer, 2 * SECTOR)
    if footer[SECTOR:SECTOR + 4] != SPARSE_MAGIC or markers[1:] != (0, _MARKER_FOOTER, 0, 0, _MARKER_EOS):
        raise InspectionError("vmdk streamOptimized footer is missing or invalid (truncated upload?)")
    (capacity,) = unpack("<Q", footer, SECTOR + 12)
    return capacity


def _refuse_descriptor_file(src: Source) -> int:
    """A descriptor on its own holds no data: every extent is another file."""
    descriptor = parse_descriptor(text_until_nul(src.read(0, _STANDALONE_READ, clamp=True)))
    files = ", ".join(repr(e.filename) for e in descriptor.extents if e.filename)
    kind = f" (createType {descriptor.create_type!r})" if descriptor.create_type else ""
    if files:
        raise InspectionError(
            f"vmdk descriptor file{kind} refers to other files ({files}); "
            "only single-file monolithicSparse and streamOptimized images are accepted")
    raise InspectionError(f"vmdk descriptor file{kind} holds no disk data; only single-file vmdk images are accepted")
