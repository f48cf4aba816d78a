"""The disk-image format inspector: real images made by qemu-img, images
corrupted or crafted by hand, every one streamed in chunks of odd sizes so
no result depends on where a chunk boundary falls."""

from __future__ import annotations

import contextlib
import itertools
import json
import random
import shutil
import struct
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from loom.errors import Invalid
from loom.image.inspector import (
    CAPTURE_BUDGET,
    HEAD_SIZE,
    TAIL_SIZE,
    Inspection,
    InspectionError,
    StreamInspector,
    check_declared,
)

MiB = 1 << 20
QEMU_IMG = shutil.which("qemu-img")
needs_qemu_img = pytest.mark.skipif(QEMU_IMG is None, reason="qemu-img is not on PATH (Debian: qemu-utils)")

# Chunkings: "7" walks through the first 4 MiB (every header, the end of the
# head, the VHDX metadata) seven bytes at a time, then goes faster.
CHUNKINGS = ["7", "4096", "65536", "jagged"]


def chunk_sizes(chunking: str) -> Iterator[int]:
    if chunking == "7":
        return itertools.chain(itertools.repeat(7, (4 * MiB) // 7 + 1), itertools.repeat(65531))
    if chunking == "jagged":
        return itertools.cycle((7, 1, 4093, 65537, 511, 1048573))
    return itertools.repeat(int(chunking))


def chunked(data: bytes, chunking: str) -> Iterator[bytes]:
    offset = 0
    for size in chunk_sizes(chunking):
        if offset >= len(data):
            return
        yield data[offset:offset + size]
        offset += size


def inspect(data: bytes, chunking: str = "jagged", **options: int) -> Inspection:
    inspector = StreamInspector(**options)
    for chunk in chunked(data, chunking):
        inspector.feed(chunk)
    return inspector.finish(len(data))


def refused(data: bytes, chunking: str = "jagged", **options: int) -> str:
    with pytest.raises(InspectionError) as caught:
        inspect(data, chunking, **options)
    return caught.value.message


class Images:
    """Images made by qemu-img once per session, by name."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._made: dict[str, Path] = {}

    def make(self, name: str, fmt: str, size: str | None, *options: str) -> Path:
        if name not in self._made:
            path = self.root / name
            args = [str(QEMU_IMG), "create", "-q", "-f", fmt, *options, str(path)]
            subprocess.run([*args, size] if size is not None else args, check=True, cwd=self.root)
            self._made[name] = path
        return self._made[name]

    def read(self, name: str, fmt: str, size: str | None, *options: str) -> bytes:
        return self.make(name, fmt, size, *options).read_bytes()


def qemu_virtual_size(path: Path, fmt: str) -> int:
    info = subprocess.run([str(QEMU_IMG), "info", "-f", fmt, "--output=json", str(path)],
                          check=True, capture_output=True, text=True)
    return int(json.loads(info.stdout)["virtual-size"])


@pytest.fixture(scope="session")
def images(tmp_path_factory: pytest.TempPathFactory) -> Images:
    if QEMU_IMG is None:
        pytest.skip("qemu-img is not on PATH (Debian: qemu-utils)")
    return Images(tmp_path_factory.mktemp("images"))


def patch(data: bytes, offset: int, new: bytes) -> bytes:
    return data[:offset] + new + data[offset + len(new):]


# --- images qemu-img makes, accepted with QEMU's virtual size ---------------------------------------------------

GOOD = {
    # name: (qemu format, size, options, detected format)
    "v3.qcow2": ("qcow2", "1G", (), "qcow2"),
    "v2.qcow2": ("qcow2", "1G", ("-o", "compat=0.10"), "qcow2"),
    "small-clusters.qcow2": ("qcow2", "100M", ("-o", "cluster_size=512"), "qcow2"),
    "large-clusters.qcow2": ("qcow2", "10G", ("-o", "cluster_size=2M"), "qcow2"),
    "extended-l2.qcow2": ("qcow2", "1G", ("-o", "extended_l2=on"), "qcow2"),
    "odd-size.qcow2": ("qcow2", "1000000", (), "qcow2"),
    "sparse.vmdk": ("vmdk", "100M", (), "vmdk"),
    "stream.vmdk": ("vmdk", "100M", ("-o", "subformat=streamOptimized"), "vmdk"),
    "dynamic.vhd": ("vpc", "100M", (), "vhd"),
    "fixed.vhd": ("vpc", "1M", ("-o", "subformat=fixed"), "vhd"),
    "force-size.vhd": ("vpc", "100M", ("-o", "force_size=on"), "vhd"),
    "disk.vhdx": ("vhdx", "1G", ("-o", "log_size=1M,block_size=1M"), "vhdx"),
    "dynamic.vdi": ("vdi", "100M", (), "vdi"),
    "static.vdi": ("vdi", "1M", ("-o", "static=on"), "vdi"),
    "disk.raw": ("raw", "1M", (), "raw"),
}


def good(images: Images, name: str) -> bytes:
    fmt, size, options, _ = GOOD[name]
    return images.read(name, fmt, size, *options)


@pytest.mark.parametrize("chunking", CHUNKINGS)
@pytest.mark.parametrize("name", GOOD)
def test_accepts_what_qemu_img_makes(images: Images, name: str, chunking: str) -> None:
    fmt, size, options, detected = GOOD[name]
    path = images.make(name, fmt, size, *options)
    inspection = inspect(path.read_bytes(), chunking)
    assert inspection == Inspection(detected, qemu_virtual_size(path, fmt), path.stat().st_size)
    check_declared(inspection, detected)


@pytest.mark.parametrize("name", GOOD)
def test_a_small_head_keeps_what_headers_point_to(images: Images, name: str) -> None:
    """With a 64 KiB head, VHDX headers, region table and metadata all come
    from regions kept as they stream by: the result does not change."""
    fmt, size, options, detected = GOOD[name]
    path = images.make(name, fmt, size, *options)
    inspection = inspect(path.read_bytes(), "jagged", head_size=64 << 10)
    assert inspection == Inspection(detected, qemu_virtual_size(path, fmt), path.stat().st_size)


# --- images that make QEMU open another file ----------------------------------------------------------------------

@pytest.mark.parametrize("chunking", CHUNKINGS)
def test_refuses_a_qcow2_backing_file(images: Images, chunking: str) -> None:
    data = images.read("evil.qcow2", "qcow2", None, "-b", "/etc/passwd", "-F", "raw")
    assert refused(data, chunking) == "qcow2 image has a backing file; images with backing files are refused"


def test_refuses_a_qcow2_backing_qcow2(images: Images) -> None:
    base = images.make("base.qcow2", "qcow2", "1M")
    data = images.read("child.qcow2", "qcow2", None, "-b", str(base), "-F", "qcow2")
    assert "backing file" in refused(data)


@pytest.mark.parametrize("raw_data", [True, False], ids=["data_file_raw", "data_file"])
@pytest.mark.parametrize("chunking", CHUNKINGS)
def test_refuses_a_qcow2_external_data_file(images: Images, chunking: str, raw_data: bool) -> None:
    options = f"data_file={images.root / f'host-{raw_data}.raw'},data_file_raw={'on' if raw_data else 'off'}"
    data = images.read(f"data-file-{raw_data}.qcow2", "qcow2", "64M", "-o", options)
    assert "external data file" in refused(data, chunking)


def qcow2_extensions(data: bytes) -> Iterator[tuple[int, int, int]]:
    """(offset, type, length) of each header extension of a v3 image."""
    offset = struct.unpack_from(">I", data, 100)[0]
    while True:
        kind, length = struct.unpack_from(">II", data, offset)
        if kind == 0:
            return
        yield offset, kind, length
        offset += 8 + ((length + 7) & ~7)


def test_refuses_a_data_file_name_extension_without_the_feature_bit(images: Images) -> None:
    data = good(images, "v3.qcow2")
    offset, _, _ = next(qcow2_extensions(data))  # the feature name table
    assert "external data file" in refused(patch(data, offset, struct.pack(">I", 0x44415441)))


@pytest.mark.parametrize(("bit", "message"), [
    (5, "unknown incompatible features (0x20)"),
    (63, "unknown incompatible features (0x8000000000000000)"),
    (1, "marked corrupt"),
    (2, "external data file"),
])
def test_refuses_qcow2_incompatible_features(images: Images, bit: int, message: str) -> None:
    data = good(images, "v3.qcow2")
    (features,) = struct.unpack_from(">Q", data, 72)
    assert message in refused(patch(data, 72, struct.pack(">Q", features | 1 << bit)))


def test_accepts_the_dirty_bit(images: Images) -> None:
    data = good(images, "v3.qcow2")
    assert inspect(patch(data, 72, struct.pack(">Q", 1))).format == "qcow2"


@pytest.mark.parametrize(("offset", "value", "message"), [
    (4, struct.pack(">I", 4), "qcow2 version 4 is not supported"),
    (4, struct.pack(">I", 1), "qcow2 version 1 is not supported"),
    (20, struct.pack(">I", 8), "cluster_bits 8 is outside"),
    (20, struct.pack(">I", 22), "cluster_bits 22 is outside"),
    (100, struct.pack(">I", 96), "header length 96 is invalid"),
    (24, struct.pack(">Q", 1 << 50), "inconsistent with its L1 table"),
    (36, struct.pack(">I", 0), "inconsistent with its L1 table"),
])
def test_refuses_qcow2_headers_that_make_no_sense(images: Images, offset: int, value: bytes, message: str) -> None:
    data = good(images, "v3.qcow2")
    assert message in refused(patch(data, offset, value), max_virtual_size=1 << 60)


def test_refuses_an_extension_running_past_the_first_cluster(images: Images) -> None:
    data = good(images, "v3.qcow2")
    offset, _, _ = next(qcow2_extensions(data))
    assert "runs past the first cluster" in refused(patch(data, offset + 4, struct.pack(">I", 1 << 20)))


@pytest.mark.parametrize("chunking", CHUNKINGS)
@pytest.mark.parametrize("subformat", ["monolithicFlat", "twoGbMaxExtentFlat", "twoGbMaxExtentSparse"])
def test_refuses_vmdk_descriptors_naming_other_files(images: Images, subformat: str, chunking: str) -> None:
    data = images.read(f"{subformat}.vmdk", "vmdk", "10M", "-o", f"subformat={subformat}")
    message = refused(data, chunking)
    assert f"createType '{subformat}'" in message and "refers to other files" in message


def test_refuses_a_bare_descriptor_without_the_banner() -> None:
    text = b'\n# comment\nversion=1\ncreateType="monolithicFlat"\nRW 2048 FLAT "/etc/shadow" 0\n'
    assert "'/etc/shadow'" in refused(text)
    # ...however it is declared: raw content it is not.
    assert "refers to other files" in refused(text + bytes(MiB))


@pytest.mark.parametrize("chunking", CHUNKINGS)
def test_refuses_a_vmdk_with_a_parent(images: Images, chunking: str) -> None:
    base = images.make("base.vmdk", "vmdk", "100M")
    data = images.read("child.vmdk", "vmdk", None, "-b", str(base), "-F", "vmdk")
    assert "parentFileNameHint" in refused(data, chunking)


def test_finds_a_parent_hint_where_qemu_looks_whatever_the_header_says(images: Images) -> None:
    """QEMU searches the 10 KiB at offset 512 for parentFileNameHint even
    when the header points the descriptor elsewhere (or nowhere)."""
    base = images.make("base.vmdk", "vmdk", "100M")
    data = images.read("child.vmdk", "vmdk", None, "-b", str(base), "-F", "vmdk")
    assert "parentFileNameHint" in refused(patch(data, 28, struct.pack("<QQ", 0, 0)))


def test_refuses_a_vmdk_with_zero_capacity(images: Images) -> None:
    """QEMU then opens the embedded descriptor's extents as files."""
    data = good(images, "sparse.vmdk")
    assert "zero capacity" in refused(patch(data, 12, struct.pack("<Q", 0)))


def test_refuses_an_embedded_descriptor_with_a_flat_extent(images: Images) -> None:
    data = good(images, "sparse.vmdk")
    line = b'RW 204800 SPARSE "sparse.vmdk"'
    evil = b'RW 204800 FLAT "/etc/passwd" 0'.ljust(len(line))
    message = refused(data.replace(line, evil))
    assert "exactly one SPARSE extent" in message and "FLAT /etc/passwd" in message


def test_refuses_an_embedded_descriptor_of_another_create_type(images: Images) -> None:
    data = good(images, "sparse.vmdk")
    message = refused(data.replace(b'createType="monolithicSparse"', b'createType="vmfs"            '))
    assert "createType 'vmfs' is not accepted" in message


def test_an_absurd_sector_count_is_no_crash(images: Images) -> None:
    data = good(images, "sparse.vmdk")
    line = b'RW 204800 SPARSE "sparse.vmdk"'
    assert "exactly one SPARSE extent" in refused(data.replace(line, b"RW " + b"9" * 5000 + b' SPARSE "x"'))


def test_refuses_vmdk3_sparse_files() -> None:
    assert "VMDK3 (COWD)" in refused(b"COWD" + bytes(4096))


def stream_with_footer(data: bytes, capacity: int | None = None) -> bytes:
    """A streamOptimized file whose header says the grain directory is at
    the end, with the footer (marker, header copy, end-of-stream marker)."""
    header = data[:512]
    footer_header = header if capacity is None else patch(header, 12, struct.pack("<Q", capacity))
    marker = struct.pack("<QII", 0, 0, 3).ljust(512, b"\0")
    eos = bytes(512)
    return patch(data, 56, struct.pack("<Q", 0xFFFFFFFFFFFFFFFF)) + marker + footer_header + eos


def test_reads_a_stream_optimized_footer_as_qemu_does(images: Images) -> None:
    data = stream_with_footer(good(images, "stream.vmdk"))
    path = images.root / "footer.vmdk"
    path.write_bytes(data)
    assert inspect(data).virtual_size == qemu_virtual_size(path, "vmdk") == 100 * MiB


def test_refuses_a_footer_that_disagrees_or_is_missing(images: Images) -> None:
    data = good(images, "stream.vmdk")
    assert "describes 204800 sectors but the header 409600" in refused(stream_with_footer(data, 409600))
    assert "footer is missing or invalid" in refused(patch(data, 56, struct.pack("<Q", 0xFFFFFFFFFFFFFFFF)))


def vhd_checksum(footer: bytes) -> bytes:
    zeroed = patch(footer, 64, bytes(4))
    return struct.pack(">I", ~sum(zeroed) & 0xFFFFFFFF)


def vhd_with_type(data: bytes, disk_type: int, *, head: bool = True, end: bool = True) -> bytes:
    def retype(footer: bytes) -> bytes:
        footer = patch(footer, 60, struct.pack(">I", disk_type))
        return patch(footer, 64, vhd_checksum(footer))

    if head:
        data = retype(data[:512]) + data[512:]
    if end:
        data = data[:-512] + retype(data[-512:])
    return data


def test_vhd_checksum_helper_matches_qemu(images: Images) -> None:
    data = good(images, "dynamic.vhd")
    assert vhd_checksum(data[:512]) == data[64:68]


@pytest.mark.parametrize("chunking", CHUNKINGS)
@pytest.mark.parametrize("name", ["dynamic.vhd", "fixed.vhd"])
def test_refuses_a_differencing_vhd(images: Images, name: str, chunking: str) -> None:
    data = good(images, name)
    assert "differencing disk with a parent" in refused(vhd_with_type(data, 4, head=name == "dynamic.vhd"), chunking)


def test_refuses_vhd_footers_that_disagree(images: Images) -> None:
    """QEMU reads the copy at the start, other tools the footer at the end."""
    data = good(images, "dynamic.vhd")
    assert "differencing disk" in refused(vhd_with_type(data, 4, head=False))
    assert "disagree" in refused(vhd_with_type(data, 2, head=False))


def test_refuses_a_dynamic_vhd_without_its_end_footer(images: Images) -> None:
    data = good(images, "dynamic.vhd")
    assert "no footer at its end" in refused(data[:-512])


def vhdx_metadata(data: bytes) -> tuple[int, dict[bytes, tuple[int, int]]]:
    """The metadata region's offset, and each item's (table entry offset, item offset)."""
    count = struct.unpack_from("<I", data, (192 << 10) + 8)[0]
    metadata_guid = uuid.UUID("8B7CA206-4790-4B9A-B8FE-575F050F886E").bytes_le
    for index in range(count):
        guid, region, _, _ = struct.unpack_from("<16sQII", data, (192 << 10) + 16 + 32 * index)
        if guid == metadata_guid:
            break
    entries = struct.unpack_from("<H", data, region + 10)[0]
    items = {}
    for index in range(entries):
        entry = region + 32 + 32 * index
        guid, offset = struct.unpack_from("<16sI", data, entry)
        items[guid] = (entry, region + offset)
    return region, items


def test_refuses_a_vhdx_with_a_parent_locator(images: Images) -> None:
    data = good(images, "disk.vhdx")
    _, items = vhdx_metadata(data)
    page83 = uuid.UUID("BECA12AB-B2E6-4523-93EF-C309E000C746").bytes_le
    locator = uuid.UUID("A8D35F2D-B30B-454D-ABF7-D3D84834AB0C").bytes_le
    assert "parent locator" in refused(patch(data, items[page83][0], locator))


def test_refuses_a_vhdx_marked_has_parent(images: Images) -> None:
    data = good(images, "disk.vhdx")
    _, items = vhdx_metadata(data)
    file_parameters = uuid.UUID("CAA16737-FA36-4D43-B3B6-33F0AA44E76B").bytes_le
    item = items[file_parameters][1]
    (flags,) = struct.unpack_from("<I", data, item + 4)
    assert "HasParent" in refused(patch(data, item + 4, struct.pack("<I", flags | 2)))


def test_refuses_a_vhdx_with_an_unknown_required_metadata_item(images: Images) -> None:
    data = good(images, "disk.vhdx")
    _, items = vhdx_metadata(data)
    page83 = uuid.UUID("BECA12AB-B2E6-4523-93EF-C309E000C746").bytes_le
    assert "unknown required metadata item" in refused(patch(data, items[page83][0], uuid.uuid4().bytes_le))


@pytest.mark.parametrize(("offset", "value", "message"), [
    (0x4C, struct.pack("<I", 4), "differencing image with a parent"),
    (0x4C, struct.pack("<I", 3), "differencing image with a parent"),
    (0x4C, struct.pack("<I", 9), "image type 9 is not supported"),
    (0x1B8, uuid.uuid4().bytes, "differencing image with a parent"),
    (0x1A8, uuid.uuid4().bytes, "links to another image"),
    (0x44, struct.pack("<I", 0x00010000), "vdi version 1.0 is not supported"),
])
def test_refuses_vdi_images_with_a_parent_or_unknown_layout(
        images: Images, offset: int, value: bytes, message: str) -> None:
    data = good(images, "dynamic.vdi")
    assert message in refused(patch(data, offset, value))


# --- iso, raw, and the signatures that only count at their own offset --------------------------------------------

def iso_image(blocks: int = 64, *, actual_blocks: int | None = None) -> bytes:
    """A minimal ISO 9660 image: system area, primary volume descriptor, terminator."""
    pvd = bytearray(2048)
    pvd[0:7] = b"\x01CD001\x01"
    pvd[40:48] = b"LOOMTEST"
    pvd[80:88] = struct.pack("<I", blocks) + struct.pack(">I", blocks)
    pvd[128:132] = struct.pack("<H", 2048) + struct.pack(">H", 2048)
    terminator = b"\xffCD001\x01".ljust(2048, b"\0")
    data = bytes(16 * 2048) + bytes(pvd) + terminator
    return data.ljust((blocks if actual_blocks is None else actual_blocks) * 2048, b"\0")


@pytest.mark.parametrize("chunking", CHUNKINGS)
def test_accepts_an_iso(chunking: str) -> None:
    data = iso_image()
    assert inspect(data, chunking) == Inspection("iso", len(data), len(data))


@needs_qemu_img
def test_an_iso_has_the_size_qemu_sees(tmp_path: Path) -> None:
    path = tmp_path / "disc.iso"
    path.write_bytes(iso_image(100))
    assert inspect(path.read_bytes()).virtual_size == qemu_virtual_size(path, "raw")


def test_refuses_a_truncated_iso() -> None:
    assert "truncated upload" in refused(iso_image(1000, actual_blocks=64))


@pytest.mark.parametrize("chunking", CHUNKINGS)
def test_magic_deeper_inside_a_raw_disk_is_data(chunking: str) -> None:
    data = bytearray(3 * MiB)
    for offset, magic in ((MiB, b"QFI\xfb\0\0\0\3"), (MiB + 4096, b"KDMV"), (2 * MiB, b"vhdxfile"),
                          (2 * MiB + 0x8001, b"CD001"), (2 * MiB + 0x40, b"\x7f\x10\xda\xbe")):
        data[offset:offset + len(magic)] = magic
    inspection = inspect(bytes(data), chunking)
    assert inspection == Inspection("raw", 3 * MiB, 3 * MiB)
    check_declared(inspection, "raw")


def test_partitioned_raw_disks_are_raw() -> None:
    mbr = bytearray(MiB)
    mbr[446:462] = bytes([0x80, 0, 2, 0, 0x83, 0, 0, 0]) + struct.pack("<II", 2048, 2048)
    mbr[510:512] = b"\x55\xaa"
    gpt = bytearray(mbr)
    gpt[446:462] = bytes([0, 0, 2, 0, 0xEE, 0, 0, 0]) + struct.pack("<II", 1, 2047)
    gpt[512:520] = b"EFI PART"
    assert inspect(bytes(mbr)).format == inspect(bytes(gpt)).format == "raw"


def test_an_empty_upload_is_an_empty_raw_image() -> None:
    assert StreamInspector().finish(0) == Inspection("raw", 0, 0)


@pytest.mark.parametrize("size", [1, 3, 511, 512, 4095])
def test_tiny_uploads_are_raw(size: int) -> None:
    assert inspect(b"Q" * size).format == "raw"


def test_refuses_content_matching_two_formats(images: Images) -> None:
    qcow2 = good(images, "v3.qcow2")
    assert "more than one format (qcow2 at offset 0, iso at offset 0x8001)" in refused(
        patch(qcow2, 0x8001, b"CD001"))
    iso_in_fixed_vhd = iso_image() + good(images, "fixed.vhd")[-512:]
    assert "iso at offset 0x8001, vhd at the last 512 bytes" in refused(iso_in_fixed_vhd)


def test_refuses_formats_loom_does_not_accept(images: Images) -> None:
    assert "a qed image, which is not accepted" in refused(images.read("disk.qed", "qed", "1G"))
    assert "a luks image" in refused(b"LUKS\xba\xbe" + bytes(8192))
    assert "a parallels image" in refused(b"WithoutFreeSpace" + bytes(8192))


# --- truncated uploads ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "keep"), [
    ("v3.qcow2", 50),
    ("v3.qcow2", 90),
    ("v3.qcow2", 110),
    ("sparse.vmdk", 40),
    ("sparse.vmdk", 1024),
    ("dynamic.vdi", 0x100),
    ("disk.vhdx", 200 << 10),
    ("disk.vhdx", 2 * MiB),
    ("disk.vhdx", 3 * MiB + 100),
])
def test_refuses_truncated_headers(images: Images, name: str, keep: int) -> None:
    data = good(images, name)[:keep]
    message = refused(data)
    assert message.startswith(f"{GOOD[name][3]} image is truncated") and f"the upload has {keep}" in message


