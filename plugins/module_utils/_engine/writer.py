# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backup side of the chunk engine: any iterator of bytes in, chunks and a manifest out.

The input is cut into fixed-size chunks whatever the size of the pieces it
arrives in. All-zero chunks are only counted. Other chunks are hashed, checked
against the bank and, when new, compressed, encrypted and uploaded by a small
pool of threads with a bounded number in flight, so memory stays flat whatever
the volume size. The whole-stream hashes run in their own threads. The
manifest is written last, and only when every chunk is safely stored.
"""

from __future__ import annotations

import collections
import concurrent.futures
import json
import threading
import time
import typing as t

from ansible_collections.openstack_dr.bank.plugins.module_utils._bank.base import Bank
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.codec import ChunkCodec
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.hashing import StreamHasher
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.layout import (
    CHUNKS_PREFIX,
    chunk_key,
    digest_from_chunk_key,
    manifest_key,
    progress_key,
)
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.locks import SHARED, BankLock
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.memory import limit_malloc_arenas
from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import IntegrityError, InvalidInputError
from ansible_collections.openstack_dr.bank.plugins.module_utils._manifest import (
    COLLECTION_VERSION,
    DIGEST_SIZE,
    MANIFEST_FORMAT,
    MANIFEST_FORMAT_VERSION,
    ChunkMap,
    Manifest,
)

MIB = 1024 * 1024
DEFAULT_CHUNK_SIZE = 4 * MIB
ALLOWED_CHUNK_SIZES = tuple(MIB << power for power in range(7))  # 1 MiB .. 64 MiB


def validate_chunk_size(chunk_size: int) -> int:
    if chunk_size not in ALLOWED_CHUNK_SIZES:
        raise InvalidInputError(
            f"chunk_size must be a power of two from 1 MiB to 64 MiB (1048576 .. 67108864 bytes), got {chunk_size}")
    return chunk_size


def validate_parallelism(parallelism: int) -> int:
    if not 1 <= parallelism <= 64:
        raise InvalidInputError(f"parallelism must be between 1 and 64, got {parallelism}")
    return parallelism


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


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


class StoredChunkIndex:
    """The ids of the chunks a bank held when the backup started: one listing instead of a request per chunk.

    Packed and sorted (32 bytes per chunk, 8 MiB for a full 1 TiB volume) rather than a set of bytes
    objects, which would cost about four times as much memory.
    """

    def __init__(self, digests: t.Iterable[bytes]) -> None:
        ordered = sorted(set(digests))
        self._packed = b"".join(ordered)
        self._count = len(ordered)

    def __len__(self) -> int:
        return self._count

    def __contains__(self, digest: bytes) -> bool:
        low, high = 0, self._count
        while low < high:
            middle = (low + high) // 2
            candidate = self._packed[middle * DIGEST_SIZE:(middle + 1) * DIGEST_SIZE]
            if candidate == digest:
                return True
            if candidate < digest:
                low = middle + 1
            else:
                high = middle
        return False

    @classmethod
    def from_bank(cls, bank: Bank) -> StoredChunkIndex:
        return cls(digest for digest in (digest_from_chunk_key(entry.key) for entry in bank.list(CHUNKS_PREFIX)) if digest)


class BackupStats:
    def __init__(self) -> None:
        self.bytes_read = 0
        self.zero_bytes = 0
        self.duplicate_bytes = 0
        self.new_bytes = 0
        self.bytes_written = 0
        self.chunks = 0
        self.zero_chunks = 0
        self.duplicate_chunks = 0
        self.chunks_written = 0
        self.started = time.monotonic()
        self.seconds = 0.0

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
            "compression_ratio": round(self.new_bytes / self.bytes_written, 3) if self.bytes_written else None,
            "seconds": round(seconds, 3),
            "mib_per_second": round(self.bytes_read / MIB / seconds, 1) if seconds > 0 else None,
        }


class BackupWriter:
    """Writes one backup; ``write()`` returns its manifest once everything is stored."""

    def __init__(self, bank: Bank, codec: ChunkCodec, *, backup_id: str, backup_name: str,
                 description: str = "", source: dict | None = None, chunk_size: int = DEFAULT_CHUNK_SIZE,
                 parallelism: int = 4, expected_size: int | None = None,
                 extra_hash: tuple[str | None, str | None] = (None, None), progress_interval: float = 30.0,
                 lock_wait_timeout: float = 600.0) -> None:
        self.bank = bank
        self.codec = codec
        self.backup_id = backup_id
        self.backup_name = backup_name
        self.description = description
        self.source = source or {}
        self.chunk_size = validate_chunk_size(chunk_size)
        self.parallelism = validate_parallelism(parallelism)
        self.expected_size = expected_size
        # (algorithm, expected hex digest), e.g. Glance's os_hash_algo and os_hash_value: computed only
        # when there is something to check it against, since hashing is the costliest step of a backup.
        self.extra_hash_algorithm, self.extra_hash_expected = extra_hash
        self.progress_interval = progress_interval
        self.lock_wait_timeout = lock_wait_timeout
        self.stats = BackupStats()
        limit_malloc_arenas()  # before the pool's threads exist
        self._zero_chunk = bytes(self.chunk_size)
        self._known_chunks: set[bytes] = set()
        self._stored_chunks = StoredChunkIndex(())
        self._known_lock = threading.Lock()
        self._created_at = utc_now()
        self._last_progress = 0.0
        self._lock: BankLock | None = None
        self._manifest: Manifest | None = None

    # -- chunk work, in the pool threads ------------------------------------------------------

    def _store_chunk(self, chunk: bytes) -> tuple[bytes, bool, int]:
        digest = self.codec.identity(chunk)
        if digest in self._stored_chunks:
            return digest, False, 0
        # Claimed before the upload, so a chunk repeated within the run is stored once;
        # if the claiming upload fails the whole backup fails, so the claim never hides a gap.
        with self._known_lock:
            seen = digest in self._known_chunks
            self._known_chunks.add(digest)
        if seen:
            return digest, False, 0
        blob = self.codec.encode(digest, chunk)
        self.bank.put(chunk_key(digest), blob)
        return digest, True, len(blob)

    # -- progress, for bank_backup_info and resumed runs -----------------------------------------

    def _write_progress(self, status: str, error: str | None = None, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_progress < self.progress_interval:
            return
        self._last_progress = now
        document = {
            "backup_id": self.backup_id,
            "backup_name": self.backup_name,
            "status": status,
            "started_at": self._created_at,
            "updated_at": utc_now(),
            "bytes_done": self.stats.bytes_read,
            "bytes_total": self.expected_size,
            "source": self.source,
        }
        if error:
            document["error"] = error
        self.bank.put(progress_key(self.backup_id), json.dumps(document, sort_keys=True).encode("utf-8"))

    # -- the stream ------------------------------------------------------------------------------

    def write(self, pieces: t.Iterable[bytes]) -> Manifest:
        """Store every chunk, then the manifest: the whole backup in one call."""
        self.write_chunks(pieces)
        return self.commit()

    def write_chunks(self, pieces: t.Iterable[bytes]) -> None:
        """Store the stream's chunks under a shared bank lock, held until ``commit`` or ``abort``."""
        self._lock = BankLock(self.bank, SHARED, f"backup {self.backup_name}", wait_timeout=self.lock_wait_timeout)
        self._lock.acquire()
        try:
            self._write_progress("in_progress", force=True)
            # Listed under the shared lock: no deletion can remove a listed chunk until we are done.
            self._stored_chunks = StoredChunkIndex.from_bank(self.bank)
            self._manifest = self._store_chunks(pieces)
        except BaseException as exc:
            self.abort(exc)
            raise

    def commit(self) -> Manifest:
        """Write the manifest, which makes the backup complete, and release the lock."""
        if self._manifest is None or self._lock is None:
            raise RuntimeError("commit() needs a successful write_chunks()")
        try:
            self._lock.assert_still_held()
            self.bank.put(manifest_key(self.backup_id), self._manifest.to_bytes())
            self.bank.delete_many([progress_key(self.backup_id)])
        except BaseException as exc:
            self.abort(exc)
            raise
        self._lock.release()
        self._lock = None
        return self._manifest

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

    def _store_chunks(self, pieces: t.Iterable[bytes]) -> Manifest:
        chunk_map = ChunkMap()
        stats = self.stats
        hashers = [StreamHasher("sha256", self.parallelism)]
        if self.extra_hash_algorithm and self.extra_hash_expected and self.extra_hash_algorithm != "sha256":
            hashers.append(StreamHasher(self.extra_hash_algorithm, self.parallelism))
        # Twice the workers keeps every thread busy while bounding memory to a few chunks.
        max_in_flight = self.parallelism * 2
        in_flight: collections.deque = collections.deque()
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=self.parallelism, thread_name_prefix="chunk")
        finished = False

        def settle_oldest() -> None:
            future, length = in_flight.popleft()
            if future is None:
                chunk_map.append_zero()
                return
            digest, stored, written = future.result()
            chunk_map.append_data(digest)
            if stored:
                stats.new_bytes += length
                stats.bytes_written += written
                stats.chunks_written += 1
            else:
                stats.duplicate_bytes += length
                stats.duplicate_chunks += 1

        try:
            for chunk in rechunk(pieces, self.chunk_size):
                length = len(chunk)
                for hasher in hashers:
                    hasher.update(chunk)
                stats.bytes_read += length
                stats.chunks += 1
                is_zero = chunk == self._zero_chunk if length == self.chunk_size else chunk == bytes(length)
                if is_zero:
                    stats.zero_bytes += length
                    stats.zero_chunks += 1
                    in_flight.append((None, length))
                else:
                    in_flight.append((pool.submit(self._store_chunk, chunk), length))
                while len(in_flight) > max_in_flight or (in_flight and in_flight[0][0] is None):
                    settle_oldest()
                self._write_progress("in_progress")
            while in_flight:
                settle_oldest()
            hashes = {hasher.algorithm: hasher.hexdigest() for hasher in hashers}
            finished = True
        finally:
            if not finished:
                for hasher in hashers:
                    hasher.abandon()
            pool.shutdown(wait=True, cancel_futures=True)
        stats.seconds = time.monotonic() - stats.started

        if self.expected_size is not None and stats.bytes_read != self.expected_size:
            raise IntegrityError(
                f"The source stream ended after {stats.bytes_read} bytes but {self.expected_size} were expected")
        if self.extra_hash_expected and hashes.get(self.extra_hash_algorithm) != self.extra_hash_expected.lower():
            raise IntegrityError(
                f"The {self.extra_hash_algorithm} of the stream does not match the source's "
                f"({hashes.get(self.extra_hash_algorithm)} != {self.extra_hash_expected}): the download was damaged")

        document = {
            "format": MANIFEST_FORMAT,
            "format_version": MANIFEST_FORMAT_VERSION,
            "collection_version": COLLECTION_VERSION,
            "backup_id": self.backup_id,
            "backup_name": self.backup_name,
            "description": self.description,
            "created_at": self._created_at,
            "completed_at": utc_now(),
            "source": self.source,
            "size": stats.bytes_read,
            "chunk_size": self.chunk_size,
            "chunk_count": chunk_map.chunk_count,
            "algorithms": {
                "chunk_id": "hmac-sha256" if self.codec.encrypted else "sha256",
                "compression": "zstd",
                "compression_level": self.codec.compression_level,
                "encryption": "aes-256-gcm" if self.codec.encrypted else "none",
            },
            "hashes": hashes,
            "stats": stats.as_dict(),
        }
        return Manifest(document, chunk_map)
