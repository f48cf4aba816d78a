"""ISO 9660: raw data to QEMU, recognised by the volume descriptor at sector 16."""

from __future__ import annotations

from loom.image.formats.base import InspectionError, Source, unpack

DESCRIPTOR_OFFSET = 16 * 2048
MAGIC_OFFSET = DESCRIPTOR_OFFSET + 1
MAGIC = b"CD001"
_PRIMARY = 1


def inspect(src: Source) -> int:
    """The file size, which is what QEMU presents; a primary volume larger
    than the upload means it was cut short."""
    descriptor = src.read(DESCRIPTOR_OFFSET, 2048)
    size = src.size
    if descriptor[0] == _PRIMARY and size is not None:
        (blocks,) = unpack("<I", descriptor, 80)
        (block_size,) = unpack("<H", descriptor, 128)
        if blocks * block_size > size:
            raise InspectionError(
                f"iso volume is {blocks * block_size} bytes but the upload only {size} (truncated upload?)")
    return size or 0
