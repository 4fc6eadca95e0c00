# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Object Lock banks: what a backup locks and extends, and write-only credentials that never delete.

The bank below behaves as S3 Object Lock does where it matters here: a lock can be extended, never
shortened, and a locked object cannot be deleted. Its clock is the test's, so days pass in an instant.
"""

from __future__ import annotations

import datetime
import os

import pytest

from ansible_collections.openstack_dr.bank.plugins.module_utils._bank.base import ObjectLock
from ansible_collections.openstack_dr.bank.plugins.module_utils._bank.s3 import _object_lock
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine import retention
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine import writer as writer_module
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.documents import parse_utc
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.layout import chunk_key, manifest_key, progress_key
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.store import BackupStore
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.sync import BankSync
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.units import MIB
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.verify import verify_backup
from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import BankError, IntegrityError, InvalidInputError

from .engine_helpers import backup, lock_objects, restore, stored_chunks
from .memory_bank import MemoryBank

DAY = 86400.0
START = 1_800_000_000.0
SOURCE = {"volume": {"id": "vol-1", "name": "db"}}
PASSPHRASE = "replica passphrase"


class LockingBank(MemoryBank):
    """A memory bank with S3 Object Lock's rules; ``write_only`` refuses every delete."""

    def __init__(self, lock: ObjectLock | None = ObjectLock("compliance", 30, 7), write_only: bool = False) -> None:
        super().__init__()
        self.object_lock = lock
        self.write_only = write_only
        self.until: dict[str, datetime.datetime] = {}
        self.extended: list[str] = []
        self.heads = 0
        self.history: dict[str, list[bytes]] = {}  # a versioned bucket's earlier versions, oldest first

    def put(self, key, data):
        if key in self.objects:
            self.history.setdefault(key, []).append(self.objects[key])
        super().put(key, data)

    def older_versions(self, key):
        return iter(list(self.history.get(key, [])))

    def put_locked(self, key, data, retain_until):
        self.put(key, data)
        self.until[key] = retain_until

    def locked_until(self, key):
        self.heads += 1
        return key in self.objects, self.until.get(key) if key in self.objects else None

    def extend_lock(self, key, retain_until):
        if key in self.until and retain_until < self.until[key]:
            raise BankError(f"{key}: a lock can only be extended")
        self.until[key] = retain_until
        self.extended.append(key)

    def delete_many(self, keys):
        keys = list(keys)
        if self.write_only:
            raise BankError("AccessDenied: these credentials may not delete")
        locked = [key for key in keys if key in self.until and self.until[key].timestamp() > writer_module.time.time()]
        if locked:
            raise BankError(f"AccessDenied: {locked[0]} is locked")
        return super().delete_many(keys)


@pytest.fixture(name="clock")
def clock_fixture(monkeypatch):
    """The wall clock the writer and the deletion read, set by the test."""
    now = {"t": START}
    monkeypatch.setattr(writer_module.time, "time", lambda: now["t"])
    return now


def unique_chunks(manifest) -> int:
    return len(manifest.chunk_map.unique_data_digests())


def test_a_first_backup_locks_every_chunk_and_its_manifest_until_its_date_plus_the_extension(clock):
    bank = LockingBank()
    data = os.urandom(3 * MIB) + bytes(MIB) + os.urandom(MIB)
    writer, manifest = backup(BackupStore(bank), "day-0", data, source=SOURCE)
    until = START + 37 * DAY
    assert {key: value.timestamp() for key, value in bank.until.items()} == dict.fromkeys(
        stored_chunks(bank) | {manifest_key(manifest.backup_id)}, until)
    assert parse_utc(manifest.document["protected_until"]) == until
    assert manifest.document["object_lock"] == {"mode": "compliance", "days": 30, "extension_days": 7}
    assert writer.stats.requests["lock"] == 0 and not bank.extended


def test_daily_backups_extend_a_reused_chunk_once_per_extension_period(clock):
    bank = LockingBank()
    store = BackupStore(bank)
    data = os.urandom(4 * MIB)
    dummy, first = backup(store, "day-0", data, source=SOURCE)
    for day in range(1, 8):  # the parent's chunks are locked until day 37, enough for a backup of day 7
        clock["t"] = START + day * DAY
        writer, manifest = backup(store, f"day-{day}", data, source=SOURCE)
        assert writer.stats.requests["lock"] == 0 and writer.stats.requests["head"] == 0
        assert manifest.document["protected_until"] == first.document["protected_until"]
    clock["t"] = START + 8 * DAY
    heads_before = bank.heads
    writer, manifest = backup(store, "day-8", data, source=SOURCE)
    # Each chunk: one HEAD (its lock date), one extension to day 8 + 30 + 7.
    assert writer.stats.requests["lock"] == unique_chunks(manifest) == 4
    assert bank.heads - heads_before == 4
    assert parse_utc(manifest.document["protected_until"]) == START + 45 * DAY
    assert all(value.timestamp() >= START + 38 * DAY for key, value in bank.until.items() if key.startswith("chunks/"))
    assert restore(store, "day-0") == data


