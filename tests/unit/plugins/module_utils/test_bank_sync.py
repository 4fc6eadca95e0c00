# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""bank_sync's flow over in-memory banks: the result its RETURN documents, the lag, the failure, the docs."""

from __future__ import annotations

import os
import pathlib
import types

import pytest
import yaml

from ansible_collections.openstack_dr.bank.plugins.doc_fragments._bank import ModuleDocFragment
from ansible_collections.openstack_dr.bank.plugins.module_utils import _bank_sync
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.layout import chunk_key
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.store import BackupStore
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.units import MIB
from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import BankMissingError, IntegrityError, InvalidInputError
from ansible_collections.openstack_dr.bank.plugins.modules import bank_sync

from ._engine.engine_helpers import backup
from ._engine.memory_bank import MemoryBank


@pytest.fixture(name="banks")
def banks_fixture(monkeypatch):
    """Two in-memory banks that the flow opens by the O(source_bank.path) and O(target_bank.path) it is given."""
    opened = {}
    for name in ("source", "target"):
        opened[name] = MemoryBank()
        opened[name].description = f"memory bank {name}"
    monkeypatch.setattr(_bank_sync, "open_bank", lambda config, read_only=False: opened[config["path"]])
    return BackupStore(opened["source"]), BackupStore(opened["target"])


def module(check_mode: bool = False, **params) -> types.SimpleNamespace:
    defaults = {"source_bank": {"type": "file", "path": "source"}, "target_bank": {"type": "file", "path": "target"},
                "encryption_passphrase": None, "backups": None, "follow_deletions": False, "parallelism": 2, "lock_timeout": 5}
    return types.SimpleNamespace(params=dict(defaults, **params), check_mode=check_mode)


def backup_of(store: BackupStore, name: str, volume: str, created_at: str, size: int = MIB) -> None:
    backup(store, name, os.urandom(size), source={"volume": {"id": f"id-{volume}", "name": volume}})
    # Backups made within a test share a second: give each its own creation time, as days apart would.
    manifest = store.load_manifest(name)
    manifest.document["created_at"] = created_at
    store.bank.put(f"backups/{manifest.backup_id}/manifest.json", manifest.to_bytes())


def test_the_result_gives_counts_and_per_volume_lag(banks):
    source, target = banks
    backup_of(source, "db-old", "db", "2026-11-30T01:00:00Z")
    backup_of(source, "web-1", "web", "2026-11-30T02:00:00Z")
    first = _bank_sync.run_bank_sync(module(backups=["db-old", "web"]))
    backup_of(source, "db-new", "db", "2026-12-01T01:00:00Z", 2 * MIB)
    predicted = _bank_sync.run_bank_sync(module(check_mode=True, backups=["db-old", "web"]))
    assert not predicted["changed"] and predicted["copied"] == []
    assert [item["lag_seconds"] for item in first["volumes"]] == [0, 0]
    assert first["counts"] == {"backups_selected": 2, "backups_present": 0, "backups_copied": 2, "backups_failed": 0,
                               "backups_deleted": 0, "chunks_copied": 2, "chunks_skipped": 0, "chunks_corrupt": 0,
                               "bytes_copied": first["counts"]["bytes_copied"]}
    assert first["bank_config"] == "copied" and first["counts"]["bytes_copied"] > 2 * MIB
    lagging = _bank_sync.run_bank_sync(module(check_mode=True, backups=["db-old"]))
    assert lagging["volumes"] == [{
        "source_volume": {"id": "id-db", "name": "db"},
        "source_newest": {"id": source.backup_id_for("db-old"), "name": "db-old", "created_at": "2026-11-30T01:00:00Z",
                          "source_volume": {"id": "id-db", "name": "db"}},
        "target_newest": {"id": source.backup_id_for("db-old"), "name": "db-old", "created_at": "2026-11-30T01:00:00Z",
                          "source_volume": {"id": "id-db", "name": "db"}},
        "lag_seconds": 0, "in_sync": True}]
    everything = _bank_sync.run_bank_sync(module(check_mode=True))
    by_volume = {item["source_volume"]["name"]: item for item in everything["volumes"]}
    # In check mode the volumes are those the run would leave: db-new copied, so db is in step.
    assert by_volume["db"]["in_sync"] and by_volume["db"]["target_newest"]["name"] == "db-new"
    assert [entry["name"] for entry in everything["copied"]] == ["db-new"] and everything["changed"]
    assert "deleted" not in everything and "pruned" not in everything


