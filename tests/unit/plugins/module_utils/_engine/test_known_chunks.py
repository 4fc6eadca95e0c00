# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a backup asks the bank: its parents' manifests and a HEAD per unknown chunk, never a listing of a big bank."""

from __future__ import annotations

import hashlib
import os

from ansible_collections.openstack_dr.bank.plugins.module_utils._bank.counting import CountingBank
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine import known_chunks
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.known_chunks import PackedIdSet
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.store import BackupStore
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.units import MIB

from .engine_helpers import backup, failed_backup, restore, stored_chunks
from .memory_bank import MemoryBank


def volume(volume_id: str) -> dict:
    return {"volume": {"id": volume_id, "name": volume_id}}


def fill_with_foreign_chunks(bank: MemoryBank, count: int) -> None:
    """Chunk objects nobody references, so the bank is bigger than the listing budget."""
    for index in range(count):
        digest = hashlib.sha256(b"foreign %d" % index).digest()
        bank.objects[f"chunks/{digest.hex()[:2]}/{digest.hex()}"] = b"x"


def test_packed_id_set_holds_ids_and_ignores_matches_across_two_ids():
    ids = PackedIdSet(bucket_bits=0)
    first, second = bytes(range(32)), bytes(range(32, 64))
    assert ids.add(first) and ids.add(second) and not ids.add(first)
    assert len(ids) == 2 and first in ids and second in ids
    straddling = first[16:] + second[:16]
    assert straddling not in ids and ids.add(straddling) and straddling in ids
    assert b"short" not in ids


def test_packed_id_set_costs_about_32_bytes_per_id():
    ids = PackedIdSet(bucket_bits=16)
    ids.update(hashlib.sha256(b"%d" % index).digest() for index in range(200_000))
    assert len(ids) == 200_000
    assert hashlib.sha256(b"7").digest() in ids and hashlib.sha256(b"-1").digest() not in ids
    assert ids.memory_bytes() < 200_000 * 32 * 1.3 + 65536 * 100


def test_unchanged_re_backup_reads_its_parent_and_asks_nothing_per_chunk(monkeypatch):
    bank = MemoryBank()
    store = BackupStore(bank)
    data = os.urandom(4 * MIB) + bytes(MIB) + os.urandom(MIB)
    backup(store, "vol-1", data, source=volume("v1"))
    monkeypatch.setattr(known_chunks, "LISTING_BUDGET", 0)  # a bank too big to list
    fill_with_foreign_chunks(bank, 50)
    writer, manifest = backup(store, "vol-2", data, source=volume("v1"))
    requests = writer.stats.as_dict()["requests"]
    assert writer.stats.chunks_written == 0 and writer.stats.chunks_checked == 0
    assert requests["head"] == 0 and requests["list"] <= 1  # the lock's listing only
    # One parent manifest read, plus the source index, the lock, progress and manifest: the target's "+ 10".
    assert sum(requests.values()) <= 1 + 10
    assert restore(store, "vol-2") == data and manifest.size == len(data)


def test_a_chunk_another_volume_stored_is_found_by_head_not_uploaded(monkeypatch):
    bank = MemoryBank()
    store = BackupStore(bank)
    image = os.urandom(3 * MIB)
    backup(store, "clone-a", image + os.urandom(MIB), source=volume("a"))
    monkeypatch.setattr(known_chunks, "LISTING_BUDGET", 2)
    fill_with_foreign_chunks(bank, 10)
    puts_before = len(bank.chunk_puts())
    writer, dummy = backup(store, "clone-b", image + os.urandom(MIB), source=volume("b"))
    assert len(bank.chunk_puts()) == puts_before + 1  # only its own last chunk
    assert writer.stats.duplicate_chunks == 3 and writer.stats.chunks_checked == 4
    assert writer.stats.as_dict()["requests"]["head"] == 4
    assert restore(store, "clone-b")[:3 * MIB] == image


def test_first_backup_into_a_small_bank_lists_it_once_and_makes_one_request_per_new_chunk():
    bank = MemoryBank()
    store = BackupStore(bank)
    writer, dummy = backup(store, "first", os.urandom(5 * MIB) + bytes(2 * MIB), source=volume("v"))
    requests = writer.stats.as_dict()["requests"]
    assert requests["head"] == 0 and writer.stats.chunks_written == 5
    # Five chunk puts, plus a constant: lock, progress, the chunk listing, manifest, source index.
    assert requests["put"] <= 5 + 4 and sum(requests.values()) <= 5 + 10


def test_a_stale_source_index_costs_heads_but_the_backup_is_whole(monkeypatch):
    bank = MemoryBank()
    store = BackupStore(bank)
    data = os.urandom(2 * MIB)
    backup(store, "old", data, source=volume("v"))
    bank.objects.pop(f"backups/{store.backup_id_for('old')}/manifest.json")
    monkeypatch.setattr(known_chunks, "LISTING_BUDGET", 0)
    writer, dummy = backup(store, "new", data, source=volume("v"))
    assert writer.stats.chunks_written == 0 and writer.stats.chunks_checked == 2
    assert restore(store, "new") == data


def test_a_resumed_backup_does_not_upload_again_what_its_failed_run_stored(monkeypatch):
    bank = MemoryBank()
    store = BackupStore(bank)
    data = os.urandom(6 * MIB)
    failed_backup(store, "cut", data, fail_after=4 * MIB)
    stored = stored_chunks(bank)
    monkeypatch.setattr(known_chunks, "LISTING_BUDGET", 0)
    writer, dummy = backup(store, "cut", data)
    assert writer.stats.chunks_written == 6 - len(stored) and writer.stats.chunks_checked == 6
    assert restore(store, "cut") == data


def test_a_source_index_that_cannot_be_written_does_not_fail_the_backup():
    bank = MemoryBank()
    store = BackupStore(bank)
    bank.fail_puts_matching = "sources/"
    data = os.urandom(MIB)
    backup(store, "b", data, source=volume("v"))
    assert restore(store, "b") == data and store.load_progress("b") is None


def test_counting_bank_counts_listing_pages():
    bank = MemoryBank()
    fill_with_foreign_chunks(bank, 2500)
    counting = CountingBank(bank)
    assert sum(1 for dummy in counting.list("chunks/")) == 2500
    assert counting.counts["list"] == 3 and counting.list_keys == 2500


def test_the_source_index_of_an_encrypted_bank_is_sealed_and_still_finds_the_parent():
    bank = MemoryBank()
    store = BackupStore(bank, passphrase="index secret")
    data = os.urandom(2 * MIB)
    backup(store, "one", data, source=volume("secret-volume-id"))
    index_keys = [key for key in bank.objects if key.startswith(known_chunks.SOURCES_PREFIX)]
    assert len(index_keys) == 1 and b"secret-volume-id" not in index_keys[0].encode()
    assert store.backup_id_for("one").encode() not in bank.objects[index_keys[0]]
    writer, dummy = backup(store, "two", data, source=volume("secret-volume-id"))
    assert writer._stored.parents == [store.backup_id_for("one")]  # pylint: disable=protected-access
    assert writer.stats.chunks_written == 0 and restore(store, "two") == data
