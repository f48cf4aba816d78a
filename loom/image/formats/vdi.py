"""VDI (VirtualBox): normal and fixed images; undo and differencing images have a parent."""

from __future__ import annotations

from loom.image.formats.base import SECTOR, InspectionError, Source, unpack

SIGNATURE_OFFSET = 0x40
SIGNATURE = b"\x7f\x10\xda\xbe"  # 0xbeda107f, little-endian

_VERSION_1_1 = 0x00010001
_NORMAL, _FIXED, _UNDO, _DIFFERENCING = 1, 2, 3, 4
_HEADER_END = 0x1C8


def inspect(src: Source) -> int:
    header = src.read(0, _HEADER_END)
    version, _, image_type = unpack("<III", header, 0x44)
    if version != _VERSION_1_1:
        raise InspectionError(f"vdi version {version >> 16}.{version & 0xFFFF} is not supported (only 1.1 is)")
    if image_type in (_UNDO, _DIFFERENCING) or header[0x1B8:0x1C8].strip(b"\0"):
        raise InspectionError("vdi is a differencing image with a parent; images with backing files are refused")
    if image_type not in (_NORMAL, _FIXED):
        raise InspectionError(f"vdi image type {image_type} is not supported")
    if header[0x1A8:0x1B8].strip(b"\0"):
        raise InspectionError("vdi image links to another image; refused")
    (disk_size,) = unpack("<Q", header, 0x170)
    return int(disk_size) // SECTOR * SECTOR
