# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backup side of the chunk engine: any iterator of bytes in, chunks and a manifest out.

The input is cut into fixed-size chunks whatever the size of the pieces it
arrives in. All-zero chunks are only counted. Other chunks are scanned for
all-zero clusters, hashed, checked against the bank and, when new, compressed,
encrypted and uploaded by a small pool of threads with a bounded number in
flight, so memory stays flat whatever the volume size. The whole-stream hashes
run in their own threads. The manifest is written last, and only when every
chunk is safely stored.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import threading
import time
import typing as t

from ansible_collections.openstack_dr.bank.plugins.module_utils._bank.base import Bank
from ansible_collections.openstack_dr.bank.plugins.module_utils._bank.counting import CountingBank
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.chunking import (
    rechunk,
    validate_chunk_size,
    validate_parallelism,
    zero_bitmap_size,
    zero_cluster_bitmap,
)
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.codec import ChunkCodec
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.documents import Progress, utc_now
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.hashing import StreamHasher
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.immutability import LockPlan
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.known_chunks import (
    KnownChunks,
    PackedIdSet,
    read_source_index,
    source_index_bytes,
    source_index_key,
    source_volume_id,
)
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.layout import (
    chunk_key,
    manifest_key,
    progress_key,
)
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.locks import SHARED, BankLock
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.malloc_arenas import limit_malloc_arenas
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.units import MIB
from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import BankError, IntegrityError
from ansible_collections.openstack_dr.bank.plugins.module_utils._manifest import (
    ChunkMap,
    Manifest,
    ZeroClusterMap,
)


@dataclasses.dataclass
class BackupStats:
    """What a backup run read, skipped and wrote: the ``stats`` of its result and manifest."""

    bytes_read: int = 0
    zero_bytes: int = 0
    duplicate_bytes: int = 0
    new_bytes: int = 0
    bytes_written: int = 0
    chunks: int = 0
    zero_chunks: int = 0
    duplicate_chunks: int = 0
    chunks_written: int = 0
    chunks_checked: int = 0  # existence checks (HEAD) of chunks no parent backup or listing named
    requests: dict = dataclasses.field(default_factory=dict)  # bank requests by kind, live from CountingBank
    started: float = dataclasses.field(default_factory=time.monotonic)
    seconds: float = 0.0

    def as_dict(self) -> dict:
        seconds = self.seconds or (time.monotonic() - self.started)
        return {
            "bytes_read": self.bytes_read,
            "zero_bytes_skipped": self.zero_bytes,
            "duplicate_bytes_skipped": self.duplicate_bytes,
            "new_bytes": self.new_bytes,
            "bytes_written": self.bytes_written,
            "chunks": self.chunks,
            "zero_chunks": self.zero_chunks,
            "duplicate_chunks": self.duplicate_chunks,
            "chunks_written": self.chunks_written,
            "chunks_checked": self.chunks_checked,
            "requests": dict(self.requests),
            "compression_ratio": round(self.new_bytes / self.bytes_written, 3) if self.bytes_written else None,
            "seconds": round(seconds, 3),
            "mib_per_second": round(self.bytes_read / MIB / seconds, 1) if seconds > 0 else None,
        }


@dataclasses.dataclass(frozen=True)
class _ChunkOutcome:
    """What the pool did with one data chunk."""

    digest: bytes
    zero_clusters: bytes | None
    stored: bool
    written: int
    checked: bool = False