def test_refuses_a_qcow2_that_is_only_its_magic() -> None:
    assert "qcow2 image is truncated" in refused(b"QFI\xfb")


# --- virtual sizes -------------------------------------------------------------------------------------------------

def test_refuses_a_virtual_size_above_the_limit(images: Images) -> None:
    data = good(images, "v3.qcow2")
    assert "exceeds the limit of 536870912" in refused(data, max_virtual_size=512 * MiB)
    assert "raw image's virtual size of 1048576 bytes exceeds" in refused(bytes(MiB), max_virtual_size=MiB - 1)


def test_the_default_limit_is_16_tib(images: Images) -> None:
    assert StreamInspector().max_virtual_size == 16 << 40
    data = images.read("huge.qcow2", "qcow2", "17T")
    assert "exceeds the limit" in refused(data)


def test_refuses_a_zero_virtual_size(images: Images) -> None:
    assert refused(images.read("zero.qcow2", "qcow2", "0")) == "qcow2 image has a virtual size of zero"


# --- the declared disk_format --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("detected", "declared"), [
    ("raw", "raw"), ("raw", "ami"), ("raw", "ari"), ("raw", "aki"), ("qcow2", "qcow2"), ("vmdk", "vmdk"),
    ("vhd", "vhd"), ("vhdx", "vhdx"), ("vdi", "vdi"), ("iso", "iso"),
])
def test_declared_format_matches(detected: str, declared: str) -> None:
    check_declared(Inspection(detected, MiB, MiB), declared)