def test_a_chunk_deleted_behind_the_backups_back_is_stored_again_with_its_lock(clock):
    bank = LockingBank()
    store = BackupStore(bank)
    data = os.urandom(2 * MIB)
    backup(store, "day-0", data, source=SOURCE)
    gone = sorted(stored_chunks(bank))[0]
    del bank.objects[gone]  # what a delete marker looks like to a GET
    clock["t"] = START + 10 * DAY
    writer, manifest = backup(store, "day-10", data, source=SOURCE)
    assert gone in bank.objects and bank.until[gone].timestamp() == START + 47 * DAY
    assert writer.stats.requests["lock"] == 1  # the other chunk extended, the lost one stored anew
    assert restore(store, "day-10") == data


def test_a_reused_chunk_locked_longer_is_never_shortened(clock):
    bank = LockingBank()
    store = BackupStore(bank)
    data = os.urandom(MIB)
    backup(store, "long", data, source={"volume": {"id": "other"}})
    long_lock = bank.until[next(iter(stored_chunks(bank)))]
    bank.object_lock = ObjectLock("compliance", 3, 0)
    clock["t"] = START + DAY
    writer, manifest = backup(store, "short", data, source=SOURCE)  # found by a HEAD, not from a parent
    assert writer.stats.requests["lock"] == 0
    assert bank.until[next(iter(stored_chunks(bank)))] == long_lock
    assert parse_utc(manifest.document["protected_until"]) == START + 4 * DAY


def test_write_only_credentials_back_up_and_resume_without_a_single_delete(clock):
    bank = LockingBank(write_only=True)
    store = BackupStore(bank)
    data = os.urandom(2 * MIB)
    dummy, manifest = backup(store, "day-0", data, source=SOURCE)
    # Locks are marked released in place (the bank's first write takes an exclusive one), the progress
    # object stays: the manifest says complete.
    assert len(lock_objects(bank)) == 2 and all(b'"released": true' in bank.objects[key] for key in lock_objects(bank))
    assert progress_key(manifest.backup_id) in bank.objects
    assert store.list_backups()[0].status == "complete"
    backup(store, "day-0-again", data, source=SOURCE)
    backup(store, "day-0-again", data, source=SOURCE)  # one operation reuses its lock object
    assert len(lock_objects(bank)) == 3
    assert restore(store, "day-0-again") == data


def test_a_privileged_run_removes_released_locks_and_keeps_protected_backups(clock):
    bank = LockingBank(write_only=True)
    store = BackupStore(bank)
    dummy, manifest = backup(store, "day-0", os.urandom(MIB), source=SOURCE)
    bank.write_only = False  # the management host's credentials, on the same bucket
    plan = retention.delete_backup(store, "day-0")
    assert not lock_objects(bank)
    assert (plan.deleted, plan.exists, plan.protected_until) == (False, False, manifest.document["protected_until"])
    assert manifest_key(manifest.backup_id) in bank.objects
    clock["t"] = START + 38 * DAY
    plan = retention.delete_backup(store, "day-0")
    assert plan.deleted and plan.protected_until is None and manifest_key(manifest.backup_id) not in bank.objects


def test_a_restore_reads_past_overwritten_chunks_and_manifests_to_the_versions_that_verify(clock):
    bank = LockingBank()
    store = BackupStore(bank)
    data = os.urandom(2 * MIB)
    dummy, manifest = backup(store, "day-0", data, source=SOURCE)
    for key in sorted(stored_chunks(bank)) + [manifest_key(manifest.backup_id)]:
        bank.put(key, b"ransom note")  # what a compromised site with put rights can do
    assert restore(BackupStore(bank), "day-0") == data
    bank.history.clear()  # an unversioned bucket: the damage is named, never restored
    with pytest.raises(IntegrityError):
        restore(BackupStore(bank), "day-0")


def test_object_lock_options_need_their_days():
    assert _object_lock(None, None, None) is None
    assert _object_lock(None, 10, None) == ObjectLock("governance", 10, 7)
    for mode, extension in (("compliance", None), (None, 3)):
        with pytest.raises(InvalidInputError, match="needs O\\(bank.object_lock_days\\)"):
            _object_lock(mode, None, extension)


