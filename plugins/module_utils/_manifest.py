# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The backup manifest: one versioned, self-describing JSON document per backup, built and read here.

Its presence in the bank means the backup is complete, so it is written last.
The ordered chunk list is kept compact: runs of all-zero chunks are counted,
and the ids of stored chunks are packed as raw 32-byte digests (base64 in
JSON), never as a list of Python strings. The all-zero 64 KiB clusters inside
stored chunks are recorded only for the chunks that have any. A 1 TiB volume
at 4 MiB chunks therefore needs about 11 MB, 15 MB at most. The format is
described in docs/bank-format.md. In an encrypted bank the whole document (names, source, hashes,
chunk list) is sealed (format version 2, see ``documents``); plain banks write version 1.
"""

from __future__ import annotations

import base64
import binascii
import typing as t

from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.chunking import (
    ZERO_CLUSTER_SIZE,
    zero_bitmap_size,
)
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.documents import (
    PLAIN_VERSION,
    DocumentFormat,
    DocumentSealer,
    utc_now,
)
from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import ManifestError

MANIFEST_FORMAT = DocumentFormat("openstack_dr.bank/backup-manifest", PLAIN_VERSION, "backup manifest", sealable=True)
COLLECTION_VERSION = "0.1.0"
DIGEST_SIZE = 32
# Keeps each JSON string of packed digests or zero-cluster records a reasonable size to parse and diff.
_DIGESTS_PER_RUN = 4096
_RECORDS_PER_STRING = 4096
_INDEX_SIZE = 4  # a zero-cluster record's chunk index, little-endian: 2**32 chunks, 4 PiB at 1 MiB
_INVERT = bytes(255 - value for value in range(256))
_MIN_CLUSTER_SIZE = 512


def _whole_bytes_of_clusters(chunk_size: int, cluster_size: int) -> bool:
    """Whether ``cluster_size`` is a power of two from 512 bytes that makes whole bitmap bytes of a chunk."""
    return (isinstance(cluster_size, int) and cluster_size >= _MIN_CLUSTER_SIZE
            and not cluster_size & (cluster_size - 1) and not chunk_size % (8 * cluster_size))


def source_summary(source: dict) -> dict:
    """The parts of a backup's source that listings and results show: the volume and where it lived."""
    volume = (source or {}).get("volume") or {}
    return {
        "source_volume": {key: volume.get(key) for key in ("id", "name", "size", "volume_type", "bootable", "availability_zone")},
        "source_cloud": {key: volume.get(key) for key in ("cloud", "region")},
    }


def backup_summary(manifest: Manifest) -> dict:
    """A complete backup, as every module's result shows it."""
    return {
        "id": manifest.backup_id,
        "name": manifest.backup_name,
        "description": manifest.document.get("description", ""),
        "created_at": manifest.created_at,
        "completed_at": manifest.document.get("completed_at"),
        # Set in a bank with Object Lock: every object of the backup is locked at least until then.
        "protected_until": manifest.document.get("protected_until"),
        "size": manifest.size,
        "stored_bytes": manifest.stats.get("bytes_written"),
        "hashes": manifest.hashes,
        **source_summary(manifest.source),
    }


