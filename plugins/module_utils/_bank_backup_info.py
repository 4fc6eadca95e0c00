# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""bank_backup_info: list the backups of a bank, complete or in progress, and verify them."""

from __future__ import annotations

from ansible_collections.openstack_dr.bank.plugins.module_utils import _inputs as inputs
from ansible_collections.openstack_dr.bank.plugins.module_utils._bank import open_bank
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.store import BackupStore, ListedBackup
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.verify import verify_backup
from ansible_collections.openstack_dr.bank.plugins.module_utils._manifest import backup_summary, source_summary


def _listing_entry(listed: ListedBackup) -> dict:
    """A complete backup as every module shows one, with the listing's status and progress fields."""
    if listed.manifest is not None:
        summary = backup_summary(listed.manifest)
        return dict(summary, status=listed.status, updated_at=summary["completed_at"], bytes_done=summary["size"],
                    bytes_total=summary["size"], stats=listed.manifest.stats or None)
    progress = listed.progress
    entry = {
        "id": listed.backup_id,
        "name": progress.backup_name,
        "description": None,
        "created_at": progress.started_at,
        "completed_at": None,
        "protected_until": None,
        "size": progress.bytes_total,
        "stored_bytes": None,
        "hashes": None,
        **source_summary(progress.source),
        "status": listed.status,
        "updated_at": progress.updated_at,
        "bytes_done": progress.bytes_done,
        "bytes_total": progress.bytes_total,
        "stats": None,
    }
    if progress.error:
        entry["error"] = progress.error
    return entry


def run_bank_backup_info(module) -> dict:
    params = module.params
    inputs.check_backup_reference(params["backup"], optional=True)
    inputs.check_text("source_volume", params["source_volume"], max_chars=inputs.CINDER_MAX_CHARS, optional=True)
    inputs.check_number("verify_percent", params["verify_percent"], inputs.VERIFY_PERCENT)
    inputs.check_passphrase(params)
    store = BackupStore(open_bank(params["bank"], read_only=True), params["encryption_passphrase"])
    if params["encryption_passphrase"] is not None:
        store.check_access()  # a passphrase for an unencrypted bank, or a wrong one, is refused
    name = params["backup"]
    listing = store.list_backups(source_volume=params["source_volume"])
    if name is not None:
        wanted_id = store.backup_id_for(name)
        listing = [listed for listed in listing if name in (listed.backup_name, listed.backup_id)
                   or listed.backup_id == wanted_id]
    backups = [_listing_entry(listed) for listed in listing]
    if params["verify"] != "none":
        for entry in backups:
            if entry["status"] == "complete":
                entry["verification"] = verify_backup(store, entry["id"], params["verify"], params["verify_percent"]).as_dict()
    return {"changed": False, "backups": backups}