# -- bank_sync into and out of Object Lock banks ------------------------------------------------------


def replica_pair(source_lock: ObjectLock | None, target_lock: ObjectLock | None) -> tuple[LockingBank, LockingBank]:
    source, target = LockingBank(source_lock), LockingBank(target_lock)
    source.description, target.description = "memory bank A", "memory bank B"
    return source, target


def locks_of(bank: LockingBank, manifest) -> dict[str, float]:
    """The lock date of each object the backup ``manifest`` uses in ``bank``."""
    keys = [manifest_key(manifest.backup_id)] + [chunk_key(digest) for digest in manifest.chunk_map.unique_data_digests()]
    return {key: bank.until[key].timestamp() for key in keys if key in bank.until}


def test_a_sync_into_a_locked_bank_locks_what_it_copies_from_the_backup_date_not_the_sync_date(clock):
    source, target = replica_pair(None, ObjectLock("compliance", 30, 7))
    dummy, manifest = backup(BackupStore(source, PASSPHRASE), "day-0", os.urandom(3 * MIB), source=SOURCE)
    clock["t"] = START + 10 * DAY  # synced ten days after the backup
    report = BankSync(BackupStore(source, PASSPHRASE), BackupStore(target, PASSPHRASE)).run()
    assert [entry.backup_name for entry in report.copied] == ["day-0"]
    locks = locks_of(target, manifest)
    assert len(locks) == unique_chunks(manifest) + 1 and set(locks.values()) == {START + 37 * DAY}
    replica = BackupStore(target, PASSPHRASE).load_manifest("day-0")
    assert parse_utc(replica.document["protected_until"]) == START + 37 * DAY
    assert replica.document["object_lock"] == {"mode": "compliance", "days": 30, "extension_days": 7}
    verification = verify_backup(BackupStore(target, PASSPHRASE), "day-0")
    assert verification.ok and verification.checked_locks == unique_chunks(manifest) + 1
    again = BankSync(BackupStore(source, PASSPHRASE), BackupStore(target, PASSPHRASE)).run()
    assert not again.changed and [entry.backup_name for entry in again.present] == ["day-0"]


def test_a_sync_keeps_a_source_lock_that_ends_later_than_the_targets_own(clock):
    source, target = replica_pair(ObjectLock("compliance", 60, 0), ObjectLock("governance", 30, 7))
    dummy, manifest = backup(BackupStore(source), "day-0", os.urandom(2 * MIB), source=SOURCE)
    assert parse_utc(manifest.document["protected_until"]) == START + 60 * DAY
    BankSync(BackupStore(source), BackupStore(target)).run()
    assert set(locks_of(target, manifest).values()) == {START + 67 * DAY}
    replica = BackupStore(target).load_manifest("day-0")
    assert parse_utc(replica.document["protected_until"]) == START + 67 * DAY
    assert replica.document["object_lock"]["mode"] == "governance"


def test_a_late_sync_of_an_old_backup_still_locks_it_from_the_sync_on(clock):
    source, target = replica_pair(None, ObjectLock("compliance", 30, 7))
    dummy, manifest = backup(BackupStore(source), "day-0", os.urandom(MIB), source=SOURCE)
    clock["t"] = START + 100 * DAY  # its 30 days ended long ago: S3 refuses a lock date in the past
    BankSync(BackupStore(source), BackupStore(target)).run()
    assert set(locks_of(target, manifest).values()) == {START + 107 * DAY}


def test_a_sync_extends_the_lock_of_chunks_the_target_holds_that_a_newer_backup_reuses(clock):
    source, target = replica_pair(None, ObjectLock("compliance", 30, 7))
    shared = os.urandom(2 * MIB)
    backup(BackupStore(source), "day-0", shared, source=SOURCE)
    BankSync(BackupStore(source), BackupStore(target)).run()
    clock["t"] = START + 20 * DAY
    dummy, manifest = backup(BackupStore(source), "day-20", shared + os.urandom(MIB), source=SOURCE)
    report = BankSync(BackupStore(source), BackupStore(target)).run()
    assert (report.chunks_copied, report.chunks_skipped) == (1, 2)
    # The two reused chunks (locked until day 37) now to day 20 + 30 + 7; the new one and the manifest too.
    reused = BackupStore(target).load_manifest("day-0").chunk_map.unique_data_digests()
    assert sorted(target.extended) == sorted(chunk_key(digest) for digest in reused)
    assert set(locks_of(target, manifest).values()) == {START + 57 * DAY}
    assert verify_backup(BackupStore(target), "day-20").ok and verify_backup(BackupStore(target), "day-0").ok


