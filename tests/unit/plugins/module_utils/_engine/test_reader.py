# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The restore reader: byte-identical streams, and no damaged byte ever handed out."""

from __future__ import annotations

import hashlib
import os
import random

import pytest

from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.layout import manifest_key
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.store import BackupStore
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.units import MIB
from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import IntegrityError, ManifestError

from .engine_helpers import backup, restore
from .memory_bank import MemoryBank


@pytest.mark.parametrize("size", [0, 1, MIB - 1, MIB, MIB + 1, 5 * MIB + 17])
def test_round_trip_is_byte_identical(size):
    store = BackupStore(MemoryBank())
    data = random.Random(size).randbytes(size)
    dummy, manifest = backup(store, "b", data)
    assert manifest.size == size
    assert manifest.hashes["sha256"] == hashlib.sha256(data).hexdigest()
    assert restore(store, "b") == data


def test_reader_reports_its_length_and_position():
    store = BackupStore(MemoryBank())
    backup(store, "b", os.urandom(MIB + 3))
    with store.open_backup("b", parallelism=2) as reader:
        assert len(reader) == MIB + 3 and reader.tell() == 0
        reader.read(10)
        assert reader.tell() == 10


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
