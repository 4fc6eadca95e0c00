# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""volume_info: the volumes of a site, picked by name, id or metadata (what the backup role selects)."""

from __future__ import annotations

import typing as t

from ansible_collections.openstack_dr.bank.plugins.module_utils import _inputs as inputs
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack.connection import connect
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack.volumes import list_volumes, volume_result


def _selected(volume: t.Any, names_or_ids: list[str], metadata: dict[str, str]) -> bool:
    if names_or_ids and volume.id not in names_or_ids and volume.name not in names_or_ids:
        return False
    present = dict(volume.metadata or {})
    return all(key in present and str(present[key]) == value for key, value in metadata.items())


def run_volume_info(module) -> dict:
    params = module.params
    inputs.check_openstack_options(params)
    inputs.check_names(params["volumes"], "volumes")
    metadata = {str(key): str(value) for key, value in params["metadata"].items()}
    conn = connect(params)
    chosen = [volume_result(v) for v in list_volumes(conn) if _selected(v, params["volumes"], metadata)]
    chosen.sort(key=lambda v: (v["name"] or "", v["id"]))
    return {"changed": False, "volumes": chosen}
