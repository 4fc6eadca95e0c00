# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The chunk engine over an in-memory bank: chunking, dedup, integrity, encryption."""

from __future__ import annotations

import hashlib
import json
import os
import random
import threading
import time

import pytest

from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.layout import manifest_key, progress_key
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.store import BackupStore
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.writer import rechunk
from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import (
    EncryptionError,
    IntegrityError,
    InvalidInputError,
    ManifestError,
)
from ansible_collections.openstack_dr.bank.plugins.module_utils._manifest import ChunkMap, Manifest

from .memory_bank import MemoryBank

MIB = 1024 * 1024


def pieces_of(data: bytes, sizes=(1, 7, 4096, 65537, MIB + 3)):
    offset = 0
    index = 0
    while offset < len(data):
        size = sizes[index % len(sizes)]
        yield data[offset:offset + size]
        offset += size
        index += 1


def backup(store, name, data, **options):
    options.setdefault("chunk_size", MIB)
    writer = store.backup_writer(name, **options)
    return writer, writer.write(pieces_of(data))


def restore(store, name, read_size=100_003):
    with store.open_backup(name) as reader:
        parts = []
        while True:
            part = reader.read(read_size)
            if not part:
                break
            parts.append(part)
    return b"".join(parts)


def test_rechunk_cuts_exact_sizes_whatever_the_pieces():
    data = os.urandom(3 * MIB + 5)
    chunks = list(rechunk(pieces_of(data), MIB))
    assert [len(c) for c in chunks] == [MIB, MIB, MIB, 5]
    assert b"".join(chunks) == data


@pytest.mark.parametrize("size", [0, 1, MIB - 1, MIB, MIB + 1, 5 * MIB + 17])
def test_round_trip_is_byte_identical(size):
    store = BackupStore(MemoryBank())
    data = random.Random(size).randbytes(size)
    dummy, manifest = backup(store, "b", data)
    assert manifest.size == size
    assert manifest.hashes["sha256"] == hashlib.sha256(data).hexdigest()
    assert restore(store, "b") == data


def test_source_hash_is_checked_and_kept_when_given():
    store = BackupStore(MemoryBank())
    data = os.urandom(3 * MIB + 1)
    expected = hashlib.sha512(data).hexdigest()
    manifest = store.backup_writer("b", chunk_size=MIB, extra_hash=("sha512", expected)).write(pieces_of(data))
    assert manifest.hashes == {"sha256": hashlib.sha256(data).hexdigest(), "sha512": expected}


def test_zero_chunks_are_never_stored():
    bank = MemoryBank()
    store = BackupStore(bank)
    data = bytes(3 * MIB) + b"x" + bytes(MIB - 1) + bytes(10)
    writer, manifest = backup(store, "zeros", data)
    assert len(bank.chunk_puts()) == 1
    assert writer.stats.zero_chunks == 4
    assert manifest.chunk_map.zero_chunk_count == 4
    assert restore(store, "zeros") == data


def test_second_backup_of_same_data_writes_no_chunk_and_asks_nothing_per_chunk():
    bank = MemoryBank()
    store = BackupStore(bank)
    data = os.urandom(3 * MIB) + b"text " * 300000
    backup(store, "first", data)
    written = len(bank.chunk_puts())
    bank.exists = None  # one listing tells which chunks the bank holds: no request per chunk
    writer, dummy = backup(store, "second", data)
    assert len(bank.chunk_puts()) == written
    assert writer.stats.chunks_written == 0
    assert writer.stats.duplicate_bytes == len(data)


def test_identical_chunks_within_one_backup_are_stored_once():
    bank = MemoryBank()
    store = BackupStore(bank)
    block = os.urandom(MIB)
    backup(store, "repeat", block * 6)
    assert len(bank.chunk_puts()) == 1


def test_compressible_chunks_are_stored_smaller():
    bank = MemoryBank()
    writer, dummy = backup(BackupStore(bank), "text", b"All work and no play. " * 200000)
    assert writer.stats.bytes_written < writer.stats.new_bytes / 10


def test_flipped_byte_in_a_chunk_fails_before_any_bad_byte():
    bank = MemoryBank()
    store = BackupStore(bank)
    data = os.urandom(3 * MIB)
    backup(store, "b", data)
    second_chunk_key = sorted(bank.chunk_puts())[0]
    blob = bytearray(bank.objects[second_chunk_key])
    blob[-1] ^= 0x01
    bank.objects[second_chunk_key] = bytes(blob)
    received = bytearray()
    with pytest.raises(IntegrityError, match="does not match its content hash|damaged"):
        with store.open_backup("b") as reader:
            while True:
                part = reader.read(4096)
                if not part:
                    break
                received += part
    # Everything handed out before the failure is good data.
    assert received == data[:len(received)]
    assert len(received) % MIB == 0


