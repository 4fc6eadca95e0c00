# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every header field and table entry the readers rely on is validated before it is trusted."""

from __future__ import annotations

import os
import struct

import pytest

from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import ImageFormatError, IntegrityError

from .image_helpers import KIB, MIB, patch, qemu_img, read_volume, write_sparse_raw


def build(tmp_path, *options: str):
    raw = tmp_path / "volume.raw"
    # Text compresses (compressed clusters), random does not (stored clusters), the rest is zeros.
    write_sparse_raw(raw, 8 * MIB, [(MIB, b"compressible text " * 8000), (5 * MIB, os.urandom(256 * KIB))])
    image = tmp_path / "image"
    qemu_img("convert", "-f", "raw", *options, str(raw), str(image))
    return image


def be64(path, offset: int) -> int:
    with open(path, "rb") as image:
        image.seek(offset)
        return struct.unpack(">Q", image.read(8))[0]


def first_l2_entry(path, compressed: bool) -> int:
    """The file offset of the first L2 entry of the wanted kind."""
    l2_offset = be64(path, be64(path, 40)) & 0x00FFFFFFFFFFFE00
    for index in range(8192):
        entry = be64(path, l2_offset + 8 * index)
        if entry and bool(entry >> 62 & 1) == compressed:
            return l2_offset + 8 * index
    raise AssertionError("no such L2 entry")


def qcow2_patch(offset: int, data: bytes):
    return lambda path: patch(path, offset, data)


def qcow2_l2_entry(compressed: bool, change):
    def apply(path):
        where = first_l2_entry(path, compressed)
        patch(path, where, struct.pack(">Q", change(be64(path, where))))
    return apply


def qcow2_extension(kind: int):
    return lambda path: patch(path, struct.unpack(">I", open(path, "rb").read()[100:104])[0], struct.pack(">II", kind, 8) + b"somefile")


def compressed_garbage(path):
    entry = be64(path, first_l2_entry(path, True))
    patch(path, entry & ((1 << 54) - 1), b"\xff" * 600)


QCOW2_CASES = {
    "bad magic": (qcow2_patch(0, b"QFI\0"), "bad magic"),
    "version 4": (qcow2_patch(4, struct.pack(">I", 4)), "version 4"),
    "cluster_bits too small": (qcow2_patch(20, struct.pack(">I", 8)), "cluster_bits 8"),
    "cluster_bits too large": (qcow2_patch(20, struct.pack(">I", 22)), "cluster_bits 22"),
    "backing file": (qcow2_patch(8, struct.pack(">QI", 0x1F0, 4)), "backing file"),
    "encryption": (qcow2_patch(32, struct.pack(">I", 2)), "encrypted"),
    "dirty": (qcow2_patch(72, struct.pack(">Q", 1)), "dirty"),
    "corrupt": (qcow2_patch(72, struct.pack(">Q", 2)), "corrupt"),
    "external data file bit": (qcow2_patch(72, struct.pack(">Q", 4)), "external data file"),
    "extended L2": (qcow2_patch(72, struct.pack(">Q", 16)), "extended L2"),
    "unknown incompatible feature": (qcow2_patch(72, struct.pack(">Q", 32)), "unknown incompatible"),
    "compression bit without type": (qcow2_patch(72, struct.pack(">Q", 8)), "disagrees"),
    "unknown compression type": (lambda path: (patch(path, 72, struct.pack(">Q", 8)), patch(path, 104, b"\x07")), "compression type 7"),
    "header length": (qcow2_patch(100, struct.pack(">I", 100)), "header length"),
    "refcount order": (qcow2_patch(96, struct.pack(">I", 7)), "refcount_order 7"),
    "external data file extension": (qcow2_extension(0x44415441), "external data file"),
    "encryption extension": (qcow2_extension(0x0537BE77), "encryption header"),
    "L1 misaligned": (lambda path: patch(path, 40, struct.pack(">Q", be64(path, 40) + 8)), "L1 table at byte .* not cluster aligned"),
    "L1 outside the file": (qcow2_patch(40, struct.pack(">Q", 1 << 40)), "L1 table .* outside"),
    "L1 too small": (qcow2_patch(36, struct.pack(">I", 0)), "does not fit a virtual size"),
    "virtual size insane": (qcow2_patch(24, struct.pack(">Q", 1 << 60)), "beyond what qcow2 can address"),
    "refcount table outside": (qcow2_patch(48, struct.pack(">Q", 1 << 40)), "refcount table .* outside"),
    "L1 entry reserved bits": (lambda path: patch(path, be64(path, 40), struct.pack(">Q", be64(path, be64(path, 40)) | 1 << 60)), "L1 entry 0"),
    "L2 table outside": (lambda path: patch(path, be64(path, 40), struct.pack(">Q", 1 << 50)), "L2 table 0 .* outside"),
    "L2 entry reserved bits": (qcow2_l2_entry(False, lambda entry: entry | 1 << 57), "reserved bits"),
    "data cluster misaligned": (qcow2_l2_entry(False, lambda entry: entry + 512), "data cluster .* not cluster aligned"),
    "data cluster outside": (qcow2_l2_entry(False, lambda entry: entry & ~0x00FFFFFFFFFFFE00 | 1 << 45), "data cluster .* outside"),
    "compressed cluster outside": (qcow2_l2_entry(True, lambda entry: entry & ~((1 << 54) - 1) | 1 << 40), "compressed cluster .* outside"),
    "compressed cluster garbage": (compressed_garbage, "does not decompress|inflates to"),
}