class _InFlight:
    """The chunks of one stream between the cutter and the manifest: settled in stream order into
    the chunk map, the zero-cluster map and the stats."""

    def __init__(self, pool: concurrent.futures.Executor, stats: BackupStats, chunk_size: int, limit: int) -> None:
        self.chunk_map = ChunkMap()
        self.zero_clusters = ZeroClusterMap(chunk_size)
        self._pool = pool
        self._stats = stats
        self._limit = limit
        self._queue: collections.deque = collections.deque()

    def add(self, chunk: bytes, is_zero: bool, store_chunk: t.Callable[[bytes], _ChunkOutcome]) -> None:
        self._queue.append((None if is_zero else self._pool.submit(store_chunk, chunk), len(chunk)))
        # Zero chunks at the head cost nothing to settle; data chunks wait until the window is full.
        while len(self._queue) > self._limit or (self._queue and self._queue[0][0] is None):
            self._settle_oldest()

    def drain(self) -> None:
        while self._queue:
            self._settle_oldest()

    def _settle_oldest(self) -> None:
        future, length = self._queue.popleft()
        stats = self._stats
        if future is None:
            self.chunk_map.append_zero()
            stats.zero_bytes += length
            stats.zero_chunks += 1
            return
        outcome: _ChunkOutcome = future.result()
        stats.chunks_checked += outcome.checked
        self.chunk_map.append_data(outcome.digest)
        if outcome.zero_clusters is not None:
            self.zero_clusters.add(self.chunk_map.chunk_count - 1, outcome.zero_clusters)
        if outcome.stored:
            stats.new_bytes += length
            stats.bytes_written += outcome.written
            stats.chunks_written += 1
        else:
            stats.duplicate_bytes += length
            stats.duplicate_chunks += 1


