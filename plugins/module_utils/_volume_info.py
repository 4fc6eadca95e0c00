# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""volume_info: the volumes of a site, picked by name, id or metadata (what the backup role selects)."""

from __future__ import annotations

import typing as t

from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack._sdk import call
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack.connection import connect, openstack_argument_spec

FIELDS = ("id", "name", "size", "status", "volume_type", "availability_zone", "is_bootable", "metadata", "created_at")


def argument_spec() -> dict:
    spec = openstack_argument_spec()
    spec.update(
        volumes=dict(type="list", elements="str", default=[]),
        metadata=dict(type="dict", default={}),
    )
    return spec


def _selected(volume: t.Any, names_or_ids: list[str], metadata: dict[str, str]) -> bool:
    if names_or_ids and volume.id not in names_or_ids and volume.name not in names_or_ids:
        return False
    present = dict(volume.metadata or {})
    return all(key in present and str(present[key]) == value for key, value in metadata.items())


def describe(volume: t.Any) -> dict[str, t.Any]:
    described = {field: getattr(volume, field, None) for field in FIELDS}
    described["metadata"] = dict(described["metadata"] or {})
    return described


def run_volume_info(module) -> dict:
    params = module.params
    metadata = {str(key): str(value) for key, value in params["metadata"].items()}
    conn = connect(params)
    # Filtered client-side: Cinder refuses name and metadata filters unless its resource_filters allow them.
    volumes = call("list volumes", lambda: list(conn.block_storage.volumes(details=True)))
    chosen = [describe(v) for v in volumes if _selected(v, params["volumes"], metadata)]
    chosen.sort(key=lambda v: (v["name"] or "", v["id"]))
    return {"changed": False, "volumes": chosen}