@pytest.mark.parametrize("case", sorted(QCOW2_CASES))
def test_qcow2_refuses(tmp_path, case):
    image = build(tmp_path, "-c", "-O", "qcow2")
    read_volume("qcow2", image)  # valid before the flip
    change, message = QCOW2_CASES[case]
    change(image)
    with pytest.raises(ImageFormatError, match=message) as raised:
        read_volume("qcow2", image)
    assert "Image image:" in str(raised.value)
    assert isinstance(raised.value, IntegrityError)


def test_qcow2_version_2_refuses_the_zero_flag(tmp_path):
    image = build(tmp_path, "-O", "qcow2", "-o", "compat=0.10")
    qcow2_l2_entry(False, lambda entry: entry | 1)(image)
    with pytest.raises(ImageFormatError, match="reserved bits"):
        read_volume("qcow2", image)


def le(fmt: str, offset: int, value: int):
    return lambda path: patch(path, offset, struct.pack(fmt, value))


def vdi_map_entry(index_of_allocated: int, value):
    def apply(path):
        data = open(path, "rb").read()
        offset_bmap = struct.unpack("<I", data[0x154:0x158])[0]
        entries = struct.unpack(f"<{8}I", data[offset_bmap:offset_bmap + 32])
        allocated = [i for i, entry in enumerate(entries) if entry < 0xFFFFFFFE]
        patch(path, offset_bmap + 4 * allocated[index_of_allocated], struct.pack("<I", value(entries, allocated)))
    return apply


VDI_CASES = {
    "bad signature": (le("<I", 0x40, 0x12345678), "bad signature"),
    "version": (le("<I", 0x44, 0x00010000), "VDI version 1.0"),
    "image type": (le("<I", 0x4C, 4), "image type 4"),
    "parent": (le("<I", 0x1B8, 1), "differencing"),
    "link": (le("<I", 0x1A8, 1), "differencing"),
    "sector size": (le("<I", 0x168, 4096), "sector size"),
    "block extra": (le("<I", 0x17C, 16), "block extra"),
    "block size not a power of two": (le("<I", 0x178, 3 * MIB), "block size"),
    "block size too small": (le("<I", 0x178, 512), "block size"),
    "disk larger than its blocks": (le("<Q", 0x170, 100 * MIB), "does not fit"),
    "too many blocks": (le("<I", 0x180, 0x40000000), "does not fit"),
    "block map misaligned": (le("<I", 0x154, 0x201), "misaligned"),
    "block map outside": (le("<I", 0x154, 1 << 30), "block map .* outside"),
    "block map overlaps data": (lambda path: patch(path, 0x158, open(path, "rb").read()[0x154:0x158]), "overlaps"),
    "block index out of range": (vdi_map_entry(0, lambda entries, allocated: 7777), "out of range or used twice"),
    "block used twice": (vdi_map_entry(1, lambda entries, allocated: entries[allocated[0]]), "out of range or used twice"),
}