def test_the_lag_is_the_age_gap_of_the_newest_backups(banks):
    source, target = banks
    backup_of(source, "db-1", "db", "2026-11-30T01:00:00Z")
    _bank_sync.run_bank_sync(module())
    backup_of(source, "db-2", "db", "2026-11-30T07:00:05Z")
    report = types.SimpleNamespace(selected=[], in_target=[])
    for entry in _bank_sync.BankSync(source, target, check_mode=True).run().selected:
        report.selected.append(entry)
        if entry.backup_name == "db-1":
            report.in_target.append(entry)
    lags = _bank_sync.volume_lags(report)
    assert [(item["lag_seconds"], item["in_sync"], item["target_newest"]["name"]) for item in lags] == [(6 * 3600 + 5, False, "db-1")]


def test_a_damaged_source_fails_the_module_after_copying_the_rest(banks):
    source, target = banks
    backup_of(source, "good", "db", "2026-11-30T01:00:00Z")
    backup_of(source, "bad", "web", "2026-11-30T02:00:00Z")
    digest = next(iter(source.load_manifest("bad").chunk_map.unique_data_digests()))
    blob = bytearray(source.bank.objects[chunk_key(digest)])
    blob[-1] ^= 0xFF
    source.bank.objects[chunk_key(digest)] = bytes(blob)
    with pytest.raises(IntegrityError, match="1 backup") as failure:
        _bank_sync.run_bank_sync(module())
    details = failure.value.details
    assert details["changed"] and [entry["name"] for entry in details["copied"]] == ["good"]
    assert details["damaged"][0]["name"] == "bad" and details["damaged"][0]["chunks"][0]["chunk"] == digest.hex()
    assert details["counts"]["chunks_corrupt"] == 1
    web = {item["source_volume"]["name"]: item for item in details["volumes"]}["web"]
    assert web["target_newest"] is None and web["lag_seconds"] is None and not web["in_sync"]


def test_follow_deletions_reports_deleted_and_pruned(banks):
    source, target = banks
    backup_of(source, "keep", "db", "2026-11-30T01:00:00Z")
    backup_of(source, "drop", "db", "2026-11-30T02:00:00Z")
    _bank_sync.run_bank_sync(module())
    from ansible_collections.openstack_dr.bank.plugins.module_utils._engine import retention  # pylint: disable=import-outside-toplevel
    retention.delete_backup(source, "drop", lock_wait_timeout=5)
    predicted = _bank_sync.run_bank_sync(module(check_mode=True, follow_deletions=True))
    result = _bank_sync.run_bank_sync(module(follow_deletions=True))
    assert predicted == dict(result, stats=predicted["stats"])
    assert [entry["name"] for entry in result["deleted"]] == ["drop"] and result["pruned"]["chunks"] == 1
    assert result["counts"]["backups_deleted"] == 1 and target.load_manifest("drop") is None


@pytest.mark.parametrize(("option", "value"), [("lock_timeout", -1), ("parallelism", 0), ("parallelism", 65)])
def test_bad_numbers_are_refused_by_name_before_any_bank_is_opened(banks, option, value):
    with pytest.raises(InvalidInputError, match=option):
        _bank_sync.run_bank_sync(module(**{option: value}))
    assert banks[1].bank.objects == {}


def test_a_write_only_target_with_follow_deletions_is_refused_before_any_bank_is_opened(banks):
    source, target = banks
    backup_of(source, "db-1", "db", "2026-11-30T01:00:00Z")
    with pytest.raises(InvalidInputError, match="write_only") as refused:
        _bank_sync.run_bank_sync(module(follow_deletions=True, target_bank={"type": "file", "path": "target", "write_only": True}))
    assert refused.value.details["option"] == "target_bank.write_only" and target.bank.objects == {}
    # Without follow_deletions the same target is fine: a sync never deletes there.
    result = _bank_sync.run_bank_sync(module(target_bank={"type": "file", "path": "target", "write_only": True}))
    assert [entry["name"] for entry in result["copied"]] == ["db-1"]


def test_the_same_bank_as_source_and_target_is_refused(banks):
    source, target = banks
    backup_of(source, "db-1", "db", "2026-11-30T01:00:00Z")
    objects = dict(source.bank.objects)
    with pytest.raises(InvalidInputError, match="same bank"):
        _bank_sync.run_bank_sync(module(target_bank={"type": "file", "path": "source"}))
    assert source.bank.objects == objects


