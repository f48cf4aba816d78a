"""qcow2: refuse anything that makes QEMU open a second file.

A backing file or an external data file is a path QEMU opens on the host
that reads the image (OSSA-2024-001, CVE-2024-32498); incompatible feature
bits we do not know could change how the file is read, so they are refused
too, as QEMU would refuse them.
"""

from __future__ import annotations

from loom.image.formats.base import SECTOR, InspectionError, Source, unpack

MAGIC = b"QFI\xfb"

_V2_HEADER = 72
_V3_HEADER = 104
_DIRTY, _CORRUPT, _DATA_FILE, _COMPRESSION, _EXTENDED_L2 = (1 << bit for bit in range(5))
_KNOWN_INCOMPATIBLE = _DIRTY | _CORRUPT | _DATA_FILE | _COMPRESSION | _EXTENDED_L2
_EXT_END = 0
_EXT_DATA_FILE = 0x44415441
_MAX_L1_BYTES = 32 << 20  # QEMU's QCOW_MAX_L1_SIZE


def inspect(src: Source) -> int:
    """The virtual size; refuses backing files, data files and unknown features."""
    (_, version, backing_offset, backing_size, cluster_bits, size, _, l1_size, *_) = unpack(
        ">4sIQIIQIIQ", src.read(0, _V2_HEADER))
    if version not in (2, 3):
        raise InspectionError(f"qcow2 version {version} is not supported (only 2 and 3 are)")
    if backing_offset or backing_size:
        raise InspectionError("qcow2 image has a backing file; images with backing files are refused")
    if not 9 <= cluster_bits <= 21:
        raise InspectionError(f"qcow2 cluster_bits {cluster_bits} is outside the valid range 9..21")
    cluster_size = 1 << cluster_bits

    incompatible, header_length = 0, _V2_HEADER
    if version == 3:
        incompatible, _, _, refcount_order, header_length = unpack(">QQQII", src.read(_V2_HEADER, 32))
        if header_length < _V3_HEADER or header_length % 8 or header_length > cluster_size:
            raise InspectionError(f"qcow2 header length {header_length} is invalid")
        if refcount_order > 6:
            raise InspectionError(f"qcow2 refcount_order {refcount_order} is invalid")
    if incompatible & _DATA_FILE:
        raise InspectionError("qcow2 image uses an external data file; images with data files are refused")
    if incompatible & _CORRUPT:
        raise InspectionError("qcow2 image is marked corrupt")
    if unknown := incompatible & ~_KNOWN_INCOMPATIBLE:
        raise InspectionError(f"qcow2 image has unknown incompatible features (0x{unknown:x}); refused")

    _check_extensions(src, header_length, cluster_size)

    entries_per_l2 = cluster_size // (16 if incompatible & _EXTENDED_L2 else 8)
    bytes_per_l1_entry = entries_per_l2 * cluster_size
    if l1_size < -(-size // bytes_per_l1_entry) or l1_size * 8 > _MAX_L1_BYTES:
        raise InspectionError(
            f"qcow2 virtual size {size} is inconsistent with its L1 table of {l1_size} entries")
    return size // SECTOR * SECTOR


def _check_extensions(src: Source, offset: int, end: int) -> None:
    """Header extensions live between the header and the end of the first
    cluster, as QEMU reads them; a data-file name among them is refused
    whether or not the feature bit claims one."""
    while offset + 8 <= end:
        kind, length = unpack(">II", src.read(offset, 8))
        if kind == _EXT_END:
            return
        if kind == _EXT_DATA_FILE:
            raise InspectionError("qcow2 image names an external data file; images with data files are refused")
        offset += 8
        if length > end - offset:
            raise InspectionError(f"qcow2 header extension 0x{kind:08x} runs past the first cluster")
        offset += (length + 7) & ~7
