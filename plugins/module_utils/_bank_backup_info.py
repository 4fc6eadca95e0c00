# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""bank_backup_info: list the backups of a bank, complete or in progress, and verify them."""

from __future__ import annotations

from ansible_collections.openstack_dr.bank.plugins.module_utils._bank import open_bank
from ansible_collections.openstack_dr.bank.plugins.module_utils._bank.options import bank_argument_spec
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.store import BackupStore
from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import InvalidInputError
from ansible_collections.openstack_dr.bank.plugins.module_utils._manifest import source_summary


def argument_spec() -> dict:
    spec = bank_argument_spec()
    spec.update(
        backup=dict(type="str"),
        source_volume=dict(type="str"),
        verify=dict(type="str", default="none", choices=["none", "presence", "data"]),
        verify_percent=dict(type="float", default=100.0),
    )
    return spec


def _listing_entry(entry: dict) -> dict:
    listed = {
        "id": entry.get("backup_id"),
        "name": entry.get("backup_name"),
        "status": entry.get("status"),
        "description": entry.get("description"),
        "created_at": entry.get("created_at") or entry.get("started_at"),
        "completed_at": entry.get("completed_at"),
        "updated_at": entry.get("updated_at") or entry.get("completed_at"),
        "size": entry.get("size", entry.get("bytes_total")),
        "bytes_done": entry.get("size") if entry.get("status") == "complete" else entry.get("bytes_done"),
        "bytes_total": entry.get("size", entry.get("bytes_total")),
        **source_summary(entry.get("source") or {}),
        "hashes": entry.get("hashes"),
        "stats": entry.get("stats"),
    }
    if entry.get("error"):
        listed["error"] = entry["error"]
    return listed


def run_bank_backup_info(module) -> dict:
    params = module.params
    if not 0 < params["verify_percent"] <= 100:
        raise InvalidInputError(f"verify_percent must be above 0 and at most 100, got {params['verify_percent']}")
    store = BackupStore(open_bank(dict(params["bank"], create=False)), params["encryption_passphrase"])
    name = params["backup"]
    entries = store.list_backups(source_volume=params["source_volume"])
    if name is not None:
        wanted_id = store.backup_id_for(name)
        entries = [entry for entry in entries if name in (entry.get("backup_name"), entry.get("backup_id"))
                   or entry.get("backup_id") == wanted_id]
    backups = [_listing_entry(entry) for entry in entries]
    if params["verify"] != "none":
        for listed in backups:
            if listed["status"] == "complete":
                listed["verification"] = store.verify_backup(listed["id"], params["verify"], params["verify_percent"])
    return {"changed": False, "backups": backups}
