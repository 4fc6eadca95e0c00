# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one small interface every bank backend implements.

Keys are relative to the bank's root (bucket prefix, container prefix or
directory) and use ``/`` as separator. Data is always ``bytes``: nothing
goes through text mode or JSON on its way to a backend. Implementations are
thread-safe: the chunk engine calls one bank object from several threads.
Transient failures are retried inside the backend; whatever still fails is
raised as a ``BankError`` whose message names the bank, the key and the cause.
"""

from __future__ import annotations

import abc
import datetime
import typing as t

from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import BankObjectNotFoundError


# Keys one bulk delete request carries at most (S3's DeleteObjects limit; versions are S3's alone).
DELETE_BATCH = 1000


class BankObject(t.NamedTuple):
    key: str
    size: int


class ObjectVersion(t.NamedTuple):
    """One version of an object, or a delete marker, in a versioned bucket."""

    key: str
    version_id: str
    size: int
    etag: str  # "" for a delete marker; equal ETags of single-part uploads mean equal bytes
    latest: bool
    delete_marker: bool


class ObjectLock(t.NamedTuple):
    """How long what a backup writes stays immutable (S3 Object Lock), from the ``object_lock_*`` options."""

    mode: str  # "governance" or "compliance"
    days: int
    extension_days: int = 7


class Bank(abc.ABC):
    """A flat key/value object store holding backups."""

    #: The credentials may not delete: whoever coordinates through this bank writes instead.
    write_only: bool = False
    #: Set on a bank whose backups lock what they write (S3 Object Lock); None elsewhere.
    object_lock: ObjectLock | None = None

    #: Human readable location used in every error message, e.g. "s3://bucket/prefix".
    description: str = "bank"
    #: Keys one listing request returns (S3's page; Swift's is 10,000): how request counts are estimated.
    list_page_size: int = 1000

    @abc.abstractmethod
    def put(self, key: str, data: bytes | bytearray | memoryview) -> None:
        """Store ``data`` under ``key``, replacing any previous object atomically."""

    @abc.abstractmethod
    def get(self, key: str) -> bytes:
        """Return the object's bytes; raise ``BankObjectNotFoundError`` when absent."""

    @abc.abstractmethod
    def exists(self, key: str) -> bool:
        """Tell whether an object exists under ``key``."""

    @abc.abstractmethod
    def list(self, prefix: str = "") -> t.Iterator[BankObject]:
        """Yield every object whose key starts with ``prefix``, page by page, in key order."""

    @abc.abstractmethod
    def delete_many(self, keys: t.Iterable[str]) -> int:
        """Delete the keys (bulk where the backend can); absent keys are not an error.

        Returns how many delete requests were made for existing or absent keys.
        """

    def put_locked(self, key: str, data: bytes | bytearray | memoryview, retain_until: datetime.datetime) -> None:
        """``put`` with a lock until ``retain_until``; a bank without ``object_lock`` just stores it."""
        self.put(key, data)

    def locked_until(self, key: str) -> tuple[bool, datetime.datetime | None]:
        """(exists, retain-until date or None when unlocked) of the object's current version (one HEAD)."""
        return self.exists(key), None

    def extend_lock(self, key: str, retain_until: datetime.datetime) -> None:
        """Lock the object's current version until ``retain_until`` (never earlier than it is)."""

    def older_versions(self, key: str) -> t.Iterator[bytes]:
        """The object's earlier versions, oldest first, in a versioned bucket; none elsewhere."""
        return iter(())

    def versioned(self) -> bool:
        """Whether the bank keeps earlier versions (a versioned bucket): a delete then only hides an object."""
        return False

    def list_versions(self, prefix: str = "") -> t.Iterator[ObjectVersion]:
        """Every version and delete marker under ``prefix``: by key, each key's latest first."""
        return iter(())

    def version_locked_until(self, key: str, version_id: str) -> datetime.datetime | None:
        """The retain-until date of one version (one HEAD), or None when it is not locked."""
        return None

    def delete_versions(self, versions: t.Iterable[tuple[str, str]]) -> list[str]:
        """Delete the (key, version id) pairs for good, in bulk; return the keys refused as locked."""
        return []

    def no_such_object(self, key: str) -> BankObjectNotFoundError:
        """The error ``get`` raises for an absent ``key``, worded alike by every backend."""
        return BankObjectNotFoundError(f"{self.description}, key {key!r}: no such object", bank=self.description, key=key)

    def close(self) -> None:
        """Release connections; the default has nothing to release."""

    def __enter__(self) -> Bank:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