def test_one_sync_of_an_old_and_a_new_backup_locks_their_shared_chunks_for_the_later_one(clock):
    source, target = replica_pair(None, ObjectLock("compliance", 30, 0))
    shared = os.urandom(2 * MIB)
    backup(BackupStore(source), "day-0", shared + os.urandom(MIB), source=SOURCE)
    clock["t"] = START + 5 * DAY
    dummy, newer = backup(BackupStore(source), "day-5", shared, source=SOURCE)
    # The newest first: the older backup's shared chunks are already locked long enough, no HEAD needed.
    BankSync(BackupStore(source), BackupStore(target)).run()
    assert set(locks_of(target, newer).values()) == {START + 35 * DAY} and target.heads == 0
    assert verify_backup(BackupStore(target), "day-0").ok and verify_backup(BackupStore(target), "day-5").ok


def test_a_plain_replica_of_a_locked_bank_claims_no_lock_and_can_be_deleted(clock):
    source, target = replica_pair(ObjectLock("compliance", 30, 7), None)
    data = os.urandom(2 * MIB)
    dummy, manifest = backup(BackupStore(source, PASSPHRASE), "day-0", data, source=SOURCE)
    BankSync(BackupStore(source, PASSPHRASE), BackupStore(target, PASSPHRASE)).run()
    replica_store = BackupStore(target, PASSPHRASE)
    replica = replica_store.load_manifest("day-0")
    assert "protected_until" not in replica.document and "object_lock" not in replica.document
    assert not target.until  # nothing locked in the replica, and its manifest does not say otherwise
    verification = verify_backup(replica_store, "day-0")
    assert verification.ok and verification.checked_locks == 0
    assert restore(replica_store, "day-0") == data
    assert not BankSync(BackupStore(source, PASSPHRASE), BackupStore(target, PASSPHRASE)).run().changed
    plan = retention.delete_backup(replica_store, "day-0")
    assert plan.deleted and replica_store.load_manifest("day-0") is None
    assert BackupStore(source, PASSPHRASE).load_manifest("day-0").document["protected_until"] == manifest.document["protected_until"]


def test_follow_deletions_keeps_a_backup_still_locked_in_the_target_and_says_until_when(clock):
    source, target = replica_pair(None, ObjectLock("compliance", 30, 7))
    backup(BackupStore(source), "day-0", os.urandom(MIB), source=SOURCE)
    BankSync(BackupStore(source), BackupStore(target)).run()
    retention.delete_backup(BackupStore(source), "day-0")
    report = BankSync(BackupStore(source), BackupStore(target), follow_deletions=True).run()
    assert not report.deleted and [plan.backup_name for plan in report.protected] == ["day-0"]
    assert parse_utc(report.protected[0].protected_until) == START + 37 * DAY
    assert BackupStore(target).load_manifest("day-0") is not None and report.pruned.chunks == 0
    clock["t"] = START + 38 * DAY
    report = BankSync(BackupStore(source), BackupStore(target), follow_deletions=True).run()
    assert [plan.backup_name for plan in report.deleted] == ["day-0"] and report.pruned.chunks == 1


def test_a_late_sync_without_extension_days_still_locks_an_hour_from_the_sync(clock):
    source, target = replica_pair(None, ObjectLock("compliance", 30, 0))
    dummy, manifest = backup(BackupStore(source), "day-0", os.urandom(MIB), source=SOURCE)
    clock["t"] = START + 100 * DAY
    BankSync(BackupStore(source), BackupStore(target)).run()
    assert set(locks_of(target, manifest).values()) == {START + 100 * DAY + 3600}


def test_a_backup_copied_before_the_target_locked_is_locked_by_the_next_sync(clock):
    source, target = replica_pair(None, None)
    dummy, manifest = backup(BackupStore(source), "day-0", os.urandom(2 * MIB), source=SOURCE)
    BankSync(BackupStore(source), BackupStore(target)).run()
    assert not target.until
    target.object_lock = ObjectLock("compliance", 30, 7)  # the same bucket, now given object_lock_days
    report = BankSync(BackupStore(source), BackupStore(target)).run()
    assert [entry.backup_name for entry in report.copied] == ["day-0"] and report.chunks_copied == 0
    assert set(locks_of(target, manifest).values()) == {START + 37 * DAY}
    assert verify_backup(BackupStore(target), "day-0").ok
    assert not BankSync(BackupStore(source), BackupStore(target)).run().changed
