# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""qcow2 (versions 2 and 3), read as the guest's raw bytes, per qemu's docs/interop/qcow2.txt.

The reader walks the L1 table in guest order and holds one L2 table at a time. qemu-img
convert writes each L2 table just before its data clusters, so the walk is one forward pass.
Compressed clusters (zlib, or zstd when the header says so) are inflated one at a time; they
are read with ``peek`` because the next compressed cluster may start inside the last sector
of this one. Refused: backing files, external data files, encryption, extended L2 entries,
dirty or corrupt images, unknown incompatible features.
"""

from __future__ import annotations

import array
import struct
import typing as t
import zlib

from ansible_collections.openstack_dr.bank.plugins.module_utils._imageformats.source import SequentialReader, integer_table, zero_pieces
from ansible_collections.openstack_dr.bank.plugins.module_utils._optional_imports import HAS_ZSTANDARD, zstandard

MAGIC = b"QFI\xfb"
MIN_CLUSTER_BITS, MAX_CLUSTER_BITS = 9, 21
MAX_L1_BYTES = 32 << 20  # qemu's own limit
MAX_VIRTUAL_SIZE = 1 << 56  # what L2 entries can address
INCOMPATIBLE_DIRTY, INCOMPATIBLE_CORRUPT, INCOMPATIBLE_DATA_FILE = 1, 2, 4
INCOMPATIBLE_COMPRESSION_TYPE, INCOMPATIBLE_EXTENDED_L2 = 8, 16
COMPRESSION_ZLIB, COMPRESSION_ZSTD = 0, 1
EXTENSION_END, EXTENSION_ENCRYPTION, EXTENSION_DATA_FILE = 0, 0x0537BE77, 0x44415441
OFFSET_MASK = 0x00FFFFFFFFFFFE00  # bits 9-55
L1_RESERVED = 0x7F000000000001FF
L2_COMPRESSED, L2_COPIED, L2_ZERO = 1 << 62, 1 << 63, 1
L2_RESERVED = 0x3F000000000001FE
# The L1 table is read in windows of this many entries (64 KiB), never whole.
L1_WINDOW_ENTRIES = 8192
_HEADER_V2 = struct.Struct(">4sIQIIQIIQQIIQ")
_HEADER_V3 = struct.Struct(">QQQII")


class Qcow2Image:
    """A validated qcow2 header; ``guest_pieces()`` yields the raw volume."""

    def __init__(self, reader: SequentialReader) -> None:
        self.reader = reader
        if reader.size < _HEADER_V2.size or reader.peek(0, 4) != MAGIC:
            raise reader.error("not a qcow2 image (bad magic)")
        (_magic, self.version, backing_offset, _backing_size, self.cluster_bits, self.virtual_size, crypt_method,
         self.l1_size, self.l1_offset, refcount_offset, refcount_clusters, snapshots, snapshots_offset) = _HEADER_V2.unpack(
            reader.peek(0, _HEADER_V2.size))
        if self.version not in (2, 3):
            raise reader.error(f"unsupported qcow2 version {self.version}")
        if not MIN_CLUSTER_BITS <= self.cluster_bits <= MAX_CLUSTER_BITS:
            raise reader.error(f"qcow2 cluster_bits {self.cluster_bits} is outside [{MIN_CLUSTER_BITS}, {MAX_CLUSTER_BITS}]")
        self.cluster_size = 1 << self.cluster_bits
        reader.lookbehind = self.cluster_size + 512  # a compressed cluster spans at most that much
        if backing_offset:
            raise reader.error("qcow2 image has a backing file: refused, only standalone images are read")
        if crypt_method:
            raise reader.error(f"qcow2 image is encrypted (method {crypt_method}): refused")
        self.compression_type = COMPRESSION_ZLIB
        header_length = self._check_v3_header() if self.version == 3 else _HEADER_V2.size
        self._check_extensions(header_length)
        self._check_tables(refcount_offset, refcount_clusters, snapshots, snapshots_offset)

    def _check_v3_header(self) -> int:
        reader = self.reader
        incompatible, _compatible, _autoclear, refcount_order, header_length = _HEADER_V3.unpack(
            reader.peek(_HEADER_V2.size, _HEADER_V3.size))
        if header_length < 104 or header_length % 8 or header_length > self.cluster_size:
            raise reader.error(f"qcow2 header length {header_length} is invalid")
        if refcount_order > 6:
            raise reader.error(f"qcow2 refcount_order {refcount_order} exceeds 6")
        refused = {INCOMPATIBLE_DIRTY: "dirty (not closed cleanly)", INCOMPATIBLE_CORRUPT: "marked corrupt",
                   INCOMPATIBLE_DATA_FILE: "stored in an external data file", INCOMPATIBLE_EXTENDED_L2: "using extended L2 entries"}
        for bit, why in refused.items():
            if incompatible & bit:
                raise reader.error(f"qcow2 image is {why}: refused")
        if incompatible & ~(INCOMPATIBLE_COMPRESSION_TYPE | sum(refused)):
            raise reader.error(f"qcow2 image has unknown incompatible features 0x{incompatible:x}: refused")
        compression_type = reader.peek(104, 1)[0] if header_length > 104 else 0
        if bool(incompatible & INCOMPATIBLE_COMPRESSION_TYPE) != bool(compression_type):
            raise reader.error(f"qcow2 compression type {compression_type} disagrees with the incompatible feature bits")
        if compression_type not in (COMPRESSION_ZLIB, COMPRESSION_ZSTD):
            raise reader.error(f"qcow2 compression type {compression_type} is unknown")
        if compression_type == COMPRESSION_ZSTD and not HAS_ZSTANDARD:
            raise reader.error("qcow2 image uses zstd compression and the Python library 'zstandard' is missing")
        self.compression_type = compression_type
        return header_length

    def _check_extensions(self, offset: int) -> None:
        reader = self.reader
        end = min(self.cluster_size, reader.size)
        while offset + 8 <= end:
            kind, length = struct.unpack(">II", reader.peek(offset, 8))
            if kind == EXTENSION_END:
                return
            if kind == EXTENSION_DATA_FILE:
                raise reader.error("qcow2 image names an external data file: refused")
            if kind == EXTENSION_ENCRYPTION:
                raise reader.error("qcow2 image carries an encryption header: refused")
            offset += 8 + (length + 7) // 8 * 8
        if offset > end:
            raise reader.error("qcow2 header extensions run past the first cluster")

    def _check_aligned(self, offset: int, length: int, what: str) -> None:
        if offset % self.cluster_size:
            raise self.reader.error(f"qcow2 {what} at byte {offset} is not cluster aligned")
        self.reader.require_inside(offset, length, f"qcow2 {what}")

    def _check_tables(self, refcount_offset: int, refcount_clusters: int, snapshots: int, snapshots_offset: int) -> None:
        reader, cluster_size = self.reader, self.cluster_size
        if self.virtual_size > MAX_VIRTUAL_SIZE:
            raise reader.error(f"qcow2 virtual size {self.virtual_size} is beyond what qcow2 can address")
        self.l2_entries = cluster_size // 8
        self.l1_needed = -(-self.virtual_size // (cluster_size * self.l2_entries))
        if self.l1_size < self.l1_needed or self.l1_size * 8 > MAX_L1_BYTES:
            raise reader.error(f"qcow2 L1 table of {self.l1_size} entries does not fit a virtual size of {self.virtual_size}")
        if self.l1_size:
            self._check_aligned(self.l1_offset, self.l1_size * 8, "L1 table")
        self._check_aligned(refcount_offset, refcount_clusters * cluster_size, "refcount table")
        if snapshots:
            self._check_aligned(snapshots_offset, 0, "snapshot table")
        # Bits 56-61 of a compressed descriptor hold the sector count; the rest is the offset.
        self.csize_shift = 62 - (self.cluster_bits - 8)
        self.csize_mask = (1 << (self.cluster_bits - 8)) - 1
        self.coffset_mask = (1 << self.csize_shift) - 1

    def _l2_table(self, l1_index: int, entry: int) -> array.array | None:
        if entry & L1_RESERVED:
            raise self.reader.error(f"qcow2 L1 entry {l1_index} has reserved bits set (0x{entry:x})")
        offset = entry & OFFSET_MASK
        if not offset:
            return None
        self._check_aligned(offset, self.cluster_size, f"L2 table {l1_index}")
        return integer_table(self.reader.fetch(offset, self.cluster_size), "Q", True)

    def guest_pieces(self) -> t.Iterator[memoryview | bytes]:
        span = self.cluster_size * self.l2_entries
        for first in range(0, self.l1_needed, L1_WINDOW_ENTRIES):
            count = min(L1_WINDOW_ENTRIES, self.l1_needed - first)
            l1_window = integer_table(self.reader.fetch(self.l1_offset + 8 * first, 8 * count), "Q", True)
            for l1_index, entry in enumerate(l1_window, first):
                guest_offset = l1_index * span
                length = min(span, self.virtual_size - guest_offset)
                l2_table = self._l2_table(l1_index, entry)
                if l2_table is None:
                    yield from zero_pieces(length)
                else:
                    yield from self._l2_pieces(l1_index, l2_table, length)

    def _l2_pieces(self, l1_index: int, l2_table: array.array, length: int) -> t.Iterator[memoryview | bytes]:
        # Hot loop (one pass per cluster): runs of zeros and of host-contiguous clusters are merged.
        reader, cluster_size = self.reader, self.cluster_size
        run_kind, run_start, run_length = None, 0, 0  # "zero" or "data" run pending
        for index in range(-(-length // cluster_size)):
            entry = l2_table[index]
            size = min(cluster_size, length - index * cluster_size)
            if entry & L2_COMPRESSED:
                kind, host = "compressed", 0
            elif entry & L2_RESERVED or (entry & L2_ZERO and self.version == 2):
                raise reader.error(f"qcow2 L2 entry {index} of table {l1_index} has reserved bits set (0x{entry:x})")
            elif entry & L2_ZERO or not entry & OFFSET_MASK:
                kind, host = "zero", 0
            else:
                kind, host = "data", entry & OFFSET_MASK
                if host % cluster_size or host + size > reader.size:
                    self._check_aligned(host, size, f"data cluster {index} of L2 table {l1_index}")
            if run_kind == kind and (kind == "zero" or (kind == "data" and host == run_start + run_length)):
                run_length += size
                continue
            yield from self._run(run_kind, run_start, run_length)
            run_kind, run_start, run_length = kind, host, size
            if kind == "compressed":
                yield self._inflate(l1_index, index, entry, size)
                run_kind, run_length = None, 0
        yield from self._run(run_kind, run_start, run_length)

    def _run(self, kind: str | None, host: int, length: int) -> t.Iterator[memoryview | bytes]:
        if kind == "zero":
            yield from zero_pieces(length)
        elif kind == "data":
            yield from self.reader.pieces(host, length)

    def _inflate(self, l1_index: int, index: int, entry: int, size: int) -> memoryview:
        reader, cluster_size = self.reader, self.cluster_size
        offset = entry & self.coffset_mask
        sectors = ((entry >> self.csize_shift) & self.csize_mask) + 1
        # The last sector of the last compressed cluster may run past the end of the file.
        end = min(reader.size, (offset & ~511) + sectors * 512)
        where = f"compressed cluster {index} of L2 table {l1_index} (byte {offset})"
        if offset >= end or offset >> 56:
            raise reader.error(f"qcow2 {where} lies outside the file")
        compressed = reader.peek(offset, end - offset)  # not consumed: the next one may start inside this range
        try:
            if self.compression_type == COMPRESSION_ZSTD:
                # One frame, read to at most one byte more than a cluster: a bomb cannot grow memory.
                with zstandard.ZstdDecompressor().stream_reader(compressed, read_across_frames=False) as frame:
                    cluster = frame.read(cluster_size + 1)
            else:
                # Raw deflate; qemu writes a 4 KiB window (-12), a 32 KiB decoder (-15) reads it too.
                cluster = zlib.decompressobj(-15).decompress(compressed, cluster_size + 1)
        except (zlib.error, zstandard.ZstdError if HAS_ZSTANDARD else zlib.error) as exc:
            raise reader.error(f"qcow2 {where} does not decompress: {exc}") from exc
        if len(cluster) != cluster_size:
            raise reader.error(f"qcow2 {where} inflates to {len(cluster)} bytes instead of {cluster_size}")
        return memoryview(cluster)[:size]