@pytest.mark.parametrize("case", sorted(VDI_CASES))
def test_vdi_refuses(tmp_path, case):
    image = build(tmp_path, "-O", "vdi")
    read_volume("vdi", image)
    change, message = VDI_CASES[case]
    change(image)
    with pytest.raises(ImageFormatError, match=message):
        read_volume("vdi", image)


def replace_text(old: bytes, new: bytes):
    assert len(old) == len(new)

    def apply(path):
        data = open(path, "rb").read()
        patch(path, data.index(old), new)
    return apply


def vmdk_first_grain(value: int):
    def apply(path):
        data = open(path, "rb").read()
        gd_offset = struct.unpack("<Q", data[56:64])[0] * 512
        gt_offset = struct.unpack("<I", data[gd_offset:gd_offset + 4])[0] * 512
        entries = struct.unpack("<512I", data[gt_offset:gt_offset + 2048])
        first = next(i for i, entry in enumerate(entries) if entry)
        patch(path, gt_offset + 4 * first, struct.pack("<I", value))
    return apply


VMDK_CASES = {
    "bad magic": (lambda path: patch(path, 0, b"COWD"), "bad magic"),
    "version": (le("<I", 4, 4), "version 4"),
    "compressed grains": (le("<I", 8, 3 | 1 << 16), "streamOptimized"),
    "markers": (le("<I", 8, 3 | 1 << 17), "streamOptimized"),
    "grain directory at the end": (le("<Q", 56, 0xFFFFFFFFFFFFFFFF), "streamOptimized"),
    "grain size": (le("<Q", 20, 96), "grain of 96 sectors"),
    "grain table size": (le("<I", 44, 1024), "1024 entries per grain table"),
    "unclean shutdown": (lambda path: patch(path, 72, b"\1"), "not shut down cleanly"),
    "grain directory outside": (le("<Q", 56, 1 << 40), "grain directory .* outside"),
    "no descriptor": (le("<Q", 28, 0), "no embedded descriptor"),
    "create type": (replace_text(b'"monolithicSparse"', b'"twoGbMaxExtentSp"'), "not monolithicSparse"),
    "parent": (replace_text(b"parentCID=ffffffff", b"parentCID=12345678"), "has a parent"),
    "extent size": (replace_text(b"RW 16384 SPARSE", b"RW 16385 SPARSE"), "one SPARSE extent"),
    "grain outside": (vmdk_first_grain(1 << 30), "outside the data area"),
    "grain in the metadata": (vmdk_first_grain(3), "outside the data area"),
}


@pytest.mark.parametrize("case", sorted(VMDK_CASES))
def test_vmdk_refuses(tmp_path, case):
    image = build(tmp_path, "-O", "vmdk")
    read_volume("vmdk", image)
    change, message = VMDK_CASES[case]
    change(image)
    with pytest.raises(ImageFormatError, match=message):
        read_volume("vmdk", image)


@pytest.mark.parametrize("disk_format", ["qcow2", "vdi", "vmdk"])
def test_a_file_too_short_for_a_header_is_refused(tmp_path, disk_format):
    image = tmp_path / "short"
    image.write_bytes(b"QFI\xfb\0\0\0\3")
    with pytest.raises(ImageFormatError, match="bad magic|bad signature"):
        read_volume(disk_format, image)