class BackupWriter:
    """Writes one backup: ``write_chunks()`` stores the stream's chunks, ``commit()`` its manifest."""

    def __init__(self, bank: Bank, codec: ChunkCodec, *, backup_id: str, backup_name: str,
                 description: str, source: dict, chunk_size: int, parallelism: int,
                 progress_interval: float, lock_wait_timeout: float) -> None:
        # Counted, so the stats say what the run asked of the bank.
        self.bank = CountingBank(bank)
        self.codec = codec
        self.backup_id = backup_id
        self.backup_name = backup_name
        self.description = description
        self.source = source
        self.chunk_size = validate_chunk_size(chunk_size)
        self.parallelism = validate_parallelism(parallelism)
        self.progress_interval = progress_interval
        self.lock_wait_timeout = lock_wait_timeout
        self.stats = BackupStats(requests=self.bank.counts)
        limit_malloc_arenas()  # before the pool's threads exist
        self._zero_chunk = bytes(self.chunk_size)
        self._zero_bitmap_size = zero_bitmap_size(self.chunk_size)
        self._known_chunks: set[bytes] = set()
        self._stored = KnownChunks(PackedIdSet(), check_each=True, parents=[], listed=False)
        volume_id = source_volume_id(self.source)
        self._source_index_key = source_index_key(codec.identity, volume_id) if volume_id else None
        self._source_index: list[str] = []
        self._known_lock = threading.Lock()
        self._created_at = utc_now()
        # With S3 Object Lock: the dates until which this backup's objects must stay locked.
        self._lock_plan = LockPlan.for_bank(self.bank, time.time())
        self._expected_size: int | None = None
        self._last_progress = 0.0
        self._lock: BankLock | None = None
        self._manifest: Manifest | None = None

    # -- chunk work, in the pool threads ------------------------------------------------------

    def _store_chunk(self, chunk: bytes) -> _ChunkOutcome:
        zero_clusters = zero_cluster_bitmap(chunk, self._zero_bitmap_size)
        digest = self.codec.identity(chunk)
        plan = self._lock_plan
        if digest in self._stored.known:
            if plan is None or plan.covers(self._stored.protected_until):
                return _ChunkOutcome(digest, zero_clusters, False, 0)
            if self._claimed_before(digest) or plan.protect_existing(self.bank, chunk_key(digest)):
                return _ChunkOutcome(digest, zero_clusters, False, 0, checked=True)
            return self._upload(digest, chunk, zero_clusters, checked=True)
        # Claimed before the upload, so a chunk repeated within the run is stored once;
        # if the claiming upload fails the whole backup fails, so the claim never hides a gap.
        if self._claimed_before(digest):
            return _ChunkOutcome(digest, zero_clusters, False, 0)
        key = chunk_key(digest)
        # Another volume may hold it (clones of one image): one HEAD, here in the pool, beside the hashing.
        if self._stored.check_each:
            found = plan.protect_existing(self.bank, key) if plan is not None else self.bank.exists(key)
            if found:
                return _ChunkOutcome(digest, zero_clusters, False, 0, checked=True)
        return self._upload(digest, chunk, zero_clusters, checked=self._stored.check_each)

    def _claimed_before(self, digest: bytes) -> bool:
        """Claim ``digest`` for this thread; True when another chunk of the run claimed it first."""
        with self._known_lock:
            seen = digest in self._known_chunks
            self._known_chunks.add(digest)
        return seen

    def _upload(self, digest: bytes, chunk: bytes, zero_clusters: t.Any, checked: bool) -> _ChunkOutcome:
        blob = self.codec.encode(digest, chunk)
        if self._lock_plan is not None:
            self.bank.put_locked(chunk_key(digest), blob, self._lock_plan.retain_until_date)
        else:
            self.bank.put(chunk_key(digest), blob)
        return _ChunkOutcome(digest, zero_clusters, True, len(blob), checked=checked)

    # -- progress, for bank_backup_info and resumed runs -----------------------------------------

    def _write_progress(self, status: str, error: str | None = None, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_progress < self.progress_interval:
            return
        self._last_progress = now
        progress = Progress(
            backup_id=self.backup_id, backup_name=self.backup_name, status=status, started_at=self._created_at,
            updated_at=utc_now(), bytes_done=self.stats.bytes_read, bytes_total=self._expected_size,
            source=self.source, error=error, holder=self._lock.holder.as_dict() if self._lock is not None else None)
        key = progress_key(self.backup_id)
        self.bank.put(key, progress.to_bytes(self.codec.document_sealer, key))

    # -- the stream ------------------------------------------------------------------------------

    def write_chunks(self, pieces: t.Iterable[bytes], *, expected_size: int | None,
                     expected_hash: tuple[str, str] | None = None) -> None:
        """Store the stream's chunks under a shared bank lock, held until ``commit`` or ``abort``.

        ``expected_size`` (bytes, None when unknown) and ``expected_hash`` (algorithm and hex digest,
        such as Glance's ``os_hash_algo`` and ``os_hash_value``) are checked once the stream ends: a
        mismatch raises ``IntegrityError`` and no manifest can be committed.
        """
        self._expected_size = expected_size
        # Locks are read without the passphrase: an encrypted bank's lock names the backup by id only.
        label = self.backup_id if self.codec.encrypted else self.backup_name
        self._lock = BankLock(self.bank, SHARED, f"backup {label}", wait_timeout=self.lock_wait_timeout)
        self._lock.acquire()
        try:
            self._write_progress("in_progress", force=True)
            # Under the shared lock: no deletion or prune can remove a chunk found here until we are done.
            self._source_index = (read_source_index(self.bank, self._source_index_key, self.codec.document_sealer)
                                  if self._source_index_key else [])
            self._stored = KnownChunks.gather(self.bank, self._source_index, self.backup_id, sealer=self.codec.document_sealer)
            if self._lock_plan is not None and self._lock_plan.covers(self._stored.protected_until):
                self._lock_plan.note(t.cast(float, self._stored.protected_until))
            self._manifest = self._store_chunks(pieces, expected_hash)
        except BaseException as exc:
            self.abort(exc)
            raise

    def commit(self) -> Manifest:
        """Write the manifest, which makes the backup complete, and release the lock."""
        if self._manifest is None or self._lock is None:
            raise RuntimeError("commit() needs a successful write_chunks()")
        try:
            self._lock.assert_still_held()
            key = manifest_key(self.backup_id)
            if self._lock_plan is not None:
                # Every chunk is locked by now; the manifest records the earliest of their dates.
                self._manifest.document.update(self._lock_plan.manifest_fields())
                self.bank.put_locked(key, self._manifest.to_bytes(self.codec.document_sealer, key),
                                     self._lock_plan.retain_until_date)
            else:
                self.bank.put(key, self._manifest.to_bytes(self.codec.document_sealer, key))
            if not self.bank.write_only:
                self.bank.delete_many([progress_key(self.backup_id)])  # a complete backup is its manifest
        except BaseException as exc:
            self.abort(exc)
            raise
        self._update_source_index()
        self._lock.release()
        self._lock = None
        return self._manifest

    def _update_source_index(self) -> None:
        """The next backup of this volume starts from this one's chunk ids: a hint, never a dependency."""
        if not self._source_index_key:
            return
        try:
            self.bank.put(self._source_index_key, source_index_bytes(self.backup_id, self._source_index,
                                                                     self.codec.document_sealer, self._source_index_key))
        except BankError:
            pass  # the backup is complete; the next one of this volume asks per chunk instead

    def abort(self, error: BaseException | str | None = None) -> None:
        """Give up: no manifest, the progress object says why, the lock is released."""
        if self._lock is None:
            return
        try:
            self._write_progress("failed", error=str(error or "aborted") or type(error).__name__, force=True)
        except Exception:  # pylint: disable=broad-except
            pass  # the original failure matters more than the progress note
        finally:
            self._lock.release()
            self._lock = None

    def write(self, pieces: t.Iterable[bytes], *, expected_size: int | None = None,
              expected_hash: tuple[str, str] | None = None) -> Manifest:
        """``write_chunks()`` then ``commit()``: the whole backup in one call, for tools and tests."""
        self.write_chunks(pieces, expected_size=expected_size, expected_hash=expected_hash)
        return self.commit()

    def _store_chunks(self, pieces: t.Iterable[bytes], expected_hash: tuple[str, str] | None) -> Manifest:
        hashers = [StreamHasher("sha256", self.parallelism)]
        # Another algorithm is computed only when there is something to check it against:
        # hashing is the costliest step of a backup.
        if expected_hash is not None and expected_hash[0] != "sha256":
            hashers.append(StreamHasher(expected_hash[0], self.parallelism))
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=self.parallelism, thread_name_prefix="chunk")
        # Twice the workers keeps every thread busy while bounding memory to a few chunks.
        in_flight = _InFlight(pool, self.stats, self.chunk_size, limit=self.parallelism * 2)
        try:
            self._cut_stream(pieces, hashers, in_flight)
            in_flight.drain()
            hashes = {hasher.algorithm: hasher.hexdigest() for hasher in hashers}
        except BaseException:
            for hasher in hashers:
                hasher.abandon()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        self.stats.seconds = time.monotonic() - self.stats.started
        self._check_stream(hashes, expected_hash)
        return Manifest.new(
            backup_id=self.backup_id, backup_name=self.backup_name, description=self.description,
            source=self.source, created_at=self._created_at, chunk_size=self.chunk_size,
            chunk_map=in_flight.chunk_map, zero_clusters=in_flight.zero_clusters, size=self.stats.bytes_read, hashes=hashes,
            encrypted=self.codec.encrypted, compression_level=self.codec.compression_level,
            stats=self.stats.as_dict())

    def _cut_stream(self, pieces: t.Iterable[bytes], hashers: list[StreamHasher], in_flight: _InFlight) -> None:
        """The hot loop: every byte of the volume passes here once."""
        stats = self.stats
        for chunk in rechunk(pieces, self.chunk_size):
            length = len(chunk)
            for hasher in hashers:
                hasher.update(chunk)
            stats.bytes_read += length
            stats.chunks += 1
            is_zero = chunk == self._zero_chunk if length == self.chunk_size else chunk == bytes(length)
            in_flight.add(chunk, is_zero, self._store_chunk)
            self._write_progress("in_progress")

    def _check_stream(self, hashes: dict, expected_hash: tuple[str, str] | None) -> None:
        bytes_read = self.stats.bytes_read
        if self._expected_size is not None and bytes_read != self._expected_size:
            raise IntegrityError(
                f"The source stream ended after {bytes_read} bytes but {self._expected_size} were expected")
        if expected_hash is not None:
            algorithm, expected = expected_hash
            if hashes.get(algorithm) != expected.lower():
                raise IntegrityError(
                    f"The {algorithm} of the stream does not match the source's "
                    f"({hashes.get(algorithm)} != {expected}): the download was damaged")
