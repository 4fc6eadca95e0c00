# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Banks that hold more chunks than the disk could: for ``make bench-scale`` (docs/benchmarks.md, Scale).

``ManyChunksBank`` is a real file bank whose ``chunks/`` listing also yields ``count`` synthetic chunk
keys, merged in key order; a HEAD or GET of one of them is what the file bank says (absent), which
never happens to a backup of real data. ``PruneSimBank`` is a 10 TiB bank made of nothing: its
manifests are built when read, its chunk listing is generated, and a deletion of a chunk any
manifest references raises, so a prune over it proves which chunks it removed.
"""

from __future__ import annotations

import heapq
import threading
import typing as t
import uuid

from ansible_collections.openstack_dr.bank.plugins.module_utils._bank.base import Bank, BankObject
from ansible_collections.openstack_dr.bank.plugins.module_utils._bank.file import FileBank
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.layout import chunk_key, manifest_key, progress_key
from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import BankObjectNotFoundError
from ansible_collections.openstack_dr.bank.plugins.module_utils._manifest import ChunkMap, Manifest

CHUNK_SIZE = 4 * 1024 * 1024


def synthetic_digest(index: int, count: int) -> bytes:
    """Ids spread evenly over the id space and increasing with ``index``, so keys come out sorted."""
    return (((index + 1) * ((1 << 256) // (count + 1))) | 1).to_bytes(32, "big")


def synthetic_chunks(count: int) -> t.Iterator[BankObject]:
    for index in range(count):
        yield BankObject(chunk_key(synthetic_digest(index, count)), 5000)


class ManyChunksBank(FileBank):
    """A file bank that lists ``count`` synthetic chunks beside its real objects."""

    def __init__(self, path: str, count: int) -> None:
        super().__init__(path, create=True, fsync=False)
        self.count = count
        self.description = f"file bank {self.root} + {count} simulated chunks"

    def list(self, prefix: str = "") -> t.Iterator[BankObject]:
        real = super().list(prefix)
        if not self.count or not ("chunks/".startswith(prefix) or prefix.startswith("chunks/")):
            return real
        synthetic = (entry for entry in synthetic_chunks(self.count) if entry.key.startswith(prefix))
        return heapq.merge(real, synthetic, key=lambda entry: entry.key)


class PruneSimBank(Bank):
    """``manifests`` backups of 16 GiB volumes (4096 chunks of 4 MiB), each sharing half its chunks with
    the one before (daily backups of changing volumes), over ``chunks`` listed chunk ids of which every
    100th is referenced by no manifest (garbage), and ``progress`` leftover progress objects."""

    description = "simulated 10 TiB bank"
    PER_MANIFEST = 4096

    def __init__(self, chunks: int, progress: int = 3) -> None:
        self.chunks = chunks
        live = chunks - chunks // 100
        self.manifests = max(1, (live - self.PER_MANIFEST // 2) // (self.PER_MANIFEST // 2))
        self.referenced = self.manifests * (self.PER_MANIFEST // 2) + self.PER_MANIFEST // 2
        self._last_referenced = self._live_index(self.referenced - 1)
        self.backup_ids = [str(uuid.UUID(int=index + 1)) for index in range(self.manifests)]
        self._index = {manifest_key(backup_id): number for number, backup_id in enumerate(self.backup_ids)}
        self.progress_keys = [progress_key(str(uuid.UUID(int=(1 << 100) + index))) for index in range(progress)]
        self.small: dict[str, bytes] = {}  # locks
        self.deleted_chunks = 0
        self.deleted_other = 0
        self._lock = threading.Lock()

    @staticmethod
    def _live_index(position: int) -> int:
        """The ``position``-th referenced chunk index: every index but those with ``index % 100 == 99``."""
        return position + position // 99

    def _manifest(self, number: int) -> bytes:
        chunk_map = ChunkMap()
        start = number * (self.PER_MANIFEST // 2)
        for position in range(start, start + self.PER_MANIFEST):
            chunk_map.append_data(synthetic_digest(self._live_index(position), self.chunks))
        size = self.PER_MANIFEST * CHUNK_SIZE
        return Manifest.new(
            backup_id=self.backup_ids[number], backup_name=f"sim-{number}", description="", source={"volume": {"id": f"v{number % 100}"}},
            created_at="2026-12-01T00:00:00Z", chunk_size=CHUNK_SIZE, chunk_map=chunk_map, zero_clusters=None, size=size,
            hashes={"sha256": "0" * 64}, encrypted=False, compression_level=3, stats={}).to_bytes()

    def put(self, key, data):
        with self._lock:
            self.small[key] = bytes(data)

    def get(self, key):
        if key in self._index:
            return self._manifest(self._index[key])
        with self._lock:
            if key in self.small:
                return self.small[key]
        raise self.no_such_object(key)

    def exists(self, key):
        try:
            self.get(key)
            return True
        except BankObjectNotFoundError:
            return False

    def list(self, prefix=""):
        if prefix.startswith("chunks/"):
            return synthetic_chunks(self.chunks) if prefix == "chunks/" else iter(())
        if prefix.startswith("backups/"):
            keys = sorted(list(self._index) + self.progress_keys)
            return (BankObject(key, 1000) for key in keys)
        with self._lock:
            return iter([BankObject(key, len(value)) for key, value in sorted(self.small.items()) if key.startswith(prefix)])

    def delete_many(self, keys):
        count = 0
        for key in keys:
            count += 1
            if key.startswith("chunks/"):
                index = int(key.rsplit("/", 1)[1], 16) // ((1 << 256) // (self.chunks + 1)) - 1
                if index % 100 != 99 and index <= self._last_referenced:
                    raise AssertionError(f"the prune deleted the referenced chunk {key}")
                self.deleted_chunks += 1
            elif key.startswith("locks/"):
                with self._lock:
                    self.small.pop(key, None)
            else:
                self.deleted_other += 1
        return count
