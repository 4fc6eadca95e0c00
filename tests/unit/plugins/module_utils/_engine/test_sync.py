# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The bank sync over in-memory banks; every backend pair is proven on real servers in tests/e2e/test_bank_sync.py."""

from __future__ import annotations

import os
import random

import pytest

from ansible_collections.openstack_dr.bank.plugins.module_utils._engine import retention
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.layout import BANK_CONFIG_KEY, chunk_key, manifest_key
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.store import BackupStore
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.sync import CONFIG_COPIED, CONFIG_PRESENT, BankSync
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.units import MIB
from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import BankError, EncryptionError, InvalidInputError

from .engine_helpers import backup, restore
from .memory_bank import MemoryBank

PASSPHRASE = "sync passphrase"


def bank(name: str) -> MemoryBank:
    memory = MemoryBank()
    memory.description = f"memory bank {name}"
    return memory


def volume_source(name: str) -> dict:
    return {"volume": {"id": f"id-{name}", "name": name}}


def data_of(seed: int, chunks: int, shared: bytes = b"") -> bytes:
    return shared + random.Random(seed).randbytes(chunks * MIB)


@pytest.fixture(name="banks")
def banks_fixture():
    """A source with two backups of one volume (sharing 2 chunks) and one of another, and an empty target."""
    source = BackupStore(bank("A"))
    shared = random.Random(0).randbytes(2 * MIB)
    data = {"db-1": data_of(1, 2, shared), "db-2": data_of(2, 1, shared) + bytes(MIB), "web-1": data_of(3, 3)}
    for name, volume in (("db-1", "db"), ("db-2", "db"), ("web-1", "web")):
        backup(source, name, data[name], source=volume_source(volume))
    return source, BackupStore(bank("B")), data


def data_chunks(store: BackupStore) -> set[str]:
    return {key for key in store.bank.objects if key.startswith("chunks/")}


def test_sync_copies_the_configuration_manifests_and_chunks_byte_for_byte(banks):
    source, target, data = banks
    report = BankSync(source, target, parallelism=3).run()
    assert report.bank_config == CONFIG_COPIED and report.changed
    assert sorted(entry.backup_name for entry in report.copied) == ["db-1", "db-2", "web-1"]
    assert target.bank.objects[BANK_CONFIG_KEY] == source.bank.objects[BANK_CONFIG_KEY]
    for name in data:
        key = manifest_key(source.backup_id_for(name))
        assert target.bank.objects[key] == source.bank.objects[key]
        assert restore(target, name) == data[name]
    assert data_chunks(target) == data_chunks(source)
    for key in data_chunks(source):
        assert target.bank.objects[key] == source.bank.objects[key]
    # 2 shared + 2 + 1 + 3 distinct chunks, each stored once; the zero chunk is never a chunk.
    assert (report.chunks_copied, report.chunks_skipped, len(report.bad_chunks)) == (8, 0, 0)
    assert report.bytes_copied == sum(len(target.bank.objects[key]) for key in data_chunks(target))
    assert len(target.bank.chunk_puts()) == len(set(target.bank.chunk_puts())) == 8
    assert not [key for key in target.bank.objects if key.startswith("locks/")]


def test_each_manifest_is_written_after_all_its_chunks(banks):
    source, target, dummy = banks
    BankSync(source, target).run()
    for name in ("db-1", "db-2", "web-1"):
        manifest = source.load_manifest(name)
        written_at = target.bank.puts.index(manifest_key(manifest.backup_id))
        for digest in manifest.chunk_map.unique_data_digests():
            assert target.bank.puts.index(chunk_key(digest)) < written_at


def test_a_second_sync_changes_nothing_and_writes_nothing(banks):
    source, target, dummy = banks
    BankSync(source, target).run()
    writes = len(target.bank.puts)
    again = BankSync(source, target).run()
    assert not again.changed and again.bank_config == CONFIG_PRESENT
    assert (len(again.present), again.copied, again.chunks_copied) == (3, [], 0)
    assert len(target.bank.puts) == writes  # not even a lock: there was nothing to copy


