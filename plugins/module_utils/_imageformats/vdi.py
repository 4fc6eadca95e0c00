# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""VirtualBox VDI 1.1 (dynamic or static), read as the guest's raw bytes.

Layout (little endian, as qemu's ``block/vdi.c`` writes it): a 512-byte header, the
block map (one uint32 per guest block: the index of its host block, 0xffffffff never
allocated, 0xfffffffe discarded, both reading as zeros), then the data blocks at
``offset_data + index * block_size``. qemu-img writes blocks in guest order, so one
forward pass reads the whole image.
"""

from __future__ import annotations

import array
import struct
import sys
import typing as t

from ansible_collections.openstack_dr.bank.plugins.module_utils._imageformats.source import SequentialReader, zero_pieces

SIGNATURE = 0xBEDA107F
VERSION_1_1 = 0x00010001
HEADER_SIZE = 512
SECTOR_SIZE = 512
TYPE_DYNAMIC, TYPE_STATIC = 1, 2
FIRST_UNUSED_ENTRY = 0xFFFFFFFE
MAX_BLOCKS = 0x3FFFFFFF
MIN_BLOCK_SIZE, MAX_BLOCK_SIZE = 4096, 16 << 20
# The block map is read in windows of this many entries (1 MiB), never whole.
MAP_WINDOW_ENTRIES = 1 << 18
_HEADER = struct.Struct("<64sIIIII256sIIIIIIIQIIII16s16s16s16s")


class VdiImage:
    """A validated VDI header; ``guest_pieces()`` yields the raw volume."""

    def __init__(self, reader: SequentialReader) -> None:
        self.reader = reader
        fields = _HEADER.unpack(reader.peek(0, _HEADER.size) if reader.size >= _HEADER.size else b"\0" * _HEADER.size)
        (_text, signature, version, _header_size, image_type, _flags, _description, self.offset_bmap, self.offset_data,
         _cylinders, _heads, _sectors, sector_size, _unused, disk_size, self.block_size, block_extra,
         self.blocks_in_image, _blocks_allocated, _uuid_image, _uuid_snap, uuid_link, uuid_parent) = fields
        if reader.size < HEADER_SIZE or signature != SIGNATURE:
            raise reader.error("not a VDI image (bad signature)")
        if version != VERSION_1_1:
            raise reader.error(f"unsupported VDI version {version >> 16}.{version & 0xFFFF} (only 1.1 is read)")
        if image_type not in (TYPE_DYNAMIC, TYPE_STATIC):
            raise reader.error(f"unsupported VDI image type {image_type}")
        if uuid_link.strip(b"\0") or uuid_parent.strip(b"\0"):
            raise reader.error("VDI differencing image (it has a parent): refused, only standalone images are read")
        if sector_size != SECTOR_SIZE or block_extra != 0:
            raise reader.error(f"unsupported VDI sector size {sector_size} or block extra {block_extra}")
        self._check_geometry(disk_size)

    def _check_geometry(self, disk_size: int) -> None:
        reader, block_size = self.reader, self.block_size
        if not MIN_BLOCK_SIZE <= block_size <= MAX_BLOCK_SIZE or block_size & (block_size - 1):
            raise reader.error(f"VDI block size {block_size} is not a power of two in [{MIN_BLOCK_SIZE}, {MAX_BLOCK_SIZE}]")
        if self.blocks_in_image > MAX_BLOCKS or disk_size > self.blocks_in_image * block_size:
            raise reader.error(f"VDI disk size {disk_size} does not fit its {self.blocks_in_image} blocks of {block_size} bytes")
        if self.offset_bmap % SECTOR_SIZE or self.offset_data % SECTOR_SIZE or self.offset_bmap < HEADER_SIZE:
            raise reader.error(f"VDI block map offset {self.offset_bmap} or data offset {self.offset_data} is misaligned")
        # qemu rounds an odd disk size up to whole sectors; so do we, to yield what Cinder would.
        self.virtual_size = -(-disk_size // SECTOR_SIZE) * SECTOR_SIZE
        self.guest_blocks = -(-self.virtual_size // block_size)
        map_bytes = 4 * self.guest_blocks
        reader.require_inside(self.offset_bmap, map_bytes, "VDI block map")
        if self.offset_bmap + map_bytes > self.offset_data:
            raise reader.error(f"VDI block map (byte {self.offset_bmap}, {map_bytes} bytes) overlaps the data at byte {self.offset_data}")

    def _map_window(self, first: int) -> array.array:
        count = min(MAP_WINDOW_ENTRIES, self.guest_blocks - first)
        entries = array.array("I", self.reader.fetch(self.offset_bmap + 4 * first, 4 * count))
        if sys.byteorder == "big":
            entries.byteswap()
        return entries

    def guest_pieces(self) -> t.Iterator[memoryview | bytes]:
        reader, block_size = self.reader, self.block_size
        host_blocks = max(0, (reader.size - self.offset_data + block_size - 1) // block_size)
        seen = bytearray((host_blocks + 7) // 8)  # one bit per host block: two guest blocks may not share one
        for first in range(0, self.guest_blocks, MAP_WINDOW_ENTRIES):
            for index, entry in enumerate(self._map_window(first), first):
                length = min(block_size, self.virtual_size - index * block_size)
                if entry >= FIRST_UNUSED_ENTRY:
                    yield from zero_pieces(length)
                    continue
                if entry >= self.blocks_in_image or entry >= host_blocks or seen[entry >> 3] & (1 << (entry & 7)):
                    raise reader.error(f"VDI block {index} maps to host block {entry}: out of range or used twice")
                seen[entry >> 3] |= 1 << (entry & 7)
                host_offset = self.offset_data + entry * block_size
                reader.require_inside(host_offset, length, f"VDI block {index}")
                yield from reader.pieces(host_offset, length)