@pytest.mark.parametrize(("detected", "declared"), [
    ("qcow2", "raw"), ("qcow2", "ami"), ("raw", "qcow2"), ("vmdk", "raw"), ("vhd", "vhdx"), ("iso", "raw"),
    ("raw", "iso"), ("vdi", "vhd"),
])
def test_declared_format_mismatch_is_refused(detected: str, declared: str) -> None:
    with pytest.raises(InspectionError, match=f"content is {detected}, but disk_format is {declared}"):
        check_declared(Inspection(detected, MiB, MiB), declared)


@pytest.mark.parametrize(("declared", "message"), [
    ("ploop", "'ploop' is not supported"), ("", "disk_format '' is not supported"),
    ("QCOW2", "'QCOW2' is not supported"), ("vpc", "'vpc' is not supported"),
])
def test_unsupported_disk_formats_are_refused(declared: str, message: str) -> None:
    with pytest.raises(InspectionError, match=message):
        check_declared(Inspection("raw", MiB, MiB), declared)


@pytest.mark.parametrize("chunking", CHUNKINGS)
def test_a_qcow2_declared_raw_is_refused(images: Images, chunking: str) -> None:
    """The classic attack: QEMU told 'raw' is safe, anything probing is not."""
    inspection = inspect(good(images, "v3.qcow2"), chunking)
    with pytest.raises(InspectionError, match="content is qcow2, but disk_format is raw"):
        check_declared(inspection, "raw")


