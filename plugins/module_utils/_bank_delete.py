# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""bank_delete: remove one backup's manifest, progress and the chunks no other backup uses; prune leftovers."""

from __future__ import annotations

from ansible_collections.openstack_dr.bank.plugins.module_utils._bank import open_bank
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine import retention
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.store import BackupStore
from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import InvalidInputError

# Results list at most this many keys; the counts cover everything.
_LISTED_KEYS = 1000


def _deletion_result(plan: retention.DeletionPlan) -> dict:
    return {"objects": len(plan.objects), "chunks": plan.chunks, "bytes": plan.object_bytes,
            "keys": plan.objects[:_LISTED_KEYS]}


def _prune_result(plan: retention.PrunePlan) -> dict:
    return {"objects": len(plan.objects), "chunks": plan.chunks, "progress_objects": plan.progress_objects,
            "bytes": plan.object_bytes, "keys": plan.objects[:_LISTED_KEYS]}


def run_bank_delete(module) -> dict:
    params = module.params
    if not params["backup"] and not params["prune"]:
        raise InvalidInputError("Give the backup to delete, prune=true, or both")
    if params["lock_timeout"] < 0:
        raise InvalidInputError(f"lock_timeout must be 0 or more seconds, got {params['lock_timeout']}")
    store = BackupStore(open_bank(params["bank"]), params["encryption_passphrase"])
    result: dict = {"changed": False}
    deleted_keys: set[str] = set()
    if params["backup"]:
        deletion = retention.delete_backup(store, params["backup"], check_mode=module.check_mode,
                                           lock_wait_timeout=params["lock_timeout"])
        result["changed"] = deletion.exists
        deleted_keys = set(deletion.objects)
        result["backup"] = {"id": deletion.backup_id, "name": deletion.backup_name}
        result["deleted"] = _deletion_result(deletion)
    if params["prune"]:
        # After the deletion, so the chunks of a deleted incomplete backup go too; in check mode the
        # deletion only planned, so what it would remove is not counted twice.
        pruning = retention.prune(store, check_mode=module.check_mode, lock_wait_timeout=params["lock_timeout"],
                                  excluding=deleted_keys)
        result["changed"] = result["changed"] or bool(pruning.objects)
        result["pruned"] = _prune_result(pruning)
    return result
