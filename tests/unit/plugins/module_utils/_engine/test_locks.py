# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bank locks that know their holder is gone: broken at once on the holder's host, after the bound elsewhere,
never while the holder lives. A fake clock stands for time; the process table is this machine's."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time

import pytest

from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.documents import Progress, utc_now
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.layout import backup_id_for_name, lock_key, progress_key
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.locks import (
    EXCLUSIVE,
    FOREIGN_STALE_AFTER,
    REFRESH_INTERVAL,
    SHARED,
    BankLock,
    Holder,
    holder_is_dead,
    process_start_ticks,
    this_process,
)
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.store import BackupStore
from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import BankBusyError

from .memory_bank import MemoryBank

FOREIGN = Holder(host="site-b-runner", pid=4242, boot_id="0f1e2d3c-other-boot", pid_namespace="pid:[4026531836]",
                 process_start_ticks=1234)


class FakeClock:
    """Monotonic seconds that move only when the code under test sleeps; ``on_sleep`` acts for other runs."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept = 0.0
        self.on_sleep = None

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.slept += seconds
        if self.on_sleep is not None:
            self.on_sleep()


def put_lock(bank, holder: Holder, kind: str = SHARED, operation: str = "backup killed", heartbeat: int = 1) -> str:
    """A lock document as a run that is no longer watched left it (docs/bank-format.md, Locks)."""
    key = lock_key(f"{kind}-{heartbeat:08d}-{holder.pid}")
    bank.put(key, json.dumps(dict(holder.as_dict(), kind=kind, operation=operation, heartbeat=heartbeat,
                                  refreshed_at=time.time())).encode())
    return key


def dead_pid() -> int:
    """The pid of a process that ran and was reaped."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def exclusive_lock(bank, clock: FakeClock, wait_timeout: float) -> BankLock:
    return BankLock(bank, EXCLUSIVE, "prune", wait_timeout=wait_timeout, clock=clock.monotonic, sleep=clock.sleep)


def test_the_bound_is_a_small_multiple_of_the_heartbeat():
    assert (REFRESH_INTERVAL, FOREIGN_STALE_AFTER) == (30.0, 120.0)


def test_this_process_is_alive_and_a_reaped_one_is_dead():
    me = this_process()
    assert me.boot_id and me.process_start_ticks == process_start_ticks(os.getpid())
    assert not holder_is_dead(me)
    assert holder_is_dead(dataclasses.replace(me, pid=dead_pid()))


def test_a_killed_but_unreaped_process_counts_as_dead():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # exited, left a zombie
        assert process_start_ticks(child.pid) is None
    finally:
        child.wait()


def test_a_lock_of_a_dead_process_on_this_host_is_broken_at_once():
    bank = MemoryBank()
    clock = FakeClock()
    stale = put_lock(bank, dataclasses.replace(this_process(), pid=dead_pid()), kind=SHARED)
    lock = exclusive_lock(bank, clock, wait_timeout=0).acquire()
    try:
        assert clock.slept == 0 and stale not in bank.objects
        assert len(lock.broken) == 1 and "backup killed" in lock.broken[0] and "no longer runs" in lock.broken[0]
    finally:
        lock.release()
    assert not [key for key in bank.objects if key.startswith("locks/")]


def test_a_lock_of_a_recycled_pid_is_broken_at_once():
    """Same pid, another start time: the pid now belongs to another process."""
    me = this_process()
    bank = MemoryBank()
    clock = FakeClock()
    stale = put_lock(bank, dataclasses.replace(me, process_start_ticks=me.process_start_ticks - 1), kind=EXCLUSIVE)
    with exclusive_lock(bank, clock, wait_timeout=0) as lock:
        assert stale not in bank.objects and len(lock.broken) == 1 and clock.slept == 0


def test_a_lock_of_a_live_process_on_this_host_is_never_broken():
    bank = MemoryBank()
    clock = FakeClock()
    live = put_lock(bank, this_process(), kind=SHARED, operation="backup running")
    with pytest.raises(BankBusyError, match=r"in use \(backup running on .* gave up waiting for an exclusive lock"):
        exclusive_lock(bank, clock, wait_timeout=10 * FOREIGN_STALE_AFTER).acquire()
    assert clock.slept >= 10 * FOREIGN_STALE_AFTER - 1 and live in bank.objects
    assert list(bank.objects) == [live]