class ChunkMap:
    """The ordered list of a backup's chunks: ``None`` for a zero chunk, else its 32-byte id."""

    def __init__(self) -> None:
        self._digests = bytearray()
        # Runs of ("zeros", count) or ("data", count); counts refer to consecutive chunks.
        self._runs: list[list] = []
        self.chunk_count = 0

    def append_zero(self) -> None:
        self._append_run("zeros")
        self.chunk_count += 1

    def append_data(self, digest: bytes) -> None:
        if len(digest) != DIGEST_SIZE:
            raise ValueError("chunk ids are 32 bytes")
        self._append_run("data")
        self._digests += digest
        self.chunk_count += 1

    def _append_run(self, kind: str) -> None:
        if self._runs and self._runs[-1][0] == kind:
            self._runs[-1][1] += 1
        else:
            self._runs.append([kind, 1])

    def runs(self) -> t.Iterator[tuple[str, int]]:
        """(``zeros`` or ``data``, number of consecutive chunks), in order."""
        for kind, count in self._runs:
            yield kind, count

    def __iter__(self) -> t.Iterator[bytes | None]:
        offset = 0
        for kind, count in self._runs:
            if kind == "zeros":
                for dummy in range(count):
                    yield None
            else:
                for dummy in range(count):
                    yield bytes(self._digests[offset:offset + DIGEST_SIZE])
                    offset += DIGEST_SIZE

    def data_digests(self) -> t.Iterator[bytes]:
        view = memoryview(self._digests)
        for offset in range(0, len(self._digests), DIGEST_SIZE):
            yield bytes(view[offset:offset + DIGEST_SIZE])

    def unique_data_digests(self) -> set[bytes]:
        return set(self.data_digests())

    @property
    def zero_chunk_count(self) -> int:
        return sum(count for kind, count in self._runs if kind == "zeros")

    def to_json(self) -> list[dict]:
        encoded = []
        offset = 0
        for kind, count in self._runs:
            if kind == "zeros":
                encoded.append({"zeros": count})
                continue
            remaining = count
            while remaining:
                take = min(remaining, _DIGESTS_PER_RUN)
                packed = self._digests[offset:offset + take * DIGEST_SIZE]
                encoded.append({"ids": base64.b64encode(packed).decode("ascii")})
                offset += take * DIGEST_SIZE
                remaining -= take
        return encoded

    @classmethod
    def from_json(cls, runs: t.Any) -> ChunkMap:
        chunk_map = cls()
        if not isinstance(runs, list):
            raise ValueError("'chunks' must be a list")
        for run in runs:
            if not isinstance(run, dict) or len(run) != 1:
                raise ValueError("each chunk run is an object with one key")
            if "zeros" in run:
                count = run["zeros"]
                if not isinstance(count, int) or count < 1:
                    raise ValueError("a zero run needs a positive count")
                chunk_map._runs.append(["zeros", count])
                chunk_map.chunk_count += count
            elif "ids" in run:
                packed = base64.b64decode(run["ids"], validate=True)
                if not packed or len(packed) % DIGEST_SIZE:
                    raise ValueError("packed chunk ids have a wrong length")
                count = len(packed) // DIGEST_SIZE
                if chunk_map._runs and chunk_map._runs[-1][0] == "data":
                    chunk_map._runs[-1][1] += count
                else:
                    chunk_map._runs.append(["data", count])
                chunk_map._digests += packed
                chunk_map.chunk_count += count
            else:
                raise ValueError(f"unknown chunk run {sorted(run)}")
        return chunk_map


class ZeroClusterMap:
    """The all-zero clusters inside stored chunks: one record for each chunk that has any.

    A record is the chunk's index (4 bytes, little-endian) and its bitmap: one bit per cluster,
    LSB first, set when the cluster is all zeros. Zero chunks and chunks with data in every
    cluster have no record, so they cost nothing.
    """

    def __init__(self, chunk_size: int, cluster_size: int = ZERO_CLUSTER_SIZE) -> None:
        if not _whole_bytes_of_clusters(chunk_size, cluster_size):
            raise ValueError(f"a zero-cluster map needs whole bytes of {cluster_size}-byte clusters per chunk")
        self.cluster_size = cluster_size
        self.bitmap_size = zero_bitmap_size(chunk_size, cluster_size)
        self._records = bytearray()
        self._last_index = -1

    def add(self, chunk_index: int, bitmap: bytes) -> None:
        if len(bitmap) != self.bitmap_size or not any(bitmap):
            raise ValueError(f"a zero-cluster bitmap is {self.bitmap_size} bytes with a bit set")
        if not self._last_index < chunk_index < 2 ** (8 * _INDEX_SIZE):
            raise ValueError(f"zero-cluster records go in ascending chunk order, got {chunk_index} after {self._last_index}")
        self._records += chunk_index.to_bytes(_INDEX_SIZE, "little") + bitmap
        self._last_index = chunk_index

    @property
    def _record_size(self) -> int:
        return _INDEX_SIZE + self.bitmap_size

    def __len__(self) -> int:
        return len(self._records) // self._record_size

    def __iter__(self) -> t.Iterator[tuple[int, bytes]]:
        """(chunk index, bitmap) of every chunk with all-zero clusters, in chunk order."""
        view = memoryview(self._records)
        for offset in range(0, len(self._records), self._record_size):
            index = int.from_bytes(view[offset:offset + _INDEX_SIZE], "little")
            yield index, bytes(view[offset + _INDEX_SIZE:offset + self._record_size])

    def to_json(self) -> dict:
        step = _RECORDS_PER_STRING * self._record_size
        packed = [base64.b64encode(self._records[offset:offset + step]).decode("ascii")
                  for offset in range(0, len(self._records), step)]
        return {"cluster_size": self.cluster_size, "records": packed}

    @classmethod
    def from_json(cls, value: t.Any, chunk_size: int) -> ZeroClusterMap:
        if not isinstance(value, dict) or not isinstance(value.get("records"), list):
            raise ValueError("'zero_clusters' needs a cluster size and a list of records")
        zero_clusters = cls(chunk_size, value.get("cluster_size"))
        for packed in value["records"]:
            records = base64.b64decode(packed, validate=True)
            if not records or len(records) % zero_clusters._record_size:
                raise ValueError("packed zero-cluster records have a wrong length")
            for offset in range(0, len(records), zero_clusters._record_size):
                index = int.from_bytes(records[offset:offset + _INDEX_SIZE], "little")
                zero_clusters.add(index, records[offset + _INDEX_SIZE:offset + zero_clusters._record_size])
        return zero_clusters