def test_an_empty_source_is_refused_and_nothing_is_written(banks):
    with pytest.raises(InvalidInputError, match="holds no bank configuration"):
        _bank_sync.run_bank_sync(module())
    assert banks[1].bank.objects == {}


def test_a_target_holding_another_bank_is_refused_and_left_as_it_was(banks):
    source, target = banks
    backup_of(source, "db-1", "db", "2026-11-30T01:00:00Z")
    backup(BackupStore(target.bank, "another passphrase"), "other", os.urandom(MIB))
    objects = dict(target.bank.objects)
    with pytest.raises(InvalidInputError, match="holds another bank"):
        _bank_sync.run_bank_sync(module())
    assert target.bank.objects == objects


def test_the_secrets_inside_both_cloud_dicts_are_masked():
    params = {"source_bank": {"type": "swift", "cloud": {"auth": {"password": "one"}}},
              "target_bank": {"type": "swift", "cloud": {"auth": {"password": "two", "username": "u"}}}}
    assert _bank_sync.sync_secrets(params) == {"one", "two"}


DOC = yaml.safe_load(bank_sync.DOCUMENTATION)["options"]
FRAGMENT = yaml.safe_load(ModuleDocFragment.DOCUMENTATION)["options"]


@pytest.mark.parametrize("option", ["source_bank", "target_bank"])
def test_both_banks_are_documented_as_the_bank_option(option):
    documented = DOC[option]["suboptions"]
    bank = FRAGMENT["bank"]["suboptions"]
    assert list(documented) == list(bank)
    for name, doc in bank.items():
        assert {key: value for key, value in documented[name].items() if key != "description"} == \
            {key: value for key, value in doc.items() if key != "description"}, name
    spec = bank_sync.argument_spec()[option]["options"]
    assert sorted(spec) == sorted(documented)
    assert [name for name, item in spec.items() if item.get("no_log")] == ["secret_key", "session_token"]


def test_the_passphrase_is_no_log():
    assert bank_sync.argument_spec()["encryption_passphrase"]["no_log"] is True
    assert DOC["encryption_passphrase"]["type"] == FRAGMENT["encryption_passphrase"]["type"]


def test_the_module_docs_and_the_role_state_the_bounds_the_flow_checks():
    from ansible_collections.openstack_dr.bank.plugins.module_utils._inputs import LOCK_TIMEOUT, PARALLELISM  # pylint: disable=import-outside-toplevel
    tasks = yaml.safe_load((pathlib.Path(__file__).parents[4] / "roles" / "bank_sync" / "tasks" / "main.yml").read_text())
    role_bounds = {item["name"]: (item["min"], item["max"]) for task in tasks if task["name"].startswith("Check the numeric")
                   for item in task["loop"]}
    for option, bound in (("parallelism", PARALLELISM), ("lock_timeout", LOCK_TIMEOUT)):
        assert f"V({int(bound.minimum)}) to V({int(bound.maximum)})" in " ".join(DOC[option]["description"])
        assert role_bounds[f"bank_sync_{option}"] == (bound.minimum, bound.maximum)


def test_check_mode_creates_no_target_and_predicts_a_copy_into_an_empty_one(tmp_path):
    source = BackupStore(_bank_sync.open_bank({"type": "file", "path": str(tmp_path / "source"), "create": True}))
    backup_of(source, "db-1", "db", "2026-11-30T01:00:00Z")
    target = {"type": "file", "path": str(tmp_path / "target"), "create": True}
    params = {"source_bank": {"type": "file", "path": str(tmp_path / "source")}, "target_bank": target}
    predicted = _bank_sync.run_bank_sync(module(check_mode=True, **params))
    assert not (tmp_path / "target").exists()
    assert predicted["changed"] and predicted["bank_config"] == "copied" and [entry["name"] for entry in predicted["copied"]] == ["db-1"]
    assert predicted["target"].endswith("(to be created)")
    result = _bank_sync.run_bank_sync(module(**params))
    assert {key: result[key] for key in ("copied", "counts", "volumes")} == {key: predicted[key] for key in ("copied", "counts", "volumes")}
    absent = {**params, "target_bank": {"type": "file", "path": str(tmp_path / "none"), "create": False}}
    with pytest.raises(BankMissingError, match="does not exist"):
        _bank_sync.run_bank_sync(module(check_mode=True, **absent))
