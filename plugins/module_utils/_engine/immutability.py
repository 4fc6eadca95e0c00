# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How one backup keeps every object it depends on locked (S3 Object Lock) until its own date.

A backup needs each of its chunks locked at least until ``required`` (its start plus the bank's
``object_lock_days``). What it writes is locked until ``retain_until`` (``required`` plus the
extension days), and so is any reused chunk whose lock ends before ``required``: a daily backup then
extends a chunk once per extension period, not once per run. ``protected_until`` is the earliest lock
among the backup's objects, recorded in its manifest, so the next backup of the volume knows without a
request whether the chunks it inherits are locked long enough.
"""

from __future__ import annotations

import datetime
import threading

from ansible_collections.openstack_dr.bank.plugins.module_utils._bank.base import Bank, ObjectLock
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.documents import utc_timestamp


# The shortest lock written, for a replica's backup whose dates have passed and no extension days.
MINIMUM_LOCK_SECONDS = 3600


def as_datetime(seconds: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)


class LockPlan:
    """The lock dates of one backup, and the earliest lock among the objects it uses (thread-safe)."""

    def __init__(self, lock: ObjectLock, started: float, *, required: float | None = None) -> None:
        self.lock = lock
        self.required = started + lock.days * 86400 if required is None else required
        # Never a date already past (S3 refuses one): a late copy's plan counts the extension from ``started``.
        self.retain_until = max(max(self.required, started) + lock.extension_days * 86400, started + MINIMUM_LOCK_SECONDS)
        self._earliest = self.retain_until
        self._mutex = threading.Lock()

    @classmethod
    def for_bank(cls, bank: Bank, started: float) -> LockPlan | None:
        return cls(bank.object_lock, started) if bank.object_lock is not None else None

    @classmethod
    def for_replica(cls, bank: Bank, now: float, created_at: float | None, source_protected_until: float | None) -> LockPlan | None:
        """The plan of a backup copied into ``bank`` (a replica): its objects are locked until the later of the
        source's ``protected_until`` and the backup's own date plus the replica's ``object_lock_days``."""
        if bank.object_lock is None:
            return None
        dates = [date for date in (source_protected_until,
                                   None if created_at is None else created_at + bank.object_lock.days * 86400) if date is not None]
        return cls(bank.object_lock, now, required=max(dates) if dates else None)

    def note(self, until: float) -> None:
        with self._mutex:
            self._earliest = min(self._earliest, until)

    def covers(self, until: float | None) -> bool:
        """Whether an object locked until ``until`` (None: unknown or unlocked) is locked long enough."""
        return until is not None and until >= self.required

    def protect_existing(self, bank: Bank, key: str) -> bool:
        """Make the stored object ``key`` locked long enough (one HEAD, one extension when short).

        False when it is gone (deleted behind a delete marker): the caller stores it again.
        """
        exists, until = bank.locked_until(key)
        if not exists:
            return False
        seconds = until.timestamp() if until is not None else None
        if self.covers(seconds):
            self.note(seconds)
        else:
            bank.extend_lock(key, as_datetime(self.retain_until))
        return True

    @property
    def retain_until_date(self) -> datetime.datetime:
        return as_datetime(self.retain_until)

    @property
    def protected_until(self) -> str:
        return utc_timestamp(self._earliest)

    def manifest_fields(self) -> dict:
        return {"protected_until": self.protected_until,
                "object_lock": {"mode": self.lock.mode, "days": self.lock.days, "extension_days": self.lock.extension_days}}