def test_a_new_backup_copies_only_the_chunks_the_target_lacks(banks):
    source, target, data = banks
    BankSync(source, target).run()
    backup(source, "db-3", data["db-2"][:3 * MIB] + os.urandom(MIB), source=volume_source("db"))
    report = BankSync(source, target).run()
    assert [entry.backup_name for entry in report.copied] == ["db-3"]
    assert (report.chunks_copied, report.chunks_skipped) == (1, 3)


def test_an_interrupted_sync_resumes_and_never_copies_a_chunk_twice(banks):
    source, target, data = banks
    oldest = source.load_manifest("db-1")
    # Newest backup first: db-1 is the last; fail on a chunk only it has.
    only_db1 = (oldest.chunk_map.unique_data_digests() - source.load_manifest("db-2").chunk_map.unique_data_digests()).pop()
    target.bank.fail_puts_matching = only_db1.hex()
    with pytest.raises(BankError, match="injected failure"):
        BankSync(source, target, parallelism=1).run()
    assert manifest_key(oldest.backup_id) not in target.bank.objects  # no complete-looking backup with a gap
    assert not [key for key in target.bank.objects if key.startswith("locks/")]
    before = data_chunks(target)
    target.bank.fail_puts_matching = None
    resumed = BankSync(source, target).run()
    assert [entry.backup_name for entry in resumed.copied] == ["db-1"]
    assert resumed.chunks_copied == 8 - len(before) and resumed.chunks_skipped == 4 - resumed.chunks_copied  # db-1 has 4
    assert len(target.bank.chunk_puts()) == len(set(target.bank.chunk_puts())) == 8
    assert restore(target, "db-1") == data["db-1"]
    assert not BankSync(source, target).run().changed


