# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bank locks: backups share the bank, a deletion needs it alone; a lock whose holder is gone is broken.

Object stores offer no compare-and-swap, so a run writes its lock first and
only then lists the others: of two runs that race, at least one sees the
other and backs off. Backups hold a shared lock from before their first chunk
check until their manifest is written; a deletion holds an exclusive one, so
it can never remove a chunk that a running backup has just found in the bank.

A lock names its holder (host, boot id, pid namespace, pid, process start
time) and carries a heartbeat renewed every ``REFRESH_INTERVAL`` seconds. A
run on the holder's own host (same hostname, boot id and pid namespace)
breaks the lock at once when that process no longer exists or is another
process with a recycled pid. A lock from another host is broken only when this
run has watched its heartbeat stand still for ``FOREIGN_STALE_AFTER`` seconds
of its own monotonic clock, so no wall clock of either host is trusted. A lock
whose holder lives is never broken. Described in docs/bank-format.md (Locks).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import random
import socket
import threading
import time
import typing as t
import uuid

from ansible_collections.openstack_dr.bank.plugins.module_utils._bank.base import Bank
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.layout import LOCKS_PREFIX, lock_key
from ansible_collections.openstack_dr.bank.plugins.module_utils import _notices as notices
from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import (
    BankBusyError,
    BankError,
    BankObjectNotFoundError,
)

SHARED = "shared"
EXCLUSIVE = "exclusive"
REFRESH_INTERVAL = 30.0
# A foreign lock is broken after four missed heartbeats, watched on this run's own clock.
FOREIGN_STALE_AFTER = 4 * REFRESH_INTERVAL
# A holder that could not renew its lock for this long stops before anything depends on the lock:
# a foreign run may break it at FOREIGN_STALE_AFTER.
_HOLD_MARGIN = 0.8
DEFAULT_LOCK_WAIT_TIMEOUT = 600.0  # what a backup or a deletion waits for the bank by default (lock_timeout)


def _read_first_line(path: str) -> str | None:
    try:
        with open(path, encoding="ascii") as handle:
            return handle.readline().strip() or None
    except (OSError, ValueError):
        return None


def process_start_ticks(pid: int) -> int | None:
    """Start time of process ``pid`` in clock ticks since boot (``/proc/<pid>/stat`` field 22).

    None when no such process lives (a zombie, killed but not yet reaped, counts as gone).
    """
    stat = _read_first_line(f"/proc/{int(pid)}/stat")
    if stat is None:
        return None
    fields = stat.rsplit(")", 1)[-1].split()  # the command name in parentheses may hold spaces
    try:
        state, ticks = fields[0], int(fields[19])  # fields 3 and 22 of stat(5)
    except (IndexError, ValueError):
        return None
    return None if state in ("Z", "X", "x") else ticks


