# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Names are names, ids are ids: a name that looks like an id never selects the backup with that id."""

from __future__ import annotations

import os

from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.store import BackupStore
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.units import MIB

from .engine_helpers import backup
from .memory_bank import MemoryBank


def test_a_name_that_is_another_backups_id_selects_the_backup_of_that_name():
    store = BackupStore(MemoryBank())
    dummy, first = backup(store, "first", os.urandom(MIB))
    # Written through the engine, which does not police names (the modules refuse names like ids).
    dummy, impostor = backup(store, first.backup_id, os.urandom(MIB))
    assert impostor.backup_id != first.backup_id
    assert store.load_manifest(first.backup_id).backup_name == first.backup_id
    assert store.backup_id_for(first.backup_id) == impostor.backup_id


def test_an_id_is_still_an_id_when_no_backup_has_it_as_its_name():
    store = BackupStore(MemoryBank())
    dummy, first = backup(store, "first", os.urandom(MIB))
    assert store.backup_id_for(first.backup_id) == first.backup_id
    assert store.load_manifest(first.backup_id).backup_name == "first"