def flip_a_byte(store: BackupStore, key: str) -> None:
    blob = bytearray(store.bank.objects[key])
    blob[len(blob) // 2] ^= 0x01
    store.bank.objects[key] = bytes(blob)


def test_a_corrupt_source_chunk_is_reported_not_copied_and_its_backup_not_copied(banks):
    source, target, data = banks
    web = source.load_manifest("web-1")
    damaged = next(iter(web.chunk_map.unique_data_digests()))
    flip_a_byte(source, chunk_key(damaged))
    report = BankSync(source, target).run()
    assert [failed.entry.backup_name for failed in report.failed] == ["web-1"]
    assert [bad.chunk for bad in report.failed[0].chunks] == [damaged.hex()]
    assert "authentication" in report.failed[0].chunks[0].error or "hash" in report.failed[0].chunks[0].error
    assert report.bad_chunks == {damaged}
    assert chunk_key(damaged) not in target.bank.objects
    assert manifest_key(web.backup_id) not in target.bank.objects
    assert sorted(entry.backup_name for entry in report.copied) == ["db-1", "db-2"]
    assert restore(target, "db-2") == data["db-2"]


def test_an_encrypted_replica_is_the_same_bank_and_opens_with_the_same_passphrase():
    source, target = BackupStore(bank("A"), PASSPHRASE), BackupStore(bank("B"), PASSPHRASE)
    payload = os.urandom(3 * MIB)
    backup(source, "secret", payload, source=volume_source("vault"))
    damaged_source = BankSync(source, target).run()
    assert [entry.backup_name for entry in damaged_source.copied] == ["secret"]
    assert restore(BackupStore(target.bank, PASSPHRASE), "secret") == payload
    with pytest.raises(EncryptionError, match="Wrong encryption passphrase"):
        BackupStore(target.bank, "another").check_access()
    with pytest.raises(EncryptionError, match="required"):
        BankSync(BackupStore(source.bank), BackupStore(bank("C"))).run()


def test_a_tampered_encrypted_chunk_fails_authentication():
    source, target = BackupStore(bank("A"), PASSPHRASE), BackupStore(bank("B"), PASSPHRASE)
    backup(source, "secret", os.urandom(2 * MIB), source=volume_source("vault"))
    key = sorted(data_chunks(source))[0]
    flip_a_byte(source, key)
    report = BankSync(source, target).run()
    assert report.copied == [] and "authentication" in report.failed[0].chunks[0].error
    assert key not in target.bank.objects


def test_check_mode_predicts_what_the_run_then_does_and_changes_nothing(banks):
    source, target, dummy = banks
    BankSync(source, target, select=lambda entry: entry.backup_name == "db-1").run()
    missing = next(iter(source.load_manifest("web-1").chunk_map.unique_data_digests()))
    del source.bank.objects[chunk_key(missing)]
    before = dict(target.bank.objects)
    predicted = BankSync(source, target, check_mode=True).run()
    assert target.bank.objects == before
    real = BankSync(source, target).run()
    for field in ("bank_config", "chunks_copied", "chunks_skipped", "bad_chunks", "bytes_copied"):
        assert getattr(predicted, field) == getattr(real, field), field
    assert [entry.backup_name for entry in predicted.copied] == [entry.backup_name for entry in real.copied] == ["db-2"]
    assert [failed.entry.backup_name for failed in predicted.failed] == [failed.entry.backup_name for failed in real.failed] == ["web-1"]
    assert (predicted.chunks_skipped, predicted.bad_chunks) == (2, {missing})  # db-2's chunks shared with db-1


def test_check_mode_into_an_empty_target_writes_no_configuration(banks):
    source, target, dummy = banks
    predicted = BankSync(source, target, check_mode=True).run()
    assert predicted.bank_config == CONFIG_COPIED and len(predicted.copied) == 3 and predicted.changed
    assert target.bank.objects == {}


def test_a_target_holding_another_bank_is_refused():
    source, other = BackupStore(bank("A"), PASSPHRASE), BackupStore(bank("other"), PASSPHRASE)
    backup(source, "here", os.urandom(MIB))
    backup(other, "elsewhere", os.urandom(MIB))  # same passphrase, other keys
    with pytest.raises(InvalidInputError, match="holds another bank"):
        BankSync(source, other).run()
    assert not [key for key in other.bank.objects if key.startswith("backups/") and "elsewhere" in key]
    assert len([key for key in other.bank.objects if key.endswith("manifest.json")]) == 1


def test_an_empty_source_or_the_same_bank_is_refused(banks):
    source, target, dummy = banks
    with pytest.raises(InvalidInputError, match="holds no bank configuration"):
        BankSync(BackupStore(bank("empty")), target).run()
    with pytest.raises(InvalidInputError, match="same bank"):
        BankSync(source, BackupStore(source.bank))
    assert target.bank.objects == {}


def test_follow_deletions_deletes_what_the_source_lost_then_prunes(banks):
    source, target, data = banks
    BankSync(source, target).run()
    retention.delete_backup(source, "web-1", lock_wait_timeout=5)
    retention.prune(source, lock_wait_timeout=5)
    predicted = BankSync(source, target, follow_deletions=True, check_mode=True, lock_wait_timeout=5).run()
    report = BankSync(source, target, follow_deletions=True, lock_wait_timeout=5).run()
    assert [plan.backup_name for plan in predicted.deleted] == [plan.backup_name for plan in report.deleted] == ["web-1"]
    assert predicted.deleted[0].objects == report.deleted[0].objects
    # web-1's three chunks, which no other backup uses, go in the prune.
    assert (predicted.pruned.chunks, predicted.pruned.object_bytes) == (report.pruned.chunks, report.pruned.object_bytes)
    assert report.pruned.chunks == 3
    assert data_chunks(target) == data_chunks(source)
    assert restore(target, "db-1") == data["db-1"]
    assert not BankSync(source, target, follow_deletions=True, lock_wait_timeout=5).run().changed


def test_follow_deletions_in_check_mode_keeps_leftovers_the_copy_would_reference(banks):
    """Chunks a killed sync left are unreferenced until the rerun writes the manifest: the predicted prune keeps them."""
    source, target, dummy = banks
    target.bank.fail_puts_matching = "manifest.json"
    with pytest.raises(BankError):
        BankSync(source, target).run()
    target.bank.fail_puts_matching = None
    leftovers = data_chunks(target)
    assert leftovers and retention.plan_prune(target).chunks == len(leftovers)
    predicted = BankSync(source, target, follow_deletions=True, check_mode=True, lock_wait_timeout=5).run()
    real = BankSync(source, target, follow_deletions=True, lock_wait_timeout=5).run()
    assert predicted.pruned.objects == real.pruned.objects == 0
    assert predicted.chunks_skipped == real.chunks_skipped == len(leftovers)


def test_selection_and_deletions_touch_only_the_chosen_backups(banks):
    source, target, dummy = banks
    report = BankSync(source, target, select=lambda entry: entry.source["volume"]["name"] == "web").run()
    assert [entry.backup_name for entry in report.copied] == ["web-1"]
    retention.delete_backup(source, "web-1", lock_wait_timeout=5)
    BankSync(source, target, select=lambda entry: entry.backup_name == "db-1").run()
    following = BankSync(source, target, follow_deletions=True, select=lambda entry: entry.backup_name == "db-1",
                         lock_wait_timeout=5).run()
    assert following.deleted == [] and target.load_manifest("web-1") is not None


def test_a_backup_replaced_in_the_source_is_copied_again(banks):
    source, target, dummy = banks
    BankSync(source, target).run()
    retention.delete_backup(source, "web-1", lock_wait_timeout=5)
    replacement = os.urandom(MIB)
    backup(source, "web-1", replacement, source=volume_source("web"))
    report = BankSync(source, target).run()
    assert [entry.backup_name for entry in report.copied] == ["web-1"]
    assert restore(target, "web-1") == replacement


def test_a_backup_deleted_from_the_source_while_it_is_copied_is_left_out_not_reported_damaged(banks):
    source, target, dummy = banks
    web = source.load_manifest("web-1")
    doomed = chunk_key(sorted(web.chunk_map.unique_data_digests())[0])
    original_get = source.bank.get

    def get_during_a_deletion(key):
        if key == doomed:  # a deletion and prune meanwhile: the manifest first, then the chunks only it used
            source.bank.objects.pop(manifest_key(web.backup_id), None)
            source.bank.objects.pop(doomed, None)
        return original_get(key)

    source.bank.get = get_during_a_deletion
    report = BankSync(source, target).run()
    assert [entry.backup_name for entry in report.vanished] == ["web-1"]
    assert (report.failed, report.bad_chunks) == ([], set())
    assert sorted(entry.backup_name for entry in report.copied) == ["db-1", "db-2"]
    assert manifest_key(web.backup_id) not in target.bank.objects


def test_a_damaged_chunk_of_a_backup_deleted_meanwhile_is_not_taken_as_stored_for_another(banks):
    """db-2 (copied first) and db-1 share a chunk that is damaged in the source; db-2 is deleted while
    it is copied, so its damage is not reported. db-1 must not be written without that chunk."""
    source, target, dummy = banks
    db1, db2 = source.load_manifest("db-1"), source.load_manifest("db-2")
    shared = sorted(db1.chunk_map.unique_data_digests() & db2.chunk_map.unique_data_digests())[0]
    damaged = chunk_key(shared)
    blob = bytearray(source.bank.objects[damaged])
    blob[-1] ^= 1
    source.bank.objects[damaged] = bytes(blob)
    original_get = source.bank.get

    def get_during_a_deletion(key):
        if key == damaged:
            source.bank.objects.pop(manifest_key(db2.backup_id), None)
        return original_get(key)

    source.bank.get = get_during_a_deletion
    report = BankSync(source, target, parallelism=1).run()
    assert [entry.backup_name for entry in report.vanished] == ["db-2"]
    assert [failed.entry.backup_name for failed in report.failed] == ["db-1"] and report.bad_chunks == {shared}
    assert manifest_key(db1.backup_id) not in target.bank.objects and damaged not in target.bank.objects
    assert [entry.backup_name for entry in report.copied] == ["web-1"]