def test_raw_declared_qcow2_is_refused() -> None:
    with pytest.raises(InspectionError, match="content is raw, but disk_format is qcow2"):
        check_declared(inspect(bytes(MiB)), "qcow2")


def test_an_inspection_error_is_a_400() -> None:
    error = InspectionError("qcow2 image has a backing file")
    assert isinstance(error, Invalid) and error.status == 400


@pytest.mark.parametrize("name", GOOD)
def test_corrupted_headers_are_refused_never_crash(images: Images, name: str) -> None:
    """Random bytes over the header regions: an answer or InspectionError,
    never another exception (which would surface as a 500)."""
    data = good(images, name)
    regions = [(0, 4096), (64 << 10, 256 << 10), (len(data) - 1536, len(data))]
    if name == "disk.vhdx":
        region, _ = vhdx_metadata(data)
        regions.append((region, region + (64 << 10) + 64))
    rng = random.Random(name)
    for _ in range(40):
        corrupted = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            start, end = rng.choice([r for r in regions if r[0] < min(r[1], len(data))])
            offset = rng.randrange(start, min(end, len(data)))
            corrupted[offset] = rng.randrange(256)
        with contextlib.suppress(InspectionError):
            inspect(bytes(corrupted), "65536")


# --- memory, speed, and use ----------------------------------------------------------------------------------------

