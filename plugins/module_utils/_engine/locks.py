# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bank locks: backups share the bank, a deletion needs it alone.

Object stores offer no compare-and-swap, so a run writes its lock first and
only then lists the others: of two runs that race, at least one sees the
other and backs off. Backups hold a shared lock from before their first chunk
check until their manifest is written; a deletion holds an exclusive one, so
it can never remove a chunk that a running backup has just found in the bank.
Locks are refreshed while held; one not refreshed for ``stale_after`` seconds
belongs to a crashed run and is ignored.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import socket
import threading
import time
import uuid

from ansible_collections.openstack_dr.bank.plugins.module_utils._bank.base import Bank
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.layout import LOCKS_PREFIX, lock_key
from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import (
    BankBusyError,
    BankError,
    BankObjectNotFoundError,
)

SHARED = "shared"
EXCLUSIVE = "exclusive"
DEFAULT_REFRESH_INTERVAL = 60.0
DEFAULT_STALE_AFTER = 900.0
DEFAULT_LOCK_WAIT_TIMEOUT = 600.0  # what a backup or a deletion waits for the bank by default (lock_timeout)


@dataclasses.dataclass(eq=False)
class BankLock:
    """One lock held in the bank; use as a context manager or call acquire/release."""

    bank: Bank
    kind: str
    operation: str
    wait_timeout: float = 300.0
    refresh_interval: float = DEFAULT_REFRESH_INTERVAL
    stale_after: float = DEFAULT_STALE_AFTER

    def __post_init__(self) -> None:
        self.key = lock_key(f"{self.kind}-{uuid.uuid4()}")
        self._stop_refreshing = threading.Event()
        self._refresher: threading.Thread | None = None
        self._last_refresh = 0.0

    def _document(self) -> bytes:
        return json.dumps({
            "kind": self.kind,
            "operation": self.operation,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "refreshed_at": time.time(),
        }, sort_keys=True).encode("utf-8")

    def _conflicting_locks(self) -> list[dict]:
        conflicts = []
        now = time.time()
        for entry in self.bank.list(LOCKS_PREFIX):
            if entry.key == self.key:
                continue
            try:
                holder = json.loads(self.bank.get(entry.key).decode("utf-8"))
            except BankObjectNotFoundError:
                continue  # released while we looked
            except (UnicodeDecodeError, ValueError):
                holder = {"kind": EXCLUSIVE, "operation": "unreadable lock", "refreshed_at": now}
            if now - float(holder.get("refreshed_at", 0)) > self.stale_after:
                continue
            if self.kind == EXCLUSIVE or holder.get("kind") == EXCLUSIVE:
                conflicts.append(holder)
        return conflicts

    def acquire(self) -> BankLock:
        deadline = time.monotonic() + self.wait_timeout
        pause = 0.2
        while True:
            self.bank.put(self.key, self._document())
            self._last_refresh = time.monotonic()
            conflicts = self._conflicting_locks()
            if not conflicts:
                break
            self.bank.delete_many([self.key])
            if time.monotonic() >= deadline:
                holders = "; ".join(f"{c.get('operation')} on {c.get('host')} pid {c.get('pid')}" for c in conflicts)
                raise BankBusyError(
                    f"The bank {self.bank.description} is in use ({holders}); gave up waiting for a "
                    f"{self.kind} lock after {self.wait_timeout:.0f} s. Nothing was changed; retry later.")
            # Jitter keeps two runs that collide from colliding again in step.
            time.sleep(min(pause * random.uniform(0.5, 1.5), max(0.0, deadline - time.monotonic())))
            pause = min(pause * 2, 10.0)
        self._stop_refreshing.clear()
        self._refresher = threading.Thread(target=self._refresh_loop, name="bank-lock-refresh", daemon=True)
        self._refresher.start()
        return self

    def _refresh_loop(self) -> None:
        while not self._stop_refreshing.wait(self.refresh_interval):
            try:
                self.bank.put(self.key, self._document())
                self._last_refresh = time.monotonic()
            except BankError:
                pass  # checked by assert_still_held before anything depends on the lock

    def assert_still_held(self) -> None:
        """Fail if the lock may have gone stale, so others could have ignored it."""
        if time.monotonic() - self._last_refresh > self.stale_after * 0.8:
            raise BankBusyError(
                f"Lost the {self.kind} lock on {self.bank.description}: it could not be refreshed for "
                f"{time.monotonic() - self._last_refresh:.0f} s")

    def release(self) -> None:
        self._stop_refreshing.set()
        if self._refresher is not None:
            self._refresher.join(timeout=30)
            self._refresher = None
        try:
            self.bank.delete_many([self.key])
        except BankError:
            pass  # an unreleased lock goes stale and is ignored after stale_after

    def __enter__(self) -> BankLock:
        return self.acquire()

    def __exit__(self, *exc_info) -> None:
        self.release()
