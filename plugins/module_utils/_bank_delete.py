# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""bank_delete: remove one backup's manifest, progress and the chunks no other backup uses."""

from __future__ import annotations

from ansible_collections.openstack_dr.bank.plugins.module_utils._bank import open_bank
from ansible_collections.openstack_dr.bank.plugins.module_utils._bank.options import bank_argument_spec
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.store import BackupStore


def argument_spec() -> dict:
    spec = bank_argument_spec()
    spec.update(
        backup=dict(type="str", required=True),
        lock_timeout=dict(type="int", default=600),
    )
    return spec


def run_bank_delete(module) -> dict:
    params = module.params
    store = BackupStore(open_bank(params["bank"]), params["encryption_passphrase"])
    plan = store.delete_backup(params["backup"], check_mode=module.check_mode, lock_wait_timeout=params["lock_timeout"])
    return {
        "changed": plan["exists"],
        "backup": {"id": plan["backup_id"], "name": plan.get("backup_name")},
        "deleted": {"objects": len(plan["objects"]), "chunks": plan["chunks"], "bytes": plan["bytes"],
                    "keys": plan["objects"][:1000]},
    }
