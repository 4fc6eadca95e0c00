# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""bank_delete over an in-memory bank: the deletion and prune results its RETURN documents."""

from __future__ import annotations

import os

import pytest

from ansible_collections.openstack_dr.bank.plugins.module_utils import _bank_delete
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.store import BackupStore
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.units import MIB
from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import InvalidInputError

from ._engine.engine_helpers import backup, failed_backup
from .flow_fakes import memory_bank_for, module


@pytest.fixture(name="bank")
def bank_fixture(monkeypatch):
    return memory_bank_for(monkeypatch, _bank_delete)


def test_delete_then_prune_reports_what_it_removed(bank):
    store = BackupStore(bank)
    backup(store, "done", os.urandom(MIB))
    failed_backup(store, "cut", os.urandom(2 * MIB), fail_after=MIB)
    predicted = _bank_delete.run_bank_delete(module(check_mode=True, backup="done", prune=True))
    result = _bank_delete.run_bank_delete(module(backup="done", prune=True))
    assert result == predicted
    assert result["changed"] and result["backup"] == {"id": store.backup_id_for("done"), "name": "done"}
    assert sorted(result["deleted"]) == ["bytes", "chunks", "keys", "objects"] and result["deleted"]["chunks"] == 1
    assert sorted(result["pruned"]) == ["bytes", "chunks", "keys", "objects", "progress_objects"]
    assert result["pruned"]["progress_objects"] == 1 and result["pruned"]["keys"][-1].endswith("progress.json")
    again = _bank_delete.run_bank_delete(module(backup="done", prune=True))
    assert not again["changed"] and again["backup"]["name"] is None and again["deleted"]["objects"] == 0


def test_delete_needs_a_backup_or_prune(bank):
    with pytest.raises(InvalidInputError, match="Give the backup to delete"):
        _bank_delete.run_bank_delete(module())
    assert not bank.objects
