# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Deleting backups and pruning: a deletion costs a few requests whatever the bank holds, a prune reclaims
only what no complete backup references, and both are predicted exactly in check mode."""

from __future__ import annotations

import os

import pytest

from ansible_collections.openstack_dr.bank.plugins.module_utils._bank.counting import CountingBank
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine import retention
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.layout import manifest_key
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.store import BackupStore
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.units import MIB
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.verify import verify_backup
from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import BankError, ManifestError

from .engine_helpers import backup, failed_backup, lock_objects, restore, stored_chunks
from .memory_bank import MemoryBank


def test_delete_removes_the_manifest_first_and_leaves_the_chunks_to_prune():
    bank = MemoryBank()
    store = BackupStore(bank)
    shared = os.urandom(MIB)
    backup(store, "one", shared + os.urandom(MIB))
    two = shared + os.urandom(MIB)
    backup(store, "two", two)
    chunks_before = stored_chunks(bank)
    plan = retention.delete_backup(store, "one", check_mode=True)
    assert (plan.chunks, plan.chunks_referenced, plan.exists, plan.deleted, plan.backup_name) == (0, 2, True, False, "one")
    assert plan.objects == [manifest_key(plan.backup_id)]
    assert store.load_manifest("one") is not None
    result = retention.delete_backup(store, "one")
    assert result.deleted and result.objects == plan.objects and result.object_bytes == plan.object_bytes
    assert store.load_manifest("one") is None and stored_chunks(bank) == chunks_before
    pruned = retention.prune(store)
    assert pruned.chunks == 1 and pruned.manifests == 1 and pruned.referenced_chunks == 2
    assert restore(store, "two") == two
    gone = retention.delete_backup(store, "one")
    assert (gone.exists, gone.deleted, gone.backup_name, gone.objects) == (False, False, None, [])
    assert not lock_objects(bank)


def test_prune_removes_only_what_no_complete_backup_references():
    bank = MemoryBank()
    store = BackupStore(bank)
    shared = os.urandom(MIB)
    backup(store, "kept", shared + os.urandom(MIB))
    kept_chunks = stored_chunks(bank)
    leftover = shared + os.urandom(3 * MIB)
    failed_backup(store, "failed", leftover, fail_after=3 * MIB)
    # The failed run stored some of its own chunks (how many depends on the upload threads), never the shared one.
    orphans = stored_chunks(bank) - kept_chunks
    assert orphans and store.load_progress("failed").status == "failed"

    predicted = retention.prune(store, check_mode=True)
    assert (predicted.chunks, predicted.progress_objects, predicted.pruned) == (len(orphans), 1, False)
    assert predicted.objects == len(predicted.keys) == len(orphans) + 1
    assert stored_chunks(bank) == kept_chunks | orphans and store.load_progress("failed") is not None

    pruned = retention.prune(store)
    assert pruned.pruned and pruned.keys == predicted.keys and pruned.object_bytes == predicted.object_bytes
    assert stored_chunks(bank) == kept_chunks and store.load_progress("failed") is None
    assert restore(store, "kept")[:MIB] == shared
    assert verify_backup(store, "kept").ok
    assert not retention.prune(store).pruned
    assert not lock_objects(bank)
    # The failed backup can still be run again: it uploads its chunks anew.
    backup(store, "failed", leftover)
    assert restore(store, "failed") == leftover


def test_deleting_an_incomplete_backup_then_pruning_is_predicted_exactly():
    bank = MemoryBank()
    store = BackupStore(bank)
    backup(store, "kept", os.urandom(MIB))
    failed_backup(store, "failed", os.urandom(4 * MIB), fail_after=3 * MIB)
    failed_backup(store, "other-failed", os.urandom(3 * MIB), fail_after=2 * MIB)
    deletion = retention.delete_backup(store, "failed", check_mode=True)
    assert deletion.exists and deletion.backup_name is None and deletion.chunks == 0
    pruning = retention.prune(store, check_mode=True, excluding=set(deletion.objects))
    predicted = deletion.objects + pruning.keys
    assert len(predicted) == len(set(predicted))
    before = set(bank.objects)
    retention.delete_backup(store, "failed")
    retention.prune(store)
    assert sorted(before - set(bank.objects)) == sorted(predicted)


def test_prune_stops_at_an_unreadable_manifest_and_removes_nothing():
    bank = MemoryBank()
    store = BackupStore(bank)
    backup(store, "damaged", os.urandom(2 * MIB))
    failed_backup(store, "failed", os.urandom(3 * MIB), fail_after=2 * MIB)
    bank.objects[manifest_key(store.backup_id_for("damaged"))] = b'{"format": "trunc'
    objects_before = {key for key in bank.objects if not key.startswith("locks/")}
    with pytest.raises(ManifestError):
        retention.prune(store)
    assert {key for key in bank.objects if not key.startswith("locks/")} == objects_before
    assert not lock_objects(bank)


def test_deleting_a_backup_costs_the_same_requests_in_a_bank_of_three_or_thirty():
    costs = []
    for count in (3, 30):
        bank = MemoryBank()
        store = BackupStore(bank)
        for index in range(count):
            backup(store, f"b{index}", os.urandom(MIB // 4), chunk_size=MIB)
        counting = CountingBank(bank)
        plan = retention.delete_backup(BackupStore(counting), "b1")
        assert plan.deleted and store.load_manifest("b1") is None
        costs.append(counting.snapshot())
    assert costs[0] == costs[1]
    assert sum(costs[0].values()) <= 10 and costs[0]["get"] <= 4


def test_one_prune_reclaims_the_chunks_of_many_deleted_backups():
    bank = MemoryBank()
    store = BackupStore(bank)
    kept = os.urandom(2 * MIB)
    backup(store, "kept", kept)
    for index in range(5):
        backup(store, f"old{index}", os.urandom(MIB) + kept[:MIB])
    for index in range(5):
        retention.delete_backup(store, f"old{index}")
    counting = CountingBank(bank)
    pruned = retention.prune(BackupStore(counting))
    assert (pruned.chunks, pruned.manifests, pruned.referenced_chunks) == (5, 1, 2)
    assert counting.counts["list"] == 3  # backups/, chunks/ and the lock's
    assert counting.counts["get"] <= 3  # the one manifest left, and the lock
    assert restore(store, "kept") == kept and len(stored_chunks(bank)) == 2


def test_an_interrupted_prune_leaves_every_complete_backup_restorable(monkeypatch):
    bank = MemoryBank()
    store = BackupStore(bank)
    kept = {f"kept{index}": os.urandom(MIB) + os.urandom(MIB) for index in range(3)}
    for name, data in kept.items():
        backup(store, name, data)
    for index in range(4):
        backup(store, f"old{index}", os.urandom(2 * MIB))
        retention.delete_backup(store, f"old{index}")
    monkeypatch.setattr(retention, "LISTED_KEYS", 2)  # delete in batches of two
    deletes = []
    real_delete_many = bank.delete_many

    def failing_delete_many(keys):
        keys = list(keys)
        if any(key.startswith("chunks/") for key in keys):
            deletes.append(keys)
            if len(deletes) == 2:
                raise BankError("injected failure after some deletes")
        return real_delete_many(keys)

    monkeypatch.setattr(bank, "delete_many", failing_delete_many)
    with pytest.raises(BankError, match="injected"):
        retention.prune(store)
    assert len(stored_chunks(bank)) == 6 + 8 - 2
    for name, data in kept.items():
        assert restore(store, name) == data and verify_backup(store, name).ok
    monkeypatch.setattr(bank, "delete_many", real_delete_many)
    assert retention.prune(store).chunks == 6 and len(stored_chunks(bank)) == 6
