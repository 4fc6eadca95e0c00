# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The backup writer: what it stores, what it skips, what it checks, and how it fails."""

from __future__ import annotations

import hashlib
import os

import pytest

from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.chunking import ZERO_CLUSTER_SIZE
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.store import BackupStore
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.units import MIB
from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import IntegrityError, InvalidInputError

from .engine_helpers import backup, lock_objects, pieces_of, restore
from .memory_bank import MemoryBank


def test_source_hash_is_checked_and_kept_when_given():
    store = BackupStore(MemoryBank())
    data = os.urandom(3 * MIB + 1)
    expected = hashlib.sha512(data).hexdigest()
    dummy, manifest = backup(store, "b", data, expected_hash=("sha512", expected.upper()))
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


def test_all_zero_clusters_inside_data_chunks_are_recorded():
    cluster = ZERO_CLUSTER_SIZE
    data = bytearray(os.urandom(3 * MIB + cluster + 100))
    data[cluster:3 * cluster] = bytes(2 * cluster)             # clusters 1 and 2 of chunk 0
    data[MIB:2 * MIB] = bytes(MIB)                              # chunk 1: a zero chunk, no record
    data[3 * MIB + cluster:] = bytes(100)                       # the final partial cluster of chunk 3
    dummy, manifest = backup(BackupStore(MemoryBank()), "clusters", bytes(data))
    records = dict(manifest.zero_clusters)
    assert sorted(records) == [0, 3]
    assert int.from_bytes(records[0], "little") == 0b110
    assert int.from_bytes(records[3], "little") == 0b10


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
    backup(BackupStore(bank), "repeat", os.urandom(MIB) * 6)
    assert len(bank.chunk_puts()) == 1


def test_compressible_chunks_are_stored_smaller():
    writer, dummy = backup(BackupStore(MemoryBank()), "text", b"All work and no play. " * 200000)
    assert writer.stats.bytes_written < writer.stats.new_bytes / 10


def test_failed_backup_leaves_no_manifest_and_records_failure():
    bank = MemoryBank()
    bank.fail_puts_matching = "chunks/"
    store = BackupStore(bank)
    with pytest.raises(Exception, match="injected failure"):
        backup(store, "broken", os.urandom(3 * MIB))
    assert store.load_manifest("broken") is None
    assert store.load_progress("broken").status == "failed"
    assert not lock_objects(bank)


def test_source_hash_mismatch_leaves_no_manifest():
    store = BackupStore(MemoryBank())
    writer = store.backup_writer("b", chunk_size=MIB)
    with pytest.raises(IntegrityError, match="does not match"):
        writer.write_chunks([b"data"], expected_size=4, expected_hash=("sha512", "00" * 64))
    with pytest.raises(RuntimeError, match="needs a successful write_chunks"):
        writer.commit()
    assert store.load_manifest("b") is None


def test_a_stream_shorter_than_expected_leaves_no_manifest():
    store = BackupStore(MemoryBank())
    writer = store.backup_writer("short", chunk_size=MIB)
    with pytest.raises(IntegrityError, match=f"ended after {MIB} bytes but {2 * MIB} were expected"):
        writer.write_chunks([os.urandom(MIB)], expected_size=2 * MIB)
    assert store.load_manifest("short") is None
    assert store.load_progress("short").status == "failed"


def test_progress_shows_bytes_total_while_chunks_are_written():
    bank = MemoryBank()
    store = BackupStore(bank)
    writer = store.backup_writer("running", chunk_size=MIB, source={"volume": {"id": "v1"}})
    writer.write_chunks(pieces_of(os.urandom(2 * MIB)), expected_size=2 * MIB)
    progress = store.load_progress("running")
    assert (progress.status, progress.bytes_total, progress.source) == ("in_progress", 2 * MIB, {"volume": {"id": "v1"}})
    assert lock_objects(bank)  # held until commit or abort
    writer.commit()
    assert store.load_progress("running") is None and not lock_objects(bank)


def test_abort_after_the_chunks_leaves_no_manifest_and_says_why():
    bank = MemoryBank()
    store = BackupStore(bank)
    writer = store.backup_writer("aborted", chunk_size=MIB)
    writer.write_chunks([os.urandom(MIB)], expected_size=MIB)
    writer.abort(RuntimeError("temporary image could not be removed"))
    writer.abort("a second abort does nothing")
    assert store.load_manifest("aborted") is None
    assert store.load_progress("aborted").error == "temporary image could not be removed"
    assert not lock_objects(bank)
    with pytest.raises(RuntimeError, match="needs a successful write_chunks"):
        writer.commit()


def test_write_is_write_chunks_then_commit():
    store = BackupStore(MemoryBank())
    data = os.urandom(MIB + 5)
    manifest = store.backup_writer("whole", chunk_size=MIB).write(pieces_of(data), expected_size=len(data))
    assert store.load_manifest("whole").to_bytes() == manifest.to_bytes()
    assert restore(store, "whole") == data


@pytest.mark.parametrize("option, value, message", [
    ("chunk_size", 3 * MIB, "power of two"),
    ("parallelism", 0, "between 1 and 64"),
    ("parallelism", 65, "between 1 and 64"),
])
def test_invalid_writer_settings_are_refused(option, value, message):
    with pytest.raises(InvalidInputError, match=message):
        BackupStore(MemoryBank()).backup_writer("b", **{option: value})


def test_an_empty_backup_name_is_refused():
    with pytest.raises(InvalidInputError, match="backup_name must not be empty"):
        BackupStore(MemoryBank()).backup_writer("")
