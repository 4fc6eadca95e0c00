# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restore side of the chunk engine: a file-like object yielding a backup's bytes in order.

Chunks are fetched, decrypted, decompressed and verified by a small pool of
threads a bounded number ahead of the reader. No byte of a chunk is handed
out before that chunk is verified, and zero chunks cost no I/O. The hash and
size of the whole stream are checked before the last chunk is handed out, so
a consumer such as a Glance upload never completes on damaged data.
"""

from __future__ import annotations

import collections
import concurrent.futures
import hmac

from ansible_collections.openstack_dr.bank.plugins.module_utils._bank.base import Bank
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.codec import ChunkCodec
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.hashing import StreamHasher
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.layout import chunk_key
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.malloc_arenas import limit_malloc_arenas
from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import BankError, BankObjectNotFoundError, IntegrityError
from ansible_collections.openstack_dr.bank.plugins.module_utils._manifest import Manifest


class BackupReader:
    """``read(n)`` the original bytes of a backup. Supports ``len()`` and ``tell()`` for HTTP bodies."""

    def __init__(self, bank: Bank, codec: ChunkCodec, manifest: Manifest, parallelism: int) -> None:
        self.bank = bank
        self.codec = codec
        self.manifest = manifest
        self.size = manifest.size
        self._chunk_size = manifest.chunk_size
        self._chunk_count = manifest.chunk_map.chunk_count
        self._zero_chunk = bytes(self._chunk_size)
        self._chunks = enumerate(manifest.chunk_map)
        limit_malloc_arenas()  # before the pool's threads exist
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=parallelism, thread_name_prefix="restore")
        self._read_ahead = parallelism * 2
        self._pending: collections.deque = collections.deque()
        self._current = memoryview(b"")
        self._offset = 0
        self._position = 0
        self._next_index = 0
        self._stream_hash = StreamHasher("sha256", parallelism)
        self._closed = False
        self._exhausted = False

    # -- background work ---------------------------------------------------------------------------

    def _fetch_chunk(self, index: int, digest: bytes) -> bytes:
        key = chunk_key(digest)
        where = f"chunk {index} ({key}) of backup {self.manifest.backup_name!r} in {self.bank.description}"
        try:
            try:
                blob = self.bank.get(key)
            except BankObjectNotFoundError:
                raise IntegrityError(f"The backup is damaged: {where} is missing from the bank") from None
            return self.codec.decode(digest, blob, self.manifest.chunk_length(index), where)
        except (BankError, IntegrityError):  # a foreign overwrite may also be unreadable (403)
            # A versioned (Object Lock) bucket keeps what was first written under a delete marker or an
            # overwrite: a chunk's id names its content, so the first version that verifies is the chunk.
            for older in self.bank.older_versions(key):
                try:
                    return self.codec.decode(digest, older, self.manifest.chunk_length(index), where)
                except IntegrityError:
                    continue
            raise

    def _fill_read_ahead(self) -> None:
        while len(self._pending) < self._read_ahead:
            try:
                index, digest = next(self._chunks)
            except StopIteration:
                return
            if digest is None:
                self._pending.append((index, None))
            else:
                self._pending.append((index, self._pool.submit(self._fetch_chunk, index, digest)))

    def _next_chunk(self) -> bool:
        self._fill_read_ahead()
        if not self._pending:
            return False
        index, future = self._pending.popleft()
        length = self.manifest.chunk_length(index)
        if future is None:
            data = self._zero_chunk if length == self._chunk_size else bytes(length)
        else:
            data = future.result()
        self._fill_read_ahead()
        self._stream_hash.update(data)
        if index == self._chunk_count - 1:
            self._check_whole_stream()
        self._current = memoryview(data)
        self._offset = 0
        self._next_index = index + 1
        return True

    def _check_whole_stream(self) -> None:
        expected = self.manifest.hashes.get("sha256", "")
        actual = self._stream_hash.hexdigest()
        if not hmac.compare_digest(actual, expected):
            raise IntegrityError(
                f"The restored stream of backup {self.manifest.backup_name!r} has sha256 {actual}, "
                f"but its manifest says {expected}")

    # -- file-like interface ---------------------------------------------------------------------

    def read(self, size: int = -1) -> bytes:
        if self._closed:
            raise ValueError("read from a closed backup reader")
        if size is None or size < 0:
            size = self.size - self._position
        parts = []
        wanted = size
        while wanted > 0:
            available = len(self._current) - self._offset
            if available == 0:
                if not self._next_chunk():
                    break
                continue
            take = min(available, wanted)
            parts.append(self._current[self._offset:self._offset + take])
            self._offset += take
            wanted -= take
        data = b"".join(parts)
        self._position += len(data)
        if not data and not self._exhausted:
            self._exhausted = True
            if self._position != self.size:
                raise IntegrityError(f"The restored stream ended at {self._position} bytes, expected {self.size}")
            if self.size == 0:
                self._check_whole_stream()
        return data

    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def __len__(self) -> int:
        return self.size

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for dummy, future in self._pending:
            if future is not None:
                future.cancel()
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._stream_hash.abandon()

    def __enter__(self) -> BackupReader:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