def _boot_time() -> float | None:
    try:
        with open("/proc/stat", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("btime "):
                    return float(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


@dataclasses.dataclass(frozen=True)
class Holder:
    """A process that holds a lock, as its lock document names it."""

    host: str
    pid: int
    boot_id: str | None = None  # None where /proc does not tell (not Linux): the foreign-host rule applies
    pid_namespace: str | None = None
    process_start_ticks: int | None = None

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, document: t.Any) -> Holder | None:
        """The holder a lock or progress document names; None when it names none."""
        if not isinstance(document, dict) or not isinstance(document.get("pid"), int):
            return None
        ticks = document.get("process_start_ticks")
        return cls(host=str(document.get("host")), pid=document["pid"],
                   boot_id=document.get("boot_id") or None, pid_namespace=document.get("pid_namespace") or None,
                   process_start_ticks=ticks if isinstance(ticks, int) else None)

    def shares_process_table_with(self, other: Holder) -> bool:
        """Whether ``other``'s pid means the same process table as ours: same host, boot and pid namespace."""
        return (self.boot_id is not None and self.host == other.host and self.boot_id == other.boot_id
                and self.pid_namespace == other.pid_namespace)


def this_process() -> Holder:
    pid = os.getpid()
    try:
        pid_namespace: str | None = os.readlink("/proc/self/ns/pid")
    except OSError:
        pid_namespace = None
    return Holder(host=socket.gethostname(), pid=pid, boot_id=_read_first_line("/proc/sys/kernel/random/boot_id"),
                  pid_namespace=pid_namespace, process_start_ticks=process_start_ticks(pid))


def holder_is_dead(holder: Holder | None, observer: Holder | None = None,
                   start_ticks: t.Callable[[int], int | None] = process_start_ticks) -> bool:
    """True only when ``holder`` provably no longer runs: it ran on ``observer``'s host and boot, in its pid
    namespace, and its pid is gone or belongs to a process started at another time."""
    if holder is None:
        return False
    observer = observer or this_process()
    if not observer.shares_process_table_with(holder):
        return False
    ticks = start_ticks(holder.pid)
    return ticks is None or (holder.process_start_ticks is not None and ticks != holder.process_start_ticks)


@dataclasses.dataclass
class _Watch:
    """What this run saw of a foreign lock: its document, and when (own monotonic clock) it last changed."""

    document: bytes
    since: float


@dataclasses.dataclass(eq=False)
class BankLock:
    """One lock held in the bank; use as a context manager or call acquire/release.

    ``clock`` (monotonic seconds), ``sleep``, ``holder`` and ``start_ticks`` are injectable so tests need no
    real time and can stand for other processes. After ``acquire``, ``broken`` lists the locks of dead or
    silent holders that this run removed (one line each, for a warning).
    """

    bank: Bank
    kind: str
    operation: str
    wait_timeout: float = 300.0
    refresh_interval: float = REFRESH_INTERVAL
    stale_after: float = FOREIGN_STALE_AFTER
    clock: t.Callable[[], float] = time.monotonic
    sleep: t.Callable[[float], None] = time.sleep
    holder: Holder = dataclasses.field(default_factory=this_process)
    start_ticks: t.Callable[[int], int | None] = process_start_ticks

    def __post_init__(self) -> None:
        if self.bank.write_only:
            # Nothing is ever deleted: a released lock stays, so one holder and operation reuse one key.
            slot = hashlib.sha256(json.dumps([self.holder.as_dict().get("host"), self.holder.as_dict().get("pid_namespace"),
                                              self.operation]).encode("utf-8")).hexdigest()[:32]
            self.key = lock_key(f"{self.kind}-{slot}")
        else:
            self.key = lock_key(f"{self.kind}-{uuid.uuid4()}")
        self.broken: list[str] = []
        self._stop_refreshing = threading.Event()
        self._refresher: threading.Thread | None = None
        self._last_refresh = 0.0
        self._heartbeat = 0
        self._lost: str | None = None
        self._watched: dict[str, _Watch] = {}

    # -- our own lock document ---------------------------------------------------------------------

    def _document(self) -> bytes:
        self._heartbeat += 1
        boot = _boot_time()
        ticks = self.holder.process_start_ticks
        started = boot + ticks / os.sysconf("SC_CLK_TCK") if boot is not None and ticks is not None else None
        return json.dumps(dict(
            self.holder.as_dict(),
            kind=self.kind,
            operation=self.operation,
            process_started_at=started,
            heartbeat=self._heartbeat,
            refreshed_at=time.time(),  # for people reading the bank; never compared across hosts
        ), sort_keys=True).encode("utf-8")

    def _write(self) -> None:
        started = self.clock()  # before the put: the heartbeat in the bank is at least this recent
        self.bank.put(self.key, self._document())
        self._last_refresh = started

    # -- the others --------------------------------------------------------------------------------

    def _describe(self, document: dict) -> str:
        return f"{document.get('operation')} on {document.get('host')} pid {document.get('pid')}"

    def _is_stale(self, key: str, data: bytes, document: dict) -> str | None:
        """Why the lock at ``key`` belongs to a run that is gone, or None while it may live."""
        holder = Holder.from_dict(document)
        if holder is not None and self.holder.shares_process_table_with(holder):
            self._watched.pop(key, None)
            if holder_is_dead(holder, self.holder, self.start_ticks):
                return "its process no longer runs on this host"
            return None  # a live process on this host: never broken
        now = self.clock()
        watch = self._watched.get(key)
        if watch is None or watch.document != data:
            self._watched[key] = _Watch(data, now)
            return None
        if now - watch.since >= self.stale_after:
            return f"its heartbeat stood still for {now - watch.since:.0f} s"
        return None

    def _conflicting_locks(self) -> list[dict]:
        conflicts = []
        stale: dict[str, str] = {}
        released: list[str] = []
        for entry in self.bank.list(LOCKS_PREFIX):
            if entry.key == self.key:
                continue
            try:
                data = self.bank.get(entry.key)
            except BankObjectNotFoundError:
                continue  # released while we looked
            try:
                document = json.loads(data.decode("utf-8"))
                if not isinstance(document, dict):
                    raise ValueError("not an object")
            except (UnicodeDecodeError, ValueError):
                document = {"kind": EXCLUSIVE, "operation": "unreadable lock", "host": "?", "pid": "?"}
            if document.get("released"):
                released.append(entry.key)  # left by a run that may not delete (O(bank.write_only))
                continue
            reason = self._is_stale(entry.key, data, document)
            if reason is not None:
                stale[entry.key] = f"{self._describe(document)} ({entry.key}): {reason}"
            elif self.kind == EXCLUSIVE or document.get("kind") == EXCLUSIVE:
                conflicts.append(document)
        if released and not self.bank.write_only:
            self.bank.delete_many(released)
        if stale:
            self._remove(sorted(stale))
            self.broken.extend(f"Broke the stale bank lock of {stale[key]}" for key in sorted(stale))
            for key in sorted(stale):
                notices.add(f"Broke the stale bank lock of {stale[key]}")
            for key in stale:
                self._watched.pop(key, None)
        return conflicts

    def acquire(self) -> BankLock:
        deadline = self.clock() + self.wait_timeout
        pause = 0.2
        while True:
            self._write()
            conflicts = self._conflicting_locks()
            if not conflicts:
                break
            self._remove([self.key])
            if self.clock() >= deadline:
                holders = "; ".join(self._describe(conflict) for conflict in conflicts)
                article = "an" if self.kind == EXCLUSIVE else "a"
                raise BankBusyError(
                    f"The bank {self.bank.description} is in use ({holders}); gave up waiting for {article} "
                    f"{self.kind} lock after {self.wait_timeout:.0f} s. A lock of a process gone from this host is "
                    f"broken at once, one from another host after {self.stale_after:.0f} s without a heartbeat. "
                    "Nothing was changed; retry later.")
            # Jitter keeps two runs that collide from colliding again in step.
            self.sleep(min(pause * random.uniform(0.5, 1.5), max(0.0, deadline - self.clock())))
            pause = min(pause * 2, 10.0)
        self._watched.clear()
        self._lost = None
        self._stop_refreshing.clear()
        self._refresher = threading.Thread(target=self._refresh_loop, name="bank-lock-refresh", daemon=True)
        self._refresher.start()
        return self

    def _refresh_loop(self) -> None:
        while not self._stop_refreshing.wait(self.refresh_interval):
            try:
                self._check_ours()
            except BankObjectNotFoundError:
                # Another run broke it: writing it again would hide that from assert_still_held.
                self._lost = "another run removed it"
                return
            except BankError:
                continue  # checked by assert_still_held before anything depends on the lock
            try:
                self._write()
            except BankError:
                pass

    def assert_still_held(self) -> None:
        """Fail if the lock may have been broken by another run, before anything depends on it."""
        if self._lost is None and self.clock() - self._last_refresh > self.stale_after * _HOLD_MARGIN:
            self._lost = f"it could not be renewed for {self.clock() - self._last_refresh:.0f} s"
        if self._lost is None:
            try:
                self._check_ours()
            except BankObjectNotFoundError:
                self._lost = "another run removed it"
        if self._lost is not None:
            raise BankBusyError(f"Lost the {self.kind} lock on {self.bank.description}: {self._lost}")

    def release(self) -> None:
        self._stop_refreshing.set()
        if self._refresher is not None:
            self._refresher.join(timeout=30)
            self._refresher = None
        try:
            self._remove([self.key])
        except BankError:
            pass  # an unreleased lock is broken by the next run that finds its holder gone

    def _check_ours(self) -> None:
        """Raise BankObjectNotFoundError when our lock is gone or marked released by another run."""
        try:
            released = json.loads(self.bank.get(self.key).decode("utf-8")).get("released")
        except (UnicodeDecodeError, ValueError, AttributeError):
            released = False  # not ours to judge: only a released mark means another run broke it
        if released:
            raise self.bank.no_such_object(self.key)

    def _remove(self, keys: list[str]) -> None:
        """Delete lock objects; a O(bank.write_only) bank overwrites them with a released mark instead."""
        if not self.bank.write_only:
            self.bank.delete_many(keys)
            return
        for key in keys:
            self.bank.put(key, json.dumps({"released": True, "released_at": time.time()}).encode("utf-8"))

    def __enter__(self) -> BankLock:
        return self.acquire()

    def __exit__(self, *exc_info) -> None:
        self.release()
