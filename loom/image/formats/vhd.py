"""VHD (QEMU's ``vpc``): fixed and dynamic disks; differencing disks name a parent file.

A fixed disk is raw data followed by a 512-byte footer; a dynamic disk also
carries a copy of the footer at offset 0, which QEMU reads first while other
tools read the one at the end: both copies are checked when both exist.
"""

from __future__ import annotations

from loom.image.formats.base import SECTOR, InspectionError, Source, unpack

COOKIE = b"conectix"

_FIXED, _DYNAMIC, _DIFFERENCING = 2, 3, 4
_MAX_GEOMETRY = 65535 * 16 * 255
_MAX_SECTORS = 0xFF000000  # QEMU's limit, about 2040 GiB
# Creators that mean current_size rather than the CHS geometry (QEMU's table).
_SIZE_CREATORS = (b"win ", b"qem2", b"d2v ", b"CTXS", b"tap\0")


def inspect(src: Source) -> int:
    head = src.read(0, SECTOR)
    if not head.startswith(COOKIE):  # a fixed disk: the footer is only at the end
        footer = src.read_end(SECTOR)
        size = _check_footer(footer)
        if _disk_type(footer) != _FIXED:
            raise InspectionError("vhd dynamic disk has no footer copy at its start")
        return size
    size = _check_footer(head)
    if _disk_type(head) == _DYNAMIC:
        (data_offset,) = unpack(">Q", head, 16)
        if src.read(data_offset, 8) != b"cxsparse":
            raise InspectionError("vhd dynamic disk header is missing where the footer says it is")
    end = src.read_end(SECTOR)
    if not end.startswith(COOKIE):
        raise InspectionError("vhd has no footer at its end (truncated upload?)")
    if _check_footer(end) != size or _disk_type(end) != _disk_type(head):
        raise InspectionError("vhd footer copies at the start and the end disagree")
    return size


def _disk_type(footer: bytes) -> int:
    return int(unpack(">I", footer, 60)[0])


def _check_footer(footer: bytes) -> int:
    (creator, current_size, cylinders, heads, sectors, disk_type) = unpack(">4s16xQHBBI", footer, 28)
    if disk_type == _DIFFERENCING:
        raise InspectionError("vhd is a differencing disk with a parent; images with backing files are refused")
    if disk_type not in (_FIXED, _DYNAMIC):
        raise InspectionError(f"vhd disk type {disk_type} is not supported")
    total_sectors = cylinders * heads * sectors
    if creator in _SIZE_CREATORS or total_sectors == _MAX_GEOMETRY:
        total_sectors = current_size // SECTOR
    if total_sectors > _MAX_SECTORS:
        raise InspectionError("vhd virtual size exceeds the format's limit of 2040 GiB")
    return total_sectors * SECTOR