def test_a_foreign_lock_is_broken_only_after_its_heartbeat_stood_still_for_the_bound():
    bank = MemoryBank()
    clock = FakeClock()
    stale = put_lock(bank, FOREIGN, kind=EXCLUSIVE)
    with BankLock(bank, SHARED, "backup next", wait_timeout=600, clock=clock.monotonic, sleep=clock.sleep) as lock:
        assert stale not in bank.objects
        # Watched on this run's own clock: at least the bound, and within one backoff pause of it.
        assert FOREIGN_STALE_AFTER <= clock.slept <= FOREIGN_STALE_AFTER + 15
        assert len(lock.broken) == 1 and "heartbeat stood still" in lock.broken[0] and "site-b-runner" in lock.broken[0]


def test_a_foreign_lock_is_not_broken_by_a_run_that_waits_less_than_the_bound():
    bank = MemoryBank()
    clock = FakeClock()
    stale = put_lock(bank, FOREIGN, kind=EXCLUSIVE)
    with pytest.raises(BankBusyError, match="gave up waiting for a shared lock after 100 s"):
        BankLock(bank, SHARED, "backup next", wait_timeout=100, clock=clock.monotonic, sleep=clock.sleep).acquire()
    assert stale in bank.objects


def test_a_live_foreign_lock_is_never_broken():
    """Its holder renews the heartbeat while this run waits, however long that is."""
    bank = MemoryBank()
    clock = FakeClock()
    beats = [1]

    def foreign_run_renews():
        if clock.now - 1000.0 >= REFRESH_INTERVAL * beats[0]:
            beats[0] += 1
            bank.put(key, json.dumps(dict(FOREIGN.as_dict(), kind=SHARED, operation="backup far away",
                                          heartbeat=beats[0], refreshed_at=0)).encode())

    key = put_lock(bank, FOREIGN, kind=SHARED, operation="backup far away")
    clock.on_sleep = foreign_run_renews
    with pytest.raises(BankBusyError, match="backup far away on site-b-runner pid 4242"):
        exclusive_lock(bank, clock, wait_timeout=20 * FOREIGN_STALE_AFTER).acquire()
    assert key in bank.objects and beats[0] > 50


def test_shared_locks_coexist_and_an_exclusive_one_waits_for_them():
    bank = MemoryBank()
    clock = FakeClock()
    with BankLock(bank, SHARED, "backup one", clock=clock.monotonic, sleep=clock.sleep):
        with BankLock(bank, SHARED, "backup two", clock=clock.monotonic, sleep=clock.sleep) as second:
            assert second.broken == [] and clock.slept == 0
        with pytest.raises(BankBusyError, match=r"\(backup one on .*\); gave up waiting for an exclusive lock after 5 s"):
            exclusive_lock(bank, clock, wait_timeout=5).acquire()


def test_a_lock_removed_by_another_run_is_known_lost_before_anything_depends_on_it():
    bank = MemoryBank()
    lock = BankLock(bank, SHARED, "backup slow").acquire()
    try:
        lock.assert_still_held()
        bank.delete_many([lock.key])
        with pytest.raises(BankBusyError, match="Lost the shared lock .*another run removed it"):
            lock.assert_still_held()
    finally:
        lock.release()


def test_a_lock_not_renewed_for_most_of_the_bound_is_known_lost():
    bank = MemoryBank()
    clock = FakeClock()
    lock = BankLock(bank, SHARED, "backup slow", clock=clock.monotonic, sleep=clock.sleep).acquire()
    try:
        clock.now += FOREIGN_STALE_AFTER * 0.9
        with pytest.raises(BankBusyError, match="could not be renewed for 108 s"):
            lock.assert_still_held()
    finally:
        lock.release()


def test_a_backup_whose_process_died_on_this_host_is_listed_as_stalled_at_once():
    bank = MemoryBank()
    for name, holder in (("killed", dataclasses.replace(this_process(), pid=dead_pid())), ("running", this_process()),
                         ("elsewhere", FOREIGN)):
        backup_id = backup_id_for_name(name)
        bank.put(progress_key(backup_id), Progress(backup_id=backup_id, backup_name=name, status="in_progress",
                                                   started_at=utc_now(), updated_at=utc_now(),
                                                   holder=holder.as_dict()).to_bytes())
    statuses = {listed.backup_name: listed.status for listed in BackupStore(bank).list_backups()}
    assert statuses == {"killed": "stalled", "running": "in_progress", "elsewhere": "in_progress"}
