# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Whole-stream hashing in a thread of its own, shared by the backup writer and the restore reader."""

from __future__ import annotations

import hashlib
import queue
import threading


class StreamHasher:
    """Hashes the whole stream in a thread of its own, fed in order through a bounded queue."""

    def __init__(self, algorithm: str, depth: int) -> None:
        self.algorithm = algorithm
        self._hash = hashlib.new(algorithm)
        # Room for a few chunks, so a slow hash does not stall the cutting of the next chunk.
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._thread = threading.Thread(target=self._run, name=f"hash-{algorithm}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            data = self._queue.get()
            if data is None:
                return
            self._hash.update(data)

    def update(self, data: bytes) -> None:
        self._queue.put(data)

    def hexdigest(self) -> str:
        self._queue.put(None)
        self._thread.join()
        return self._hash.hexdigest()

    def abandon(self) -> None:
        try:
            self._queue.put_nowait(None)
        except queue.Full:
            # The thread is daemonic and blocked on nothing but the queue: drain one slot and stop it.
            try:
                self._queue.get_nowait()
            except queue.Empty:
                pass
            self._queue.put(None)
