# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The bank configuration and its keys: one passphrase per bank, never stored, never guessed wrong silently."""

from __future__ import annotations

import os
import threading

import pytest

from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.encryption_keys import BANK_CONFIG_FORMAT
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.layout import BANK_CONFIG_KEY
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.store import BackupStore
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.units import MIB
from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import EncryptionError, ManifestError

from .engine_helpers import backup, lock_objects, restore
from .memory_bank import MemoryBank


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
    assert not lock_objects(bank)


def test_bank_is_either_encrypted_or_not():
    bank = MemoryBank()
    backup(BackupStore(bank), "plain", os.urandom(MIB))
    with pytest.raises(EncryptionError, match="not encrypted"):
        BackupStore(bank, passphrase="p").open_backup("plain")
    encrypted_bank = MemoryBank()
    backup(BackupStore(encrypted_bank, passphrase="p"), "enc", os.urandom(MIB))
    with pytest.raises(EncryptionError, match="encryption_passphrase is required"):
        BackupStore(encrypted_bank).open_backup("enc")


def test_a_bank_configuration_of_a_newer_format_is_refused():
    bank = MemoryBank()
    bank.put(BANK_CONFIG_KEY, BANK_CONFIG_FORMAT.dumps({"encryption": None}).replace(b'"format_version": 1', b'"format_version": 2'))
    with pytest.raises(ManifestError, match=r"bank configuration memory bank/bank.json has format version 2.*newer"):
        BackupStore(bank).check_access()


def test_an_empty_bank_has_no_configuration_until_the_first_backup():
    bank = MemoryBank()
    assert BackupStore(bank).check_access() is False
    with pytest.raises(Exception, match="must not be empty"):
        BackupStore(bank, passphrase="")
