# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A bank that counts the requests it passes on, by kind, for the ``requests`` of a run's stats."""

from __future__ import annotations

import datetime
import threading
import typing as t

from ansible_collections.openstack_dr.bank.plugins.module_utils._bank.base import DELETE_BATCH, Bank, BankObject, ObjectVersion

REQUEST_KINDS = ("get", "head", "put", "list", "delete", "lock")
T = t.TypeVar("T")


class CountingBank(Bank):
    """Passes every call to ``bank`` and counts it: one per get, head (``exists``) and put; a listing
    counts one request per ``list_page_size`` keys (at least one); deletions count what ``delete_many``
    reports; ``lock`` counts the extensions of an object's Object Lock. Retries inside the backend are
    not counted: these are the requests the engine asked for."""

    def __init__(self, bank: Bank) -> None:
        self.inner = bank
        self.description = bank.description
        self.list_page_size = bank.list_page_size
        self.write_only = bank.write_only
        self.object_lock = bank.object_lock
        self.counts = dict.fromkeys(REQUEST_KINDS, 0)
        self.list_keys = 0
        self.bytes_read = 0
        self._lock = threading.Lock()

    def _count(self, kind: str, requests: int = 1, bytes_read: int = 0) -> None:
        with self._lock:
            self.counts[kind] += requests
            self.bytes_read += bytes_read

    def snapshot(self) -> dict:
        with self._lock:
            return dict(self.counts)

    def put(self, key: str, data: bytes | bytearray | memoryview) -> None:
        self._count("put")
        self.inner.put(key, data)

    def get(self, key: str) -> bytes:
        self._count("get")
        data = self.inner.get(key)
        self._count("get", 0, len(data))
        return data

    def exists(self, key: str) -> bool:
        self._count("head")
        return self.inner.exists(key)

    def put_locked(self, key: str, data: bytes | bytearray | memoryview, retain_until: datetime.datetime) -> None:
        self._count("put")
        self.inner.put_locked(key, data, retain_until)

    def locked_until(self, key: str) -> tuple[bool, datetime.datetime | None]:
        self._count("head")
        return self.inner.locked_until(key)

    def older_versions(self, key: str) -> t.Iterator[bytes]:
        for data in self.inner.older_versions(key):
            self._count("get", 1, len(data))
            yield data

    def extend_lock(self, key: str, retain_until: datetime.datetime) -> None:
        self._count("lock")
        self.inner.extend_lock(key, retain_until)

    def versioned(self) -> bool:
        return self.inner.versioned()

    def _pages(self, entries: t.Iterable[T]) -> t.Iterator[T]:
        """Pass a listing on, counting one request per page of ``list_page_size`` entries (at least one)."""
        self._count("list")
        listed = 0
        for entry in entries:
            listed += 1
            if listed > self.list_page_size and listed % self.list_page_size == 1:
                self._count("list")  # the next page
            yield entry

    def list_versions(self, prefix: str = "") -> t.Iterator[ObjectVersion]:
        return self._pages(self.inner.list_versions(prefix))

    def version_locked_until(self, key: str, version_id: str) -> datetime.datetime | None:
        self._count("head")
        return self.inner.version_locked_until(key, version_id)

    def delete_versions(self, versions: t.Iterable[tuple[str, str]]) -> list[str]:
        versions = list(versions)
        self._count("delete", -(-len(versions) // DELETE_BATCH))  # one bulk request per batch
        return self.inner.delete_versions(versions)

    def list(self, prefix: str = "") -> t.Iterator[BankObject]:
        for entry in self._pages(self.inner.list(prefix)):
            with self._lock:
                self.list_keys += 1
            yield entry

    def delete_many(self, keys: t.Iterable[str]) -> int:
        requests = self.inner.delete_many(keys)
        self._count("delete", requests)
        return requests

    def close(self) -> None:
        self.inner.close()
