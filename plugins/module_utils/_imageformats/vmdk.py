# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""VMDK monolithicSparse (qemu-img's default subformat), read as the guest's raw bytes.

Layout (little endian, offsets in 512-byte sectors): the sparse extent header, the text
descriptor, the redundant grain directory and its grain tables, the grain directory and
its grain tables, then the grains. qemu-img puts every grain table before the first grain,
so the tables a walk needs are behind the cursor once data starts: they are read back in
windows of contiguous tables (``GT_WINDOW_BYTES`` per ranged request), never all at once.
Refused: streamOptimized (compressed grains, markers), parents, several extents.
"""

from __future__ import annotations

import array
import re
import struct
import typing as t

from ansible_collections.openstack_dr.bank.plugins.module_utils._imageformats.source import SequentialReader, integer_table, zero_pieces

MAGIC = b"KDMV"
SECTOR = 512
FLAG_ZERO_GRAIN, FLAG_COMPRESSED, FLAG_MARKERS = 1 << 2, 1 << 16, 1 << 17
GD_AT_END = 0xFFFFFFFFFFFFFFFF
MIN_GRAIN_SECTORS, MAX_GRAIN_SECTORS = 8, 2048
MAX_GTES_PER_GT = 512
MAX_DESCRIPTOR_BYTES = 1 << 20
# Grain directory entries are read in windows of this many (256 KiB); grain tables by up to 4 MiB.
GD_WINDOW_ENTRIES = 1 << 16
GT_WINDOW_BYTES = 4 << 20
_HEADER = struct.Struct("<4sIIQQQQIQQQB4sH")
_EXTENT = re.compile(r'^(RW|RDONLY|NOACCESS)\s+(\d+)\s+(\w+)\s+"[^"]*"(?:\s+\d+)?\s*$')


class VmdkImage:
    """A validated monolithicSparse VMDK; ``guest_pieces()`` yields the raw volume."""

    def __init__(self, reader: SequentialReader) -> None:
        self.reader = reader
        if reader.size < SECTOR or reader.peek(0, 4) != MAGIC:
            raise reader.error("not a VMDK sparse extent (bad magic; only monolithicSparse is read)")
        (_magic, version, self.flags, capacity, self.grain_sectors, descriptor_offset, descriptor_sectors, self.gtes_per_gt,
         _rgd_offset, self.gd_offset, self.overhead, unclean, _newline_test, compression) = _HEADER.unpack(reader.peek(0, _HEADER.size))
        if version not in (1, 2, 3):
            raise reader.error(f"unsupported VMDK version {version}")
        if self.flags & (FLAG_COMPRESSED | FLAG_MARKERS) or compression or self.gd_offset == GD_AT_END:
            raise reader.error("VMDK with compressed grains or markers (streamOptimized): refused, only monolithicSparse is read")
        if unclean:
            raise reader.error("VMDK was not shut down cleanly: refused")
        grain = self.grain_sectors
        if not MIN_GRAIN_SECTORS <= grain <= MAX_GRAIN_SECTORS or grain & (grain - 1):
            raise reader.error(f"VMDK grain of {grain} sectors is not a power of two in [{MIN_GRAIN_SECTORS}, {MAX_GRAIN_SECTORS}]")
        if not 1 <= self.gtes_per_gt <= MAX_GTES_PER_GT:
            raise reader.error(f"VMDK has {self.gtes_per_gt} entries per grain table, not 1 to {MAX_GTES_PER_GT}")
        self.virtual_size = capacity * SECTOR
        self.grain_bytes = grain * SECTOR
        self.gt_bytes = self.gtes_per_gt * 4
        self.gt_sectors = -(-self.gt_bytes // SECTOR)
        self.gd_entries = -(-capacity // (grain * self.gtes_per_gt))
        if self.virtual_size > 1 << 56:
            raise reader.error(f"VMDK capacity of {capacity} sectors is not sane")
        reader.require_inside(self.gd_offset * SECTOR, 4 * self.gd_entries, "VMDK grain directory")
        self._check_descriptor(descriptor_offset, descriptor_sectors, capacity)
        self._gt_window: tuple[int, bytes] = (0, b"")

    def _check_descriptor(self, offset: int, sectors: int, capacity: int) -> None:
        reader = self.reader
        if not offset or not sectors or sectors * SECTOR > MAX_DESCRIPTOR_BYTES:
            raise reader.error("VMDK has no embedded descriptor (only monolithicSparse is read)")
        text = reader.fetch(offset * SECTOR, sectors * SECTOR).split(b"\0", 1)[0].decode("utf-8", "replace")
        settings = dict(re.findall(r'^\s*(\w+)\s*=\s*"?([^"\n]*)"?\s*$', text, re.MULTILINE))
        if settings.get("createType") != "monolithicSparse":
            raise reader.error(f"VMDK createType {settings.get('createType')!r} is not monolithicSparse")
        if settings.get("parentCID", "ffffffff").lower() != "ffffffff":
            raise reader.error("VMDK has a parent (parentCID): refused, only standalone images are read")
        extents = [match.groups() for line in text.splitlines() if (match := _EXTENT.match(line.strip()))]
        if len(extents) != 1 or extents[0][2] != "SPARSE" or int(extents[0][1]) != capacity:
            raise reader.error(f"VMDK descriptor must name one SPARSE extent of {capacity} sectors, it names {extents}")

    def _grain_table(self, gd_index: int, gd_window: array.array, position: int) -> array.array:
        sector = gd_window[position]
        offset = sector * SECTOR
        start, cached = self._gt_window
        if not start <= offset or offset + self.gt_bytes > start + len(cached):
            self.reader.require_inside(offset, self.gt_bytes, f"VMDK grain table {gd_index}")
            if sector < 1:
                raise self.reader.error(f"VMDK grain table {gd_index} at sector {sector} overlaps the header")
            count = 1  # the tables qemu writes are contiguous: read as many as fit a window at once
            while (position + count < len(gd_window) and (count + 1) * self.gt_sectors * SECTOR <= GT_WINDOW_BYTES
                   and gd_window[position + count] == sector + count * self.gt_sectors):
                count += 1
            length = min((count - 1) * self.gt_sectors * SECTOR + self.gt_bytes, self.reader.size - offset)
            self._gt_window = start, cached = offset, self.reader.fetch(offset, length)
        return integer_table(cached[offset - start:offset - start + self.gt_bytes], "I", False)

    def guest_pieces(self) -> t.Iterator[memoryview | bytes]:
        span = self.grain_bytes * self.gtes_per_gt
        for first in range(0, self.gd_entries, GD_WINDOW_ENTRIES):
            count = min(GD_WINDOW_ENTRIES, self.gd_entries - first)
            gd_window = integer_table(self.reader.fetch(self.gd_offset * SECTOR + 4 * first, 4 * count), "I", False)
            for position in range(count):
                gd_index = first + position
                length = min(span, self.virtual_size - gd_index * span)
                if not gd_window[position]:
                    yield from zero_pieces(length)
                else:
                    yield from self._gt_pieces(gd_index, self._grain_table(gd_index, gd_window, position), length)

    def _gt_pieces(self, gd_index: int, grain_table: array.array, length: int) -> t.Iterator[memoryview | bytes]:
        # Hot loop (one pass per grain): runs of zeros and of host-contiguous grains are merged.
        reader, grain_bytes = self.reader, self.grain_bytes
        zero_marker = 1 if self.flags & FLAG_ZERO_GRAIN else 0
        run_host, run_length, run_is_zero = -1, 0, False
        for index in range(-(-length // grain_bytes)):
            sector = grain_table[index]
            size = min(grain_bytes, length - index * grain_bytes)
            is_zero = sector == 0 or sector == zero_marker
            if not is_zero and (sector < self.overhead or sector * SECTOR + size > reader.size):
                raise reader.error(f"VMDK grain {index} of grain table {gd_index} at sector {sector} lies outside the data area")
            host = sector * SECTOR
            if run_length and is_zero == run_is_zero and (is_zero or host == run_host + run_length):
                run_length += size
                continue
            if run_length:
                yield from zero_pieces(run_length) if run_is_zero else reader.pieces(run_host, run_length)
            run_host, run_length, run_is_zero = host, size, is_zero
        if run_length:
            yield from zero_pieces(run_length) if run_is_zero else reader.pieces(run_host, run_length)
