# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The restore side: a volume's raw bytes and its allocation map in, a qcow2 v3 image stream out.

The image's exact size is known before any data is read, so it can be uploaded with a
Content-Length. Layout, in clusters: the header; the L1 table; the refcount table; the
refcount blocks (every cluster of the file has refcount 1, nothing else); then, for each
L2 range holding data, its L2 table followed by its data clusters in guest order (the
layout qemu-img convert writes). Unallocated clusters have no host cluster (L2 entry 0)
and read as zeros; the writer proves they are zeros in the input, and raises
IntegrityError otherwise (pieces of the shared zero buffer, ``source.zero_pieces``, are
trusted as zeros without comparing). Clusters are stored uncompressed: a compressed cluster's size
is unknown until its data is read, which would make the image size unknown up front.
Memory: the allocation bitmap (2 MiB for 1 TiB at 64 KiB clusters) and one cluster at a time;
L1, refcount and L2 clusters are generated as the stream reaches them.
"""

from __future__ import annotations

import array
import struct
import sys
import typing as t

from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import IntegrityError, InvalidInputError
from ansible_collections.openstack_dr.bank.plugins.module_utils._imageformats.source import ZERO_PIECE_SIZE, is_shared_zero

MAGIC = b"QFI\xfb"
VERSION = 3
HEADER_LENGTH = 104
REFCOUNT_ORDER = 4  # 16-bit refcounts, qemu's default
COPIED = 1 << 63  # refcount is exactly one: qemu-img check expects the flag then
MIN_CLUSTER_SIZE, MAX_CLUSTER_SIZE = 512, 2 << 20
_HEADER = struct.Struct(">4sIQIIQIIQQIIQQQQII")
_ZERO_CHUNK = bytes(ZERO_PIECE_SIZE)


def _be64_bytes(values: t.Sequence[int], size: int) -> bytes:
    table = array.array("Q", values)
    if sys.byteorder == "little":
        table.byteswap()
    return table.tobytes().ljust(size, b"\0")


def allocation_from_ranges(virtual_size: int, data_ranges: t.Iterable[tuple[int, int]], cluster_size: int = 65536) -> bytes:
    """An allocation bitmap (LSB first) marking every cluster any ``(offset, length)`` range touches."""
    clusters = -(-virtual_size // cluster_size)
    bitmap = bytearray((clusters + 7) // 8)
    for offset, length in data_ranges:
        if offset < 0 or length < 0 or offset + length > virtual_size:
            raise InvalidInputError(f"data range {offset}+{length} lies outside the {virtual_size}-byte volume")
        for cluster in range(offset // cluster_size, -(-(offset + length) // cluster_size)):
            bitmap[cluster >> 3] |= 1 << (cluster & 7)
    return bytes(bitmap)


class _ClusterFeed:
    """Raw input pieces cut into exact cluster-sized ``bytes`` (copies only what crosses pieces)."""

    def __init__(self, raw_pieces: t.Iterable[bytes | memoryview], cluster_size: int) -> None:
        self._pieces = iter(raw_pieces)
        self._head = memoryview(b"")
        self.cluster_size = cluster_size
        self.consumed = 0

    def _next_piece(self, wanted: int) -> None:
        for piece in self._pieces:
            if len(piece):
                self._head = memoryview(piece).cast("B")
                return
        raise IntegrityError(f"the raw volume ended after {self.consumed} bytes, {wanted} more were expected")

    def take(self, length: int) -> bytes:
        if len(self._head) >= length:
            data, self._head = self._head[:length], self._head[length:]
            self.consumed += length
            return data.tobytes()
        parts, missing = [], length
        while missing:
            if not self._head:
                self._next_piece(missing)
            part, self._head = self._head[:missing], self._head[missing:]
            parts.append(part.tobytes())
            missing -= len(part)
            self.consumed += len(part)
        return b"".join(parts)

    def skip_zeros(self, length: int) -> None:
        """Consume ``length`` bytes that must all be zeros; pieces of the shared zero buffer are trusted."""
        while length:
            if not self._head:
                self._next_piece(length)
            part, self._head = self._head[:length], self._head[length:]
            if not is_shared_zero(part):
                for start in range(0, len(part), ZERO_PIECE_SIZE):
                    chunk = part[start:start + ZERO_PIECE_SIZE].tobytes()
                    if chunk != (_ZERO_CHUNK if len(chunk) == ZERO_PIECE_SIZE else bytes(len(chunk))):
                        offset = self.consumed + start + len(chunk) - len(chunk.lstrip(b"\0"))
                        raise IntegrityError(f"byte {offset} (cluster {offset // self.cluster_size}) holds data but the allocation map says "
                                             "its cluster is unallocated: it would be lost", offset=offset)
            self.consumed += len(part)
            length -= len(part)

    def at_end(self) -> bool:
        return not self._head and not any(len(piece) for piece in self._pieces)


class Qcow2Writer:
    """A qcow2 v3 (compat 1.1) image of a raw volume, its size exact before any data is read."""

    def __init__(self, virtual_size: int, allocation: bytes, cluster_size: int = 65536) -> None:
        if not MIN_CLUSTER_SIZE <= cluster_size <= MAX_CLUSTER_SIZE or cluster_size & (cluster_size - 1):
            raise InvalidInputError(f"qcow2 cluster size {cluster_size} is not a power of two in [{MIN_CLUSTER_SIZE}, {MAX_CLUSTER_SIZE}]")
        if virtual_size < 0 or virtual_size > 1 << 56:
            raise InvalidInputError(f"qcow2 virtual size {virtual_size} is out of range")
        self.virtual_size, self.cluster_size = virtual_size, cluster_size
        self.clusters = -(-virtual_size // cluster_size)
        self.l2_entries = cluster_size // 8
        self.l1_size = -(-self.clusters // self.l2_entries)
        self.allocation = bytes(allocation)
        self._check_allocation()
        group_bytes = self.l2_entries // 8
        # Data clusters per L2 range: 4 bytes per 512 MiB of volume at 64 KiB clusters.
        self.group_counts = array.array("I", (int.from_bytes(self.allocation[g * group_bytes:(g + 1) * group_bytes], "little").bit_count()
                                              for g in range(self.l1_size)))
        self.data_clusters = sum(self.group_counts)
        self.l2_tables = sum(1 for count in self.group_counts if count)
        self.l1_clusters = -(-self.l1_size * 8 // cluster_size)
        self._plan_refcounts()

    def _check_allocation(self) -> None:
        needed = (self.clusters + 7) // 8
        if len(self.allocation) != needed:
            raise InvalidInputError(f"the allocation map has {len(self.allocation)} bytes, {needed} expected for {self.clusters} clusters")
        if self.clusters % 8 and self.allocation[-1] >> (self.clusters % 8):
            raise InvalidInputError("the allocation map marks clusters beyond the end of the volume")
        # Pad to whole L2 ranges so every range slices the same number of bytes.
        self.allocation += bytes(self.l1_size * self.l2_entries // 8 - needed)

    def _plan_refcounts(self) -> None:
        # The refcount blocks count themselves: grow them until the layout is a fixed point.
        entries_per_block = self.cluster_size * 8 // (1 << REFCOUNT_ORDER)
        fixed = 1 + self.l1_clusters + self.l2_tables + self.data_clusters
        blocks = table_clusters = 0
        while True:
            total = fixed + table_clusters + blocks
            needed_blocks = -(-total // entries_per_block)
            needed_table = -(-needed_blocks * 8 // self.cluster_size)
            if (needed_blocks, needed_table) == (blocks, table_clusters):
                break
            blocks, table_clusters = needed_blocks, needed_table
        self.refcount_blocks, self.refcount_table_clusters = blocks, table_clusters
        self.entries_per_refcount_block = entries_per_block
        self.host_clusters = total
        self.l1_offset = self.cluster_size if self.l1_size else 0
        self.refcount_table_offset = (1 + self.l1_clusters) * self.cluster_size
        self.first_refcount_block = 1 + self.l1_clusters + table_clusters
        self.first_data_area_cluster = self.first_refcount_block + blocks

    @property
    def size(self) -> int:
        """The exact byte count of the image."""
        return self.host_clusters * self.cluster_size

    def header(self) -> bytes:
        # qemu reads whole sectors: a size that is not one is rounded up, the pad reading as zeros (as qemu does for raw files).
        header_size = -(-self.virtual_size // 512) * 512
        fields = _HEADER.pack(MAGIC, VERSION, 0, 0, self.cluster_size.bit_length() - 1, header_size, 0, self.l1_size, self.l1_offset,
                              self.refcount_table_offset, self.refcount_table_clusters, 0, 0, 0, 0, 0, REFCOUNT_ORDER, HEADER_LENGTH)
        return fields.ljust(self.cluster_size, b"\0")  # a zero extension type ends the (empty) extension area

    def _l1_clusters(self) -> t.Iterator[bytes]:
        entries, next_cluster = [], self.first_data_area_cluster
        for count in self.group_counts:
            entries.append(next_cluster * self.cluster_size | COPIED if count else 0)
            next_cluster += 1 + count if count else 0
            if len(entries) == self.l2_entries:
                yield _be64_bytes(entries, self.cluster_size)
                entries = []
        if entries:
            yield _be64_bytes(entries, self.cluster_size)

    def _refcount_clusters(self) -> t.Iterator[bytes]:
        table = [(self.first_refcount_block + block) * self.cluster_size for block in range(self.refcount_blocks)]
        per_cluster = self.cluster_size // 8
        for start in range(0, len(table), per_cluster):
            yield _be64_bytes(table[start:start + per_cluster], self.cluster_size)
        full_block = b"\0\1" * self.entries_per_refcount_block
        for block in range(self.refcount_blocks):
            counted = min(self.entries_per_refcount_block, self.host_clusters - block * self.entries_per_refcount_block)
            yield full_block if counted == self.entries_per_refcount_block else (b"\0\1" * counted).ljust(self.cluster_size, b"\0")

    def _l2_table(self, group: int, first_data_cluster: int) -> bytes:
        entries, host = [0] * self.l2_entries, first_data_cluster * self.cluster_size
        group_bytes = self.l2_entries // 8
        for byte_index, byte in enumerate(self.allocation[group * group_bytes:(group + 1) * group_bytes]):
            for bit in range(8) if byte else ():
                if byte >> bit & 1:
                    entries[byte_index * 8 + bit] = host | COPIED
                    host += self.cluster_size
        return _be64_bytes(entries, self.cluster_size)

    def stream(self, raw_pieces: t.Iterable[bytes | memoryview]) -> t.Iterator[bytes]:
        """The image's bytes (exactly ``size`` of them), consuming the volume's raw bytes in order."""
        yield self.header()
        yield from self._l1_clusters()
        yield from self._refcount_clusters()
        feed, next_cluster = _ClusterFeed(raw_pieces, self.cluster_size), self.first_data_area_cluster
        for group, count in enumerate(self.group_counts):
            if count:
                yield self._l2_table(group, next_cluster + 1)
                next_cluster += 1 + count
            yield from self._group_data(feed, group, count)
        if feed.consumed != self.virtual_size or not feed.at_end():
            raise IntegrityError(f"the raw volume is longer than its virtual size of {self.virtual_size} bytes")

    def _group_data(self, feed: _ClusterFeed, group: int, count: int) -> t.Iterator[bytes]:
        cluster_size, first = self.cluster_size, group * self.l2_entries
        end = min(first + self.l2_entries, self.clusters)
        if not count:  # a range without data: checked piece by piece, not cluster by cluster
            feed.skip_zeros(min(end * cluster_size, self.virtual_size) - first * cluster_size)
            return
        allocation = self.allocation
        for cluster in range(first, end):
            length = min(cluster_size, self.virtual_size - cluster * cluster_size)
            if allocation[cluster >> 3] >> (cluster & 7) & 1:
                data = feed.take(length)
                yield data if length == cluster_size else data.ljust(cluster_size, b"\0")
            else:
                feed.skip_zeros(length)


class PiecesReader:
    """A read-only file over an iterator of bytes pieces (an upload body that is read with ``read(n)``)."""

    def __init__(self, pieces: t.Iterable[bytes | memoryview], size: int | None = None) -> None:
        self._pieces = iter(pieces)
        self._head = memoryview(b"")
        self.size = size
        self.position = 0

    def __len__(self) -> int:
        if self.size is None:
            raise TypeError("size unknown")
        return self.size

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        """Up to ``size`` bytes (all that is left when negative); short only at the end."""
        parts, missing = [], size if size is not None and size >= 0 else -1
        while missing:
            if not self._head:
                piece = next(self._pieces, None)
                if piece is None:
                    break
                self._head = memoryview(piece).cast("B")
                continue
            part = self._head if missing < 0 else self._head[:missing]
            self._head = self._head[len(part):]
            parts.append(part)
            missing -= len(part) if missing > 0 else 0
        data = b"".join(parts)
        self.position += len(data)
        return data


def file_pieces(raw_file: t.Any, piece_size: int = 1 << 20) -> t.Iterator[bytes]:
    """The bytes of a file-like object read with ``read(piece_size)`` until it ends."""
    while piece := raw_file.read(piece_size):
        yield piece
