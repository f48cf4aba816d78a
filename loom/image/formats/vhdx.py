"""VHDX: the virtual size lives in the metadata region, found via the region table.

The metadata region is usually a few MiB into the file, past the head the
inspector keeps, so its table (64 KiB) and the two items read from it are
asked for in file order and kept as they stream by. A parent locator, or
the HasParent flag, makes the image a differencing disk: refused.
"""

from __future__ import annotations

import uuid

from loom.image.formats.base import SECTOR, InspectionError, Source, unpack

SIGNATURE = b"vhdxfile"

_HEADER_OFFSETS = (64 << 10, 128 << 10)
_REGION_TABLE = 192 << 10
_METADATA_TABLE_SIZE = 64 << 10
_MAX_ENTRIES = 2047
_HAS_PARENT = 0x2
_REQUIRED_REGION = 0x1
_REQUIRED_ITEM = 0x4


def _guid(text: str) -> bytes:
    return uuid.UUID(text).bytes_le


_BAT = _guid("2DC27766-F623-4200-9D64-115E9BFD4A08")
_METADATA = _guid("8B7CA206-4790-4B9A-B8FE-575F050F886E")
_FILE_PARAMETERS = _guid("CAA16737-FA36-4D43-B3B6-33F0AA44E76B")
_VIRTUAL_DISK_SIZE = _guid("2FA54224-CD1B-4876-B211-5DBED83BF4B8")
_PARENT_LOCATOR = _guid("A8D35F2D-B30B-454D-ABF7-D3D84834AB0C")
_KNOWN_ITEMS = frozenset({
    _FILE_PARAMETERS, _VIRTUAL_DISK_SIZE, _PARENT_LOCATOR,
    _guid("BECA12AB-B2E6-4523-93EF-C309E000C746"),  # page 83 data
    _guid("8141BF1D-A96F-4709-BA47-F233A8FAAB5F"),  # logical sector size
    _guid("CDA348C7-445D-4471-9CC9-E9885251C556"),  # physical sector size
})


def inspect(src: Source) -> int:
    headers = [src.read(offset, 68) for offset in _HEADER_OFFSETS]
    if not any(h.startswith(b"head") and unpack("<H", h, 66)[0] == 1 for h in headers):
        raise InspectionError("vhdx has no valid header")
    items = _metadata_items(src, _metadata_region(src))
    if _PARENT_LOCATOR in items:
        raise InspectionError("vhdx has a parent locator; images with backing files are refused")
    if _FILE_PARAMETERS not in items or _VIRTUAL_DISK_SIZE not in items:
        raise InspectionError("vhdx metadata lacks the file parameters or the virtual disk size")
    # Read in file order: the stream passes the earlier item first.
    values = {guid: src.read(offset, 8) for guid, offset in sorted(items.items(), key=lambda item: item[1])
              if guid in (_FILE_PARAMETERS, _VIRTUAL_DISK_SIZE)}
    if unpack("<II", values[_FILE_PARAMETERS])[1] & _HAS_PARENT:
        raise InspectionError("vhdx is a differencing disk (HasParent); images with backing files are refused")
    (size,) = unpack("<Q", values[_VIRTUAL_DISK_SIZE])
    return int(size) // SECTOR * SECTOR


def _metadata_region(src: Source) -> int:
    signature, _, count = unpack("<4sII", src.read(_REGION_TABLE, 12))
    if signature != b"regi" or count > _MAX_ENTRIES:
        raise InspectionError("vhdx region table is invalid")
    entries = src.read(_REGION_TABLE + 16, 32 * count)
    metadata = None
    for index in range(count):
        guid, offset, length, flags = unpack("<16sQII", entries, 32 * index)
        if guid == _METADATA:
            if length < _METADATA_TABLE_SIZE:
                raise InspectionError("vhdx metadata region is too small")
            metadata = int(offset)
        elif guid != _BAT and flags & _REQUIRED_REGION:
            raise InspectionError(f"vhdx has an unknown required region {uuid.UUID(bytes_le=guid)}")
    if metadata is None:
        raise InspectionError("vhdx has no metadata region")
    return metadata


def _metadata_items(src: Source, region: int) -> dict[bytes, int]:
    """The absolute offset of every metadata item, by item GUID."""
    table = src.read(region, _METADATA_TABLE_SIZE)
    signature, count = unpack("<8s2xH", table)
    if signature != b"metadata" or count > _MAX_ENTRIES:
        raise InspectionError("vhdx metadata table is invalid")
    items = {}
    for index in range(count):
        guid, offset, length, flags = unpack("<16sIII", table, 32 + 32 * index)
        if guid in (_FILE_PARAMETERS, _VIRTUAL_DISK_SIZE) and length < 8:
            raise InspectionError("vhdx metadata item is too short")
        if guid not in _KNOWN_ITEMS and flags & _REQUIRED_ITEM:
            raise InspectionError(f"vhdx has an unknown required metadata item {uuid.UUID(bytes_le=guid)}")
        items[guid] = region + offset
    return items