class Manifest:
    """A complete backup, as stored in the bank."""

    def __init__(self, document: dict, chunk_map: ChunkMap, zero_clusters: ZeroClusterMap | None = None) -> None:
        self.document = document
        self.chunk_map = chunk_map
        # None in a manifest written before zero clusters were recorded: every cluster of a data chunk counts.
        self.zero_clusters = zero_clusters

    backup_id = property(lambda self: self.document["backup_id"])
    backup_name = property(lambda self: self.document["backup_name"])
    size = property(lambda self: self.document["size"])
    chunk_size = property(lambda self: self.document["chunk_size"])
    hashes = property(lambda self: self.document["hashes"])
    source = property(lambda self: self.document.get("source") or {})
    created_at = property(lambda self: self.document["created_at"])
    stats = property(lambda self: self.document.get("stats") or {})

    @classmethod
    def new(cls, *, backup_id: str, backup_name: str, description: str, source: dict, created_at: str,
            chunk_size: int, chunk_map: ChunkMap, zero_clusters: ZeroClusterMap, size: int, hashes: dict,
            encrypted: bool, compression_level: int, stats: dict) -> Manifest:
        """The manifest of a backup whose every chunk is stored."""
        document = {
            **MANIFEST_FORMAT.stamp(),
            "collection_version": COLLECTION_VERSION,
            "backup_id": backup_id,
            "backup_name": backup_name,
            "description": description,
            "created_at": created_at,
            "completed_at": utc_now(),
            "source": source,
            "size": size,
            "chunk_size": chunk_size,
            "chunk_count": chunk_map.chunk_count,
            "algorithms": {
                "chunk_id": "hmac-sha256" if encrypted else "sha256",
                "compression": "zstd",
                "compression_level": compression_level,
                "encryption": "aes-256-gcm" if encrypted else "none",
            },
            "hashes": hashes,
            "stats": stats,
        }
        return cls(document, chunk_map, zero_clusters)

    def chunk_length(self, index: int) -> int:
        """Bytes of chunk ``index``: the chunk size, less for the last one."""
        if index == self.chunk_map.chunk_count - 1:
            return self.size - index * self.chunk_size
        return self.chunk_size

    def allocation_bitmap(self, cluster_size: int = ZERO_CLUSTER_SIZE) -> bytes:
        """One bit per cluster of the whole volume, LSB first: 1 may hold data, 0 is known to be all zeros.

        A final partial cluster counts as a cluster; the bits past the last cluster are 0. ``cluster_size``
        is a power of two from 512 bytes with whole bytes of clusters per chunk (at most 128 KiB at 1 MiB
        chunks). Without a zero-cluster map (older manifests) every cluster of a data chunk may hold data.
        """
        if not _whole_bytes_of_clusters(self.chunk_size, cluster_size):
            raise ValueError(f"cluster_size {cluster_size} does not divide {self.chunk_size}-byte chunks into whole bytes")
        per_chunk = self.chunk_size // cluster_size // 8
        bitmap = bytearray()
        for kind, count in self.chunk_map.runs():
            bitmap += (b"\xff" if kind == "data" else b"\x00") * (count * per_chunk)
        for index, zero_bits in self.zero_clusters or ():
            bitmap[index * per_chunk:(index + 1) * per_chunk] = _chunk_allocation(
                zero_bits, self.zero_clusters.cluster_size, cluster_size, per_chunk)
        clusters = -(-self.size // cluster_size)
        del bitmap[(clusters + 7) // 8:]
        if clusters % 8:
            bitmap[-1] &= (1 << (clusters % 8)) - 1
        return bytes(bitmap)

    def to_bytes(self, sealer: DocumentSealer | None = None, key: str | None = None) -> bytes:
        """The stored object: in clear (version 1), or sealed for the object ``key`` (version 2)."""
        document = dict(self.document)
        document["chunks"] = self.chunk_map.to_json()
        if self.zero_clusters is not None:
            document["zero_clusters"] = self.zero_clusters.to_json()
        return MANIFEST_FORMAT.dumps(document, sealer=sealer, key=key)

    @classmethod
    def from_bytes(cls, data: bytes, where: str, sealer: DocumentSealer | None = None, key: str | None = None) -> Manifest:
        """The manifest in ``data``; a sealed one is opened with ``sealer`` for the object ``key``."""
        document = MANIFEST_FORMAT.load(data, where, sealer, key)
        try:
            chunk_map = ChunkMap.from_json(document.pop("chunks"))
            expected_chunks = -(-document["size"] // document["chunk_size"])
        except (KeyError, TypeError, ValueError, binascii.Error) as exc:
            raise ManifestError(f"The manifest {where} has an invalid chunk list: {exc}") from exc
        if chunk_map.chunk_count != expected_chunks or document.get("chunk_count") != expected_chunks:
            raise ManifestError(
                f"The manifest {where} lists {chunk_map.chunk_count} chunks but a size of {document['size']} "
                f"bytes needs {expected_chunks}: it is truncated or corrupt"
            )
        manifest = cls(document, chunk_map)
        if "zero_clusters" in document:
            try:
                manifest.zero_clusters = ZeroClusterMap.from_json(document.pop("zero_clusters"), manifest.chunk_size)
                _check_zero_clusters(manifest)
            except (TypeError, ValueError, binascii.Error) as exc:
                raise ManifestError(f"The manifest {where} has an invalid zero-cluster map: {exc}") from exc
        return manifest


def _chunk_allocation(zero_bits: bytes, recorded_size: int, cluster_size: int, per_chunk: int) -> bytes:
    """A chunk's allocation bits at ``cluster_size`` from its zero bits at ``recorded_size``."""
    if cluster_size == recorded_size:
        return zero_bits.translate(_INVERT)
    zeros = int.from_bytes(zero_bits, "little")
    # A cluster is known zero only when every recorded cluster it overlaps is.
    span = max(1, cluster_size // recorded_size)
    mask = (1 << span) - 1
    allocated = 0
    for cluster in range(per_chunk * 8):
        if (zeros >> (cluster * cluster_size // recorded_size)) & mask != mask:
            allocated |= 1 << cluster
    return allocated.to_bytes(per_chunk, "little")


def _check_zero_clusters(manifest: Manifest) -> None:
    """Each record names a data chunk of this backup, and no cluster past the end of the volume."""
    runs = manifest.chunk_map.runs()
    kind, run_end = "zeros", 0
    last = manifest.chunk_map.chunk_count - 1
    for index, bitmap in manifest.zero_clusters:
        while index >= run_end:
            kind, count = next(runs, ("end", 0))
            if kind == "end":
                raise ValueError(f"chunk {index} is past the last chunk {last}")
            run_end += count
        if kind != "data":
            raise ValueError(f"chunk {index} is a zero chunk")
        if index == last:
            clusters = -(-manifest.chunk_length(index) // manifest.zero_clusters.cluster_size)
            if int.from_bytes(bitmap, "little") >> clusters:
                raise ValueError(f"chunk {index} has zero clusters past the end of the volume")
