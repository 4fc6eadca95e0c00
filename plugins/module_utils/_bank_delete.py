# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""bank_delete: remove one backup's manifest and progress at once; prune the chunks no complete backup references."""

from __future__ import annotations

from ansible_collections.openstack_dr.bank.plugins.module_utils import _inputs as inputs
from ansible_collections.openstack_dr.bank.plugins.module_utils._bank import open_bank
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine import retention
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.store import BackupStore
from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import InvalidInputError


def _deletion_result(plan: retention.DeletionPlan) -> dict:
    return {"objects": len(plan.objects), "chunks": plan.chunks, "chunks_referenced": plan.chunks_referenced,
            "bytes": plan.object_bytes, "keys": plan.objects[:retention.LISTED_KEYS], "protected_until": plan.protected_until}


def _prune_result(plan: retention.PrunePlan) -> dict:
    return {"objects": plan.objects, "chunks": plan.chunks, "progress_objects": plan.progress_objects,
            "referenced_chunks": plan.referenced_chunks, "bytes": plan.object_bytes, "keys": plan.keys,
            "old_versions": plan.old_versions, "locked_versions": plan.locked_versions, "locked_until": plan.locked_until,
            "suspect_keys": plan.suspect_keys}


def run_bank_delete(module) -> dict:
    params = module.params
    names = [params["backup"]] if params["backup"] else list(params.get("backups") or [])
    if not names and not params["prune"]:
        raise InvalidInputError("Give the backup to delete, prune=true, or both")
    inputs.check_backup_reference(params["backup"], optional=True)
    inputs.check_names(params.get("backups"), "backups")
    inputs.check_number("lock_timeout", params["lock_timeout"], inputs.LOCK_TIMEOUT)
    inputs.check_passphrase(params)
    store = BackupStore(open_bank(params["bank"]), params["encryption_passphrase"])
    if store.bank.write_only:
        raise InvalidInputError("bank_delete deletes, and O(bank.write_only) says these credentials may not: run it with the "
                                "bank's privileged credentials (docs/runbook.md, immutable banks)", option="bank.write_only")
    store.check_access()
    result: dict = {"changed": False}
    deleted_keys: set[str] = set()
    deletions = []
    for name in names:
        deletion = retention.delete_backup(store, name, check_mode=module.check_mode, lock_wait_timeout=params["lock_timeout"])
        result["changed"] = result["changed"] or deletion.exists
        deleted_keys.update(deletion.objects)
        deletions.append(dict(_deletion_result(deletion), id=deletion.backup_id, name=deletion.backup_name))
    if params["backup"]:
        result["backup"] = {"id": deletions[0].pop("id"), "name": deletions[0].pop("name")}
        result["deleted"] = deletions[0]
    elif params.get("backups") is not None:
        result["backups"] = deletions
    if params["prune"]:
        # After the deletion, so the chunks only the deleted backup used go too; in check mode the
        # deletion only planned, so its objects count as gone and are not counted twice.
        pruning = retention.prune(store, check_mode=module.check_mode, lock_wait_timeout=params["lock_timeout"],
                                  excluding=deleted_keys)
        result["changed"] = result["changed"] or bool(pruning.objects)
        result["pruned"] = _prune_result(pruning)
    return result