def test_missing_chunk_names_the_chunk():
    bank = MemoryBank()
    store = BackupStore(bank)
    backup(store, "b", os.urandom(2 * MIB))
    del bank.objects[bank.chunk_puts()[1]]
    with pytest.raises(IntegrityError, match=r"chunk \d \(chunks/.*\) .* is missing"):
        restore(store, "b")


def test_truncated_manifest_is_refused():
    bank = MemoryBank()
    store = BackupStore(bank)
    dummy, manifest = backup(store, "b", os.urandom(2 * MIB))
    key = manifest_key(manifest.backup_id)
    bank.objects[key] = bank.objects[key][:len(bank.objects[key]) // 2]
    with pytest.raises(ManifestError, match="truncated or corrupt"):
        store.open_backup("b")


def test_encrypted_bank_round_trips_and_hides_plaintext():
    bank = MemoryBank()
    store = BackupStore(bank, passphrase="correct horse")
    data = b"secret payload " * 100000
    backup(store, "enc", data)
    assert all(b"secret payload" not in blob for blob in bank.objects.values())
    assert b"correct horse" not in b"".join(bank.objects.values())
    assert restore(BackupStore(bank, passphrase="correct horse"), "enc") == data


def test_wrong_passphrase_is_a_clear_error():
    bank = MemoryBank()
    backup(BackupStore(bank, passphrase="right"), "enc", os.urandom(MIB))
    with pytest.raises(EncryptionError, match="Wrong encryption passphrase"):
        BackupStore(bank, passphrase="wrong").open_backup("enc")


def test_first_backups_into_an_empty_bank_agree_on_its_keys():
    """Backups that start together on an empty encrypted bank must all use the keys the bank keeps."""
    bank = MemoryBank()
    runs = 4
    start = threading.Barrier(runs)
    data = [os.urandom(MIB) for dummy in range(runs)]
    errors = []

    def first_backup(index):
        try:
            start.wait(30)
            backup(BackupStore(bank, passphrase="correct horse"), f"first-{index}", data[index])
        except Exception as exc:  # pylint: disable=broad-exception-caught
            errors.append(exc)

    threads = [threading.Thread(target=first_backup, args=(index,)) for index in range(runs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors
    assert bank.puts.count("bank.json") == 1
    for index in range(runs):
        assert restore(BackupStore(bank, passphrase="correct horse"), f"first-{index}") == data[index]
    assert not [key for key in bank.objects if key.startswith("locks/")]


def test_bank_is_either_encrypted_or_not():
    bank = MemoryBank()
    backup(BackupStore(bank), "plain", os.urandom(MIB))
    with pytest.raises(EncryptionError, match="not encrypted"):
        BackupStore(bank, passphrase="p").open_backup("plain")
    encrypted_bank = MemoryBank()
    backup(BackupStore(encrypted_bank, passphrase="p"), "enc", os.urandom(MIB))
    with pytest.raises(EncryptionError, match="encryption_passphrase is required"):
        BackupStore(encrypted_bank).open_backup("enc")


def test_failed_backup_leaves_no_manifest_and_records_failure():
    bank = MemoryBank()
    bank.fail_puts_matching = "chunks/"
    store = BackupStore(bank)
    with pytest.raises(Exception, match="injected failure"):
        backup(store, "broken", os.urandom(3 * MIB))
    assert store.load_manifest("broken") is None
    assert store.load_progress("broken")["status"] == "failed"
    assert not [key for key in bank.objects if key.startswith("locks/")]


def test_source_hash_mismatch_leaves_no_manifest():
    store = BackupStore(MemoryBank())
    writer = store.backup_writer("b", chunk_size=MIB, extra_hash=("sha512", "00" * 64))
    with pytest.raises(IntegrityError, match="does not match"):
        writer.write([b"data"])
    assert store.load_manifest("b") is None


def test_invalid_chunk_size_is_refused():
    with pytest.raises(InvalidInputError, match="power of two"):
        BackupStore(MemoryBank()).backup_writer("b", chunk_size=3 * MIB)


def test_delete_keeps_chunks_other_backups_use():
    bank = MemoryBank()
    store = BackupStore(bank)
    shared = os.urandom(MIB)
    backup(store, "one", shared + os.urandom(MIB))
    backup(store, "two", shared + os.urandom(MIB))
    plan = store.delete_backup("one", check_mode=True)
    assert plan["chunks"] == 1 and not plan["deleted"]
    assert store.load_manifest("one") is not None
    result = store.delete_backup("one")
    assert result["deleted"]
    assert store.load_manifest("one") is None
    assert restore(store, "two")[:MIB] == shared
    assert store.delete_backup("one")["exists"] is False


def stored_chunks(bank) -> set[str]:
    return {key for key in bank.objects if key.startswith("chunks/")}


def failed_backup(store, name, data, fail_after):
    """A backup whose source breaks after ``fail_after`` bytes: some chunks stored, no manifest."""
    def source():
        yield data[:fail_after]
        raise ConnectionResetError("the image download was cut")
    with pytest.raises(ConnectionResetError):
        store.backup_writer(name, chunk_size=MIB).write(source())


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
    assert orphans and store.load_progress("failed")["status"] == "failed"

    predicted = store.prune(check_mode=True)
    assert (predicted["chunks"], predicted["progress_objects"], predicted["pruned"]) == (len(orphans), 1, False)
    assert stored_chunks(bank) == kept_chunks | orphans and store.load_progress("failed") is not None

    pruned = store.prune()
    assert pruned["pruned"] and pruned["objects"] == predicted["objects"] and pruned["bytes"] == predicted["bytes"]
    assert stored_chunks(bank) == kept_chunks and store.load_progress("failed") is None
    assert restore(store, "kept")[:MIB] == shared
    assert store.verify_backup("kept")["ok"]
    assert not store.prune()["pruned"]
    assert not [key for key in bank.objects if key.startswith("locks/")]
    # The failed backup can still be run again: it uploads its chunks anew.
    backup(store, "failed", leftover)
    assert restore(store, "failed") == leftover


def test_deleting_an_incomplete_backup_then_pruning_is_predicted_exactly():
    bank = MemoryBank()
    store = BackupStore(bank)
    backup(store, "kept", os.urandom(MIB))
    failed_backup(store, "failed", os.urandom(4 * MIB), fail_after=3 * MIB)
    failed_backup(store, "other-failed", os.urandom(3 * MIB), fail_after=2 * MIB)
    deletion = store.delete_backup("failed", check_mode=True)
    pruning = store.prune(check_mode=True, excluding=set(deletion["objects"]))
    predicted = deletion["objects"] + pruning["objects"]
    assert len(predicted) == len(set(predicted))
    before = set(bank.objects)
    store.delete_backup("failed")
    store.prune()
    assert sorted(before - set(bank.objects)) == sorted(predicted)


def test_prune_stops_at_an_unreadable_manifest_and_removes_nothing():
    bank = MemoryBank()
    store = BackupStore(bank)
    backup(store, "damaged", os.urandom(2 * MIB))
    failed_backup(store, "failed", os.urandom(3 * MIB), fail_after=2 * MIB)
    bank.objects[manifest_key(store.backup_id_for("damaged"))] = b'{"format": "trunc'
    objects_before = {key for key in bank.objects if not key.startswith("locks/")}
    with pytest.raises(ManifestError):
        store.prune()
    assert {key for key in bank.objects if not key.startswith("locks/")} == objects_before


def test_a_backup_whose_progress_stopped_long_ago_is_listed_as_stalled():
    bank = MemoryBank()
    store = BackupStore(bank)
    backup(store, "done", os.urandom(MIB))
    for name, updated_at in (("running", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())),
                             ("killed", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3600)))):
        bank.put(progress_key(store.backup_id_for(name)), json.dumps(
            {"backup_name": name, "status": "in_progress", "started_at": updated_at, "updated_at": updated_at}).encode())
    statuses = {entry["backup_name"]: entry["status"] for entry in store.list_backups()}
    assert statuses == {"done": "complete", "running": "in_progress", "killed": "stalled"}