def test_memory_stays_bounded_on_a_long_raw_stream() -> None:
    inspector = StreamInspector()
    chunk = bytes(65536)
    for _ in range(1024):  # 64 MiB
        inspector.feed(chunk)
        assert inspector.buffered_bytes <= HEAD_SIZE + TAIL_SIZE
    assert inspector.finish().virtual_size == 64 * MiB


def test_memory_stays_bounded_with_captured_regions(images: Images) -> None:
    data = good(images, "disk.vhdx")
    inspector = StreamInspector()
    for chunk in chunked(data, "65536"):
        inspector.feed(chunk)
        assert inspector.buffered_bytes <= HEAD_SIZE + CAPTURE_BUDGET + TAIL_SIZE
    assert inspector.finish().format == "vhdx"


def test_a_gibibyte_in_64_kib_chunks_costs_next_to_nothing() -> None:
    chunk = bytes(65536)
    inspector = StreamInspector()
    started = time.perf_counter()
    for _ in range(16384):
        inspector.feed(chunk)
    elapsed = time.perf_counter() - started
    assert inspector.finish().virtual_size == 1 << 30
    assert elapsed < 1.0, f"feeding 1 GiB took {elapsed:.3f}s"


def test_accepts_bytearray_and_memoryview_chunks(images: Images) -> None:
    data = good(images, "disk.vhdx")
    inspector = StreamInspector()
    for index, chunk in enumerate(chunked(data, "jagged")):
        inspector.feed(bytearray(chunk) if index % 2 else memoryview(chunk))
    assert inspector.finish().virtual_size == 1 << 30


def test_misuse_is_a_programming_error() -> None:
    inspector = StreamInspector()
    inspector.feed(b"abc")
    with pytest.raises(ValueError, match="fed 3 bytes, not 4"):
        inspector.finish(4)
    inspector.finish(3)
    with pytest.raises(RuntimeError):
        inspector.feed(b"more")
    with pytest.raises(ValueError):
        StreamInspector(max_virtual_size=0)
    with pytest.raises(ValueError):
        StreamInspector(head_size=4096)
