# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The backup manifest: one versioned, self-describing JSON document per backup.

Its presence in the bank means the backup is complete, so it is written last.
The ordered chunk list is kept compact: runs of all-zero chunks are counted,
and the ids of stored chunks are packed as raw 32-byte digests (base64 in
JSON), never as a list of Python strings. A 1 TiB volume at 4 MiB chunks
therefore needs about 11 MB. The format is described in docs/bank-format.md.
"""

from __future__ import annotations

import base64
import binascii
import json
import typing as t

from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import ManifestError

MANIFEST_FORMAT = "openstack_dr.bank/backup-manifest"
MANIFEST_FORMAT_VERSION = 1
COLLECTION_VERSION = "0.1.0"
DIGEST_SIZE = 32
# Keeps each JSON string of packed digests a reasonable size to parse and diff.
_DIGESTS_PER_RUN = 4096


def source_summary(source: dict) -> dict:
    """The parts of a backup's source that listings and results show: the volume and where it lived."""
    volume = (source or {}).get("volume") or {}
    return {
        "source_volume": {key: volume.get(key) for key in ("id", "name", "size", "volume_type", "bootable", "availability_zone")},
        "source_cloud": {key: volume.get(key) for key in ("cloud", "region")},
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


class Manifest:
    """A complete backup, as stored in the bank."""

    def __init__(self, document: dict, chunk_map: ChunkMap) -> None:
        self.document = document
        self.chunk_map = chunk_map

    backup_id = property(lambda self: self.document["backup_id"])
    backup_name = property(lambda self: self.document["backup_name"])
    size = property(lambda self: self.document["size"])
    chunk_size = property(lambda self: self.document["chunk_size"])
    hashes = property(lambda self: self.document["hashes"])
    source = property(lambda self: self.document.get("source") or {})
    created_at = property(lambda self: self.document["created_at"])

    def summary(self) -> dict:
        """Everything but the chunk list: what results and listings show."""
        return {key: value for key, value in self.document.items() if key != "chunks"}

    def to_bytes(self) -> bytes:
        document = dict(self.document)
        document["chunks"] = self.chunk_map.to_json()
        return json.dumps(document, indent=1, sort_keys=True).encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes, where: str) -> Manifest:
        try:
            document = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise ManifestError(f"The manifest {where} is truncated or corrupt: {exc}") from exc
        if not isinstance(document, dict) or document.get("format") != MANIFEST_FORMAT:
            raise ManifestError(f"{where} is not an openstack_dr.bank backup manifest")
        version = document.get("format_version")
        if version != MANIFEST_FORMAT_VERSION:
            raise ManifestError(
                f"The manifest {where} has format version {version!r}; this collection reads version "
                f"{MANIFEST_FORMAT_VERSION}. Use a newer openstack_dr.bank collection."
            )
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
        return cls(document, chunk_map)