def test_list_and_verify():
    bank = MemoryBank()
    store = BackupStore(bank)
    backup(store, "a", os.urandom(2 * MIB), source={"volume": {"id": "v1", "name": "vol"}})
    backup(store, "b", os.urandom(MIB), source={"volume": {"id": "v2", "name": "other"}})
    assert [b["backup_name"] for b in store.list_backups(source_volume="vol")] == ["a"]
    assert store.list_backups(name="nope") == []
    assert store.verify_backup("a", mode="data")["ok"]
    del bank.objects[bank.chunk_puts()[0]]
    assert not store.verify_backup("a", mode="presence")["ok"]


def test_chunk_map_is_compact():
    chunk_map = ChunkMap()
    for index in range(10000):
        if index % 2:
            chunk_map.append_zero()
        else:
            chunk_map.append_data(hashlib.sha256(str(index).encode()).digest())
    restored = ChunkMap.from_json(chunk_map.to_json())
    assert list(restored) == list(chunk_map)


def test_manifest_of_a_full_1_tib_volume_stays_under_20_mb():
    chunk_map = ChunkMap()
    for index in range(262144):  # 1 TiB at 4 MiB, no zero chunk: the largest case
        chunk_map.append_data(hashlib.sha256(index.to_bytes(8, "big")).digest())
    document = {"format": "openstack_dr.bank/backup-manifest", "format_version": 1, "size": 262144 * 4 * MIB,
                "chunk_size": 4 * MIB, "chunk_count": 262144, "hashes": {}, "backup_id": "id", "backup_name": "big",
                "created_at": "2026-11-25T00:00:00Z"}
    data = Manifest(document, chunk_map).to_bytes()
    assert len(data) < 20_000_000
    assert Manifest.from_bytes(data, "big").chunk_map.chunk_count == 262144
