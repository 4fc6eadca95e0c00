# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Deleting backups and pruning leftovers: only what nothing else needs, predicted exactly in check mode."""

from __future__ import annotations

import os

import pytest

from ansible_collections.openstack_dr.bank.plugins.module_utils._engine import retention
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.layout import manifest_key
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.store import BackupStore
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.units import MIB
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.verify import verify_backup
from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import ManifestError

from .engine_helpers import backup, failed_backup, lock_objects, restore, stored_chunks
from .memory_bank import MemoryBank


def test_delete_keeps_chunks_other_backups_use():
    bank = MemoryBank()
    store = BackupStore(bank)
    shared = os.urandom(MIB)
    backup(store, "one", shared + os.urandom(MIB))
    backup(store, "two", shared + os.urandom(MIB))
    plan = retention.delete_backup(store, "one", check_mode=True)
    assert plan.chunks == 1 and plan.exists and not plan.deleted and plan.backup_name == "one"
    assert plan.objects[0] == manifest_key(plan.backup_id)
    assert store.load_manifest("one") is not None
    result = retention.delete_backup(store, "one")
    assert result.deleted and result.objects == plan.objects and result.object_bytes == plan.object_bytes
    assert store.load_manifest("one") is None
    assert restore(store, "two")[:MIB] == shared
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
    assert stored_chunks(bank) == kept_chunks | orphans and store.load_progress("failed") is not None

    pruned = retention.prune(store)
    assert pruned.pruned and pruned.objects == predicted.objects and pruned.object_bytes == predicted.object_bytes
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
    predicted = deletion.objects + pruning.objects
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
