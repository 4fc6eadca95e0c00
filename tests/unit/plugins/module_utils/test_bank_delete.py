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

from ._engine.engine_helpers import backup, failed_backup, restore
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
    assert sorted(result["deleted"]) == ["bytes", "chunks", "chunks_referenced", "keys", "objects", "protected_until"]
    assert result["deleted"]["protected_until"] is None
    assert (result["deleted"]["chunks"], result["deleted"]["chunks_referenced"]) == (0, 1)
    assert sorted(result["pruned"]) == [
        "bytes", "chunks", "keys", "locked_until", "locked_versions", "objects", "old_versions", "progress_objects",
        "referenced_chunks", "suspect_keys"]
    # The deleted backup's chunk and the failed backup's go in the same run's prune.
    assert result["pruned"]["chunks"] >= 1 and result["pruned"]["referenced_chunks"] == 0
    assert result["pruned"]["progress_objects"] == 1 and result["pruned"]["keys"][-1].endswith("progress.json")
    assert not [key for key in bank.objects if key.startswith("chunks/")]
    again = _bank_delete.run_bank_delete(module(backup="done", prune=True))
    assert not again["changed"] and again["backup"]["name"] is None and again["deleted"]["objects"] == 0


def test_delete_needs_a_backup_or_prune(bank):
    with pytest.raises(InvalidInputError, match="Give the backup to delete"):
        _bank_delete.run_bank_delete(module())
    assert not bank.objects


def test_deleting_several_backups_then_pruning_once_is_predicted_exactly(bank):
    store = BackupStore(bank)
    kept = os.urandom(MIB)
    backup(store, "kept", kept)
    for index in range(3):
        backup(store, f"old{index}", os.urandom(MIB) + kept)
    names = ["old0", "old1", "old2", "never-existed"]
    predicted = _bank_delete.run_bank_delete(module(check_mode=True, backups=names, prune=True))
    assert predicted["pruned"]["chunks"] == 3 and [entry["name"] for entry in predicted["backups"]] == names[:3] + [None]
    assert len([key for key in bank.objects if key.startswith("chunks/")]) == 4
    result = _bank_delete.run_bank_delete(module(backups=names, prune=True))
    assert result == predicted and result["changed"]
    assert len([key for key in bank.objects if key.startswith("chunks/")]) == 1 and restore(store, "kept") == kept
