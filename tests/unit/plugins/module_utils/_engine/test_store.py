# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Finding and listing backups: complete, in progress, failed, stalled or unreadable."""

from __future__ import annotations

import json
import os
import time

from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.documents import Progress, utc_now, utc_timestamp
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.layout import backup_id_for_name, progress_key
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.store import BackupStore
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.units import MIB

from .engine_helpers import backup, failed_backup
from .memory_bank import MemoryBank


def put_progress(bank, name: str, updated_at: str, status: str = "in_progress") -> None:
    backup_id = backup_id_for_name(name)
    progress = Progress(backup_id=backup_id, backup_name=name, status=status, started_at=updated_at, updated_at=updated_at)
    bank.put(progress_key(backup_id), progress.to_bytes())


def test_a_backup_whose_progress_stopped_long_ago_is_listed_as_stalled():
    bank = MemoryBank()
    store = BackupStore(bank)
    backup(store, "done", os.urandom(MIB))
    put_progress(bank, "running", utc_now())
    put_progress(bank, "killed", utc_timestamp(time.time() - 3600))
    put_progress(bank, "failed long ago", utc_timestamp(time.time() - 3600), status="failed")
    statuses = {listed.backup_name: listed.status for listed in store.list_backups()}
    assert statuses == {"done": "complete", "running": "in_progress", "killed": "stalled", "failed long ago": "failed"}


def test_list_filters_by_name_and_source_volume_newest_first():
    store = BackupStore(MemoryBank())
    backup(store, "a", os.urandom(2 * MIB), source={"volume": {"id": "v1", "name": "vol"}})
    backup(store, "b", os.urandom(MIB), source={"volume": {"id": "v2", "name": "other"}})
    assert [listed.backup_name for listed in store.list_backups(source_volume="vol")] == ["a"]
    assert [listed.backup_name for listed in store.list_backups(source_volume="v2")] == ["b"]
    assert store.list_backups(name="nope") == []
    listing = store.list_backups()
    assert [listed.created_at for listed in listing] == sorted((listed.created_at for listed in listing), reverse=True)


def test_a_failed_backup_is_listed_with_its_progress():
    store = BackupStore(MemoryBank())
    failed_backup(store, "cut", os.urandom(3 * MIB), fail_after=2 * MIB)
    (listed,) = store.list_backups()
    assert (listed.status, listed.manifest, listed.progress.bytes_total) == ("failed", None, 3 * MIB)
    assert "download was cut" in listed.progress.error


def test_progress_written_before_it_had_a_format_still_reads():
    bank = MemoryBank()
    backup_id = backup_id_for_name("old")
    bank.put(progress_key(backup_id), json.dumps({
        "backup_id": backup_id, "backup_name": "old", "status": "in_progress", "started_at": "2026-11-25T13:00:00Z",
        "updated_at": utc_now(), "bytes_done": 5, "bytes_total": 10, "source": {}}).encode())
    progress = BackupStore(bank).load_progress("old")
    assert (progress.backup_name, progress.status, progress.bytes_done) == ("old", "in_progress", 5)


def test_an_unreadable_or_newer_progress_is_listed_as_unreadable():
    bank = MemoryBank()
    bank.put(progress_key(backup_id_for_name("garbled")), b"{not json")
    bank.put(progress_key(backup_id_for_name("future")), json.dumps(
        {"format": "openstack_dr.bank/backup-progress", "format_version": 9, "status": "in_progress"}).encode())
    store = BackupStore(bank)
    assert store.load_progress("garbled").status == "unreadable"
    assert {listed.status for listed in store.list_backups()} == {"unreadable"}
    assert store.load_progress("never ran") is None


def test_a_backup_is_found_by_name_or_by_id():
    store = BackupStore(MemoryBank())
    dummy, manifest = backup(store, "by name", os.urandom(MIB))
    assert store.backup_id_for("by name") == manifest.backup_id == store.backup_id_for(manifest.backup_id)
    assert store.load_manifest(manifest.backup_id).backup_name == "by name"
