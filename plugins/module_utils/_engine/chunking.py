# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How a stream becomes chunks: the checks of chunk size and parallelism, the cutting itself,
and the scan for all-zero clusters inside a chunk.

The allowed chunk sizes and their default live in ``units``; the values here are the source the
argument specs and docs derive from.
"""

from __future__ import annotations

import typing as t

from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.units import ALLOWED_CHUNK_SIZES, KIB
from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import InvalidInputError

DEFAULT_PARALLELISM = 4
MAX_PARALLELISM = 64

# The granularity of the zero map: qcow2's default cluster, so a restore through qcow2 can skip
# zero clusters inside stored chunks.
ZERO_CLUSTER_SIZE = 64 * KIB
_ZERO_CLUSTER = bytes(ZERO_CLUSTER_SIZE)


def validate_chunk_size(chunk_size: int) -> int:
    if chunk_size not in ALLOWED_CHUNK_SIZES:
        raise InvalidInputError(
            f"chunk_size must be a power of two from 1 MiB to 64 MiB ({ALLOWED_CHUNK_SIZES[0]} .. "
            f"{ALLOWED_CHUNK_SIZES[-1]} bytes), got {chunk_size}")
    return chunk_size


def validate_parallelism(parallelism: int) -> int:
    if not 1 <= parallelism <= MAX_PARALLELISM:
        raise InvalidInputError(f"parallelism must be between 1 and {MAX_PARALLELISM}, got {parallelism}")
    return parallelism


def rechunk(pieces: t.Iterable[bytes], chunk_size: int) -> t.Iterator[bytes]:
    """Yield chunks of exactly ``chunk_size`` bytes (the last may be shorter) from pieces of any size."""
    pending = bytearray()
    for piece in pieces:
        if not piece:
            continue
        if not pending and len(piece) == chunk_size:
            yield bytes(piece)  # the common aligned case: no copy into the buffer
            continue
        pending += piece
        if len(pending) >= chunk_size:
            view = memoryview(pending)
            offset = 0
            while len(pending) - offset >= chunk_size:
                yield bytes(view[offset:offset + chunk_size])
                offset += chunk_size
            view.release()
            del pending[:offset]
    if pending:
        yield bytes(pending)


def zero_bitmap_size(chunk_size: int, cluster_size: int = ZERO_CLUSTER_SIZE) -> int:
    """Bytes of one chunk's zero-cluster bitmap: one bit per cluster, a final partial cluster included."""
    clusters = -(-chunk_size // cluster_size)
    return (clusters + 7) // 8


def zero_cluster_bitmap(chunk: bytes, bitmap_size: int) -> bytes | None:
    """Which clusters of a non-zero chunk are all zeros: bit i (LSB first) set for cluster i; None if none.

    ``bytes.startswith`` compares in place with memcmp and stops at the first non-zero byte, so a cluster
    holding data costs one call: 6-30 us per 4 MiB chunk of random or text data, 120 us when half its
    clusters are zeros. A memoryview comparison walks the zeros byte by byte (11 ms) and ``count(0)``
    reads every byte (3-6 ms), so neither is used.
    """
    length = len(chunk)
    bits = 0
    for index, offset in enumerate(range(0, length - ZERO_CLUSTER_SIZE + 1, ZERO_CLUSTER_SIZE)):
        if chunk.startswith(_ZERO_CLUSTER, offset):
            bits |= 1 << index
    tail = length % ZERO_CLUSTER_SIZE
    if tail and chunk.endswith(_ZERO_CLUSTER[:tail]):
        bits |= 1 << (length // ZERO_CLUSTER_SIZE)
    return bits.to_bytes(bitmap_size, "little") if bits else None
