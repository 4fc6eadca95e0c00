# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The manifest format: compact chunk list, zero-cluster map, allocation bitmap, result shape, versions."""

from __future__ import annotations

import base64
import hashlib
import json
import random

import pytest

from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.units import KIB, MIB, TIB
from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import ManifestError
from ansible_collections.openstack_dr.bank.plugins.module_utils._manifest import (
    ChunkMap,
    Manifest,
    ZeroClusterMap,
    backup_summary,
)

CLUSTER = 64 * KIB


def digest(index: int) -> bytes:
    return hashlib.sha256(index.to_bytes(8, "big")).digest()


def make_manifest(size: int, chunk_size: int, zero_chunks: set[int] = frozenset(),
                  zero_clusters: dict[int, bytes] | None = None) -> Manifest:
    chunk_map = ChunkMap()
    clusters = ZeroClusterMap(chunk_size)
    for index in range(-(-size // chunk_size)):
        if index in zero_chunks:
            chunk_map.append_zero()
        else:
            chunk_map.append_data(digest(index))
            if zero_clusters and index in zero_clusters:
                clusters.add(index, zero_clusters[index])
    return Manifest.new(
        backup_id="id", backup_name="name", description="", source={}, created_at="2026-11-25T00:00:00Z",
        chunk_size=chunk_size, chunk_map=chunk_map, zero_clusters=clusters, size=size, hashes={"sha256": "00"},
        encrypted=False, compression_level=3, stats={"bytes_written": 7})


def reparsed(manifest: Manifest) -> Manifest:
    return Manifest.from_bytes(manifest.to_bytes(), "test")


def expected_bitmap(size: int, chunk_size: int, zero_chunks: set[int], zero_clusters: dict[int, bytes],
                    cluster_size: int = CLUSTER) -> bytes:
    """The allocation bitmap computed the slow, obvious way: byte by byte of the volume."""
    bits = []
    for start in range(0, size, cluster_size):
        end = min(start + cluster_size, size)
        known_zero = True
        for offset in range(start, end, CLUSTER):
            chunk, within = divmod(offset, chunk_size)
            zero_bits = int.from_bytes(zero_clusters.get(chunk, b""), "little")
            known_zero &= chunk in zero_chunks or bool(zero_bits >> (within // CLUSTER) & 1)
        bits.append(0 if known_zero else 1)
    packed = bytearray((len(bits) + 7) // 8)
    for index, bit in enumerate(bits):
        packed[index // 8] |= bit << (index % 8)
    return bytes(packed)


def random_zero_map(rng: random.Random, size: int, chunk_size: int) -> tuple[set[int], dict[int, bytes]]:
    chunks = -(-size // chunk_size)
    zero_chunks = {index for index in range(chunks) if rng.random() < 0.3}
    zero_clusters = {}
    for index in range(chunks):
        if index in zero_chunks or rng.random() < 0.3:
            continue
        length = min(chunk_size, size - index * chunk_size)
        bits = rng.getrandbits(-(-length // CLUSTER)) if rng.random() < 0.9 else (1 << -(-length // CLUSTER)) - 1
        if bits:
            zero_clusters[index] = bits.to_bytes(chunk_size // CLUSTER // 8, "little")
    return zero_chunks, zero_clusters


def test_chunk_map_is_compact():
    chunk_map = ChunkMap()
    for index in range(10000):
        if index % 2:
            chunk_map.append_zero()
        else:
            chunk_map.append_data(digest(index))
    restored = ChunkMap.from_json(chunk_map.to_json())
    assert list(restored) == list(chunk_map)


def test_manifest_of_a_full_1_tib_volume_stays_under_20_mb():
    chunk_count = TIB // (4 * MIB)  # at 4 MiB, no zero chunk: the largest chunk list
    every_other_cluster = bytes([0b01010101]) * 8  # and a zero-cluster record for every chunk: the largest map
    manifest = make_manifest(TIB, 4 * MIB, zero_clusters={index: every_other_cluster for index in range(chunk_count)})
    data = manifest.to_bytes()
    assert len(data) < 20_000_000
    parsed = Manifest.from_bytes(data, "big")
    assert parsed.chunk_map.chunk_count == chunk_count and len(parsed.zero_clusters) == chunk_count
    assert parsed.allocation_bitmap() == bytes([0b10101010]) * (TIB // CLUSTER // 8)


@pytest.mark.parametrize("seed", range(25))
def test_allocation_bitmap_matches_random_zero_maps_and_odd_tails(seed):
    rng = random.Random(seed)
    chunk_size = rng.choice([MIB, 2 * MIB, 4 * MIB])
    size = rng.randrange(1, 12 * chunk_size) if seed % 3 else rng.randrange(1, 12) * chunk_size
    zero_chunks, zero_clusters = random_zero_map(rng, size, chunk_size)
    manifest = reparsed(make_manifest(size, chunk_size, zero_chunks, zero_clusters))
    bitmap = manifest.allocation_bitmap()
    assert len(bitmap) == (-(-size // CLUSTER) + 7) // 8
    assert bitmap == expected_bitmap(size, chunk_size, zero_chunks, zero_clusters)


@pytest.mark.parametrize("cluster_size", [512, 4 * KIB, 32 * KIB, 128 * KIB])
def test_allocation_bitmap_at_other_cluster_sizes_is_never_optimistic(cluster_size):
    rng = random.Random(cluster_size)
    size = 5 * MIB + 12345
    zero_chunks, zero_clusters = random_zero_map(rng, size, MIB)
    manifest = reparsed(make_manifest(size, MIB, zero_chunks, zero_clusters))
    assert manifest.allocation_bitmap(cluster_size) == expected_bitmap(size, MIB, zero_chunks, zero_clusters, cluster_size)


@pytest.mark.parametrize("cluster_size", [0, 1000, 256, 256 * KIB])
def test_allocation_bitmap_refuses_clusters_that_do_not_fit_whole_bytes_per_chunk(cluster_size):
    with pytest.raises(ValueError, match="does not divide"):
        make_manifest(MIB, MIB).allocation_bitmap(cluster_size)


def test_the_allocation_bitmap_of_an_empty_volume_is_empty():
    assert reparsed(make_manifest(0, MIB)).allocation_bitmap() == b""


def test_the_final_partial_cluster_counts_and_bits_past_it_are_clear():
    bitmap = make_manifest(3 * CLUSTER + 1, MIB).allocation_bitmap()
    assert bitmap == bytes([0b1111])


def test_an_old_manifest_without_zero_clusters_counts_every_cluster_of_a_data_chunk():
    manifest = make_manifest(3 * MIB, MIB, zero_chunks={1}, zero_clusters={0: b"\xff\x00"})
    document = json.loads(manifest.to_bytes())
    del document["zero_clusters"]
    old = Manifest.from_bytes(json.dumps(document).encode(), "old")
    assert old.zero_clusters is None
    assert old.allocation_bitmap() == b"\xff\xff\x00\x00\xff\xff"
    assert reparsed(manifest).allocation_bitmap() == b"\x00\xff\x00\x00\xff\xff"


@pytest.mark.parametrize("records, message", [
    ([(5, b"\x01\x00")], "past the last chunk"),
    ([(1, b"\x01\x00")], "is a zero chunk"),
    ([(2, b"\x00\x01")], "past the end of the volume"),
    ([(2, b"\x01\x00"), (0, b"\x01\x00")], "ascending"),
    ([(0, b"\x00\x00")], "with a bit set"),
])
def test_an_invalid_zero_cluster_map_is_refused(records, message):
    manifest = make_manifest(2 * MIB + CLUSTER, MIB, zero_chunks={1})
    document = json.loads(manifest.to_bytes())
    packed = b"".join(index.to_bytes(4, "little") + bits for index, bits in records)
    document["zero_clusters"]["records"] = [base64.b64encode(packed).decode()]
    with pytest.raises(ManifestError, match=f"invalid zero-cluster map: .*{message}"):
        Manifest.from_bytes(json.dumps(document).encode(), "bad")


def test_a_manifest_of_a_newer_format_asks_for_a_newer_collection():
    document = json.loads(make_manifest(MIB, MIB).to_bytes())
    document["format_version"] = 3
    with pytest.raises(ManifestError, match="format version 3; this collection reads version 1 and 2. Use a newer"):
        Manifest.from_bytes(json.dumps(document).encode(), "future")


def test_a_manifest_whose_chunks_do_not_add_up_is_refused():
    document = json.loads(make_manifest(3 * MIB, MIB).to_bytes())
    document["size"] = 5 * MIB
    with pytest.raises(ManifestError, match="lists 3 chunks but a size of .* needs 5"):
        Manifest.from_bytes(json.dumps(document).encode(), "short")


def test_a_backup_summary_has_one_shape():
    manifest = make_manifest(MIB, MIB)
    manifest.document["source"] = {"volume": {"id": "v1", "name": "db", "size": 1, "cloud": "a", "region": "r"}}
    summary = backup_summary(reparsed(manifest))
    assert sorted(summary) == ["completed_at", "created_at", "description", "hashes", "id", "name", "protected_until",
                               "size", "source_cloud", "source_volume", "stored_bytes"]
    assert summary["source_volume"]["id"] == "v1" and summary["source_cloud"] == {"cloud": "a", "region": "r"}
    assert (summary["size"], summary["stored_bytes"]) == (MIB, 7)
