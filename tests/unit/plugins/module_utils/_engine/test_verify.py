# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Verifying a backup: missing chunks by listing, damaged chunks by reading them back."""

from __future__ import annotations

import os

import pytest

from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.store import BackupStore
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.units import MIB
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.verify import verify_backup
from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import InvalidInputError

from .engine_helpers import backup
from .memory_bank import MemoryBank


def test_a_complete_backup_verifies_by_presence_and_by_data():
    store = BackupStore(MemoryBank(), passphrase="p")
    backup(store, "a", os.urandom(2 * MIB) + bytes(MIB) + b"tail")
    assert verify_backup(store, "a").as_dict() == {
        "mode": "presence", "chunks": 3, "missing_chunks": [], "damaged_chunks": [], "checked_chunks": 0, "checked_locks": 0,
        "short_locks": [], "ok": True}
    assert verify_backup(BackupStore(store.bank, passphrase="p"), "a", mode="data").as_dict()["checked_chunks"] == 3


def test_a_missing_chunk_fails_presence():
    bank = MemoryBank()
    store = BackupStore(bank)
    backup(store, "a", os.urandom(2 * MIB))
    removed = bank.chunk_puts()[0]
    del bank.objects[removed]
    verification = verify_backup(store, "a", mode="presence")
    assert not verification.ok and verification.missing_chunks == [removed.rsplit("/", 1)[1]]


def test_a_damaged_chunk_fails_data_and_is_named():
    bank = MemoryBank()
    store = BackupStore(bank)
    backup(store, "a", os.urandom(2 * MIB))
    damaged = bank.chunk_puts()[1]
    blob = bytearray(bank.objects[damaged])
    blob[-1] ^= 0x01
    bank.objects[damaged] = bytes(blob)
    verification = verify_backup(store, "a", mode="data").as_dict()
    assert not verification["ok"] and verification["checked_chunks"] == 2
    assert [entry["chunk"] for entry in verification["damaged_chunks"]] == [damaged.rsplit("/", 1)[1]]
    assert "content hash" in verification["damaged_chunks"][0]["error"]


def test_data_verification_of_a_share_reads_at_least_one_chunk():
    store = BackupStore(MemoryBank())
    backup(store, "a", os.urandom(4 * MIB))
    assert verify_backup(store, "a", mode="data", percent=1).checked_chunks == 1
    assert verify_backup(store, "a", mode="data", percent=50).checked_chunks == 2


def test_verifying_a_backup_that_does_not_exist_is_an_error():
    with pytest.raises(InvalidInputError, match="No complete backup 'nope'"):
        verify_backup(BackupStore(MemoryBank()), "nope")
