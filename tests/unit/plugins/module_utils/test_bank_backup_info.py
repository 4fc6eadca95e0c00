# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""bank_backup_info over an in-memory bank: the listing its RETURN documents."""

from __future__ import annotations

import os

import pytest

from ansible_collections.openstack_dr.bank.plugins.module_utils import _bank_backup_info
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.store import BackupStore
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.units import MIB
from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import InvalidInputError

from ._engine.engine_helpers import backup, failed_backup
from .flow_fakes import memory_bank_for, module

LISTED_KEYS = ["bytes_done", "bytes_total", "completed_at", "created_at", "description", "hashes", "id", "name",
               "protected_until", "size", "source_cloud", "source_volume", "stats", "status", "stored_bytes", "updated_at"]


@pytest.fixture(name="bank")
def bank_fixture(monkeypatch):
    return memory_bank_for(monkeypatch, _bank_backup_info)


def test_info_lists_complete_and_failed_backups_in_one_shape(bank):
    store = BackupStore(bank)
    backup(store, "done", os.urandom(MIB), source={"volume": {"id": "v1", "name": "db", "cloud": "a"}})
    failed_backup(store, "cut", os.urandom(2 * MIB), fail_after=MIB)
    listed = {entry["name"]: entry for entry in _bank_backup_info.run_bank_backup_info(module())["backups"]}
    assert sorted(listed["done"]) == LISTED_KEYS
    assert sorted(listed["cut"]) == sorted(LISTED_KEYS + ["error"])
    done, cut = listed["done"], listed["cut"]
    assert (done["status"], done["size"], done["bytes_done"], done["updated_at"]) == ("complete", MIB, MIB, done["completed_at"])
    assert done["source_volume"]["id"] == "v1" and done["source_cloud"]["cloud"] == "a" and done["stats"]["chunks"] == 1
    assert (cut["status"], cut["size"], cut["bytes_total"], cut["completed_at"]) == ("failed", 2 * MIB, 2 * MIB, None)


def test_info_verifies_complete_backups_only(bank):
    store = BackupStore(bank)
    backup(store, "done", os.urandom(MIB))
    failed_backup(store, "cut", os.urandom(2 * MIB), fail_after=MIB)
    result = _bank_backup_info.run_bank_backup_info(module(verify="data", backup="done"))
    (entry,) = result["backups"]
    assert entry["verification"] == {"mode": "data", "chunks": 1, "checked_chunks": 1, "missing_chunks": [],
                                     "damaged_chunks": [], "checked_locks": 0, "short_locks": [], "ok": True}
    with pytest.raises(InvalidInputError, match="verify_percent"):
        _bank_backup_info.run_bank_backup_info(module(verify_percent=0))
