# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""temporaries_cleanup: find the tagged temporaries a crashed run left at a site, and remove them."""

from __future__ import annotations

import typing as t

from ansible_collections.openstack_dr.bank.plugins.module_utils import _inputs as inputs
from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import OpenStackError
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack.connection import checked_timeout, connect
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack.tags import DRILL_TAG, MAX_VALUE_LENGTH
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack.temporaries import (
    find_orphaned_temporaries,
    list_images,
    parent_images,
    remove_found,
)
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack.volumes import list_volumes


def _drill_volumes(volumes: list[t.Any], drill_run_id: str) -> list[dict[str, t.Any]]:
    return [{"type": "volume", "id": v.id, "name": v.name, "status": v.status, "run": drill_run_id,
             "backup": None, "source_volume": None}
            for v in volumes if str((v.metadata or {}).get(DRILL_TAG, "")) == drill_run_id]


def _matches(item: t.Mapping[str, t.Any], backups: list[str], source_volumes: list[str]) -> bool:
    if backups and item.get("backup") not in backups:
        return False
    return not source_volumes or item.get("source_volume") in source_volumes


def run_temporaries_cleanup(module) -> dict:
    params = module.params
    inputs.check_openstack_options(params)
    inputs.check_number("older_than", params["older_than"], inputs.OLDER_THAN, optional=True)
    inputs.check_names(params["backups"], "backups")
    inputs.check_names(params["source_volumes"], "source_volumes")
    inputs.check_text("run_id", params["run_id"], max_chars=inputs.CINDER_MAX_CHARS, optional=True)
    inputs.check_text("drill_run_id", params["drill_run_id"], max_chars=inputs.CINDER_MAX_CHARS, optional=True)
    removal_timeout = checked_timeout(params["timeout"])
    conn = connect(params)
    # Each kind is listed once per run: a drill's cleanup reads the images and volumes a second time otherwise.
    images, volumes = list_images(conn), list_volumes(conn)
    found = find_orphaned_temporaries(conn, run_id=params["run_id"], older_than=params["older_than"], images=images, volumes=volumes)
    # Backup tags are cut to 255 characters when the temporary is tagged: compare the same way.
    backups = [name[:MAX_VALUE_LENGTH] for name in params["backups"]]
    orphans = [item for item in found if _matches(item, backups, params["source_volumes"])]
    if params["drill_run_id"]:
        known = {item["id"] for item in orphans}
        drill_volumes = [item for item in _drill_volumes(volumes, params["drill_run_id"]) if item["id"] not in known]
        # Removal order: images, then volumes, then snapshots; a volume cloned from its restore image
        # (Ceph) goes before that image.
        orphan_images = [item for item in orphans if item["type"] == "image"]
        parents = parent_images(conn, {item["id"] for item in drill_volumes}, images=images)
        orphans = orphan_images + drill_volumes + parents + [item for item in orphans if item["type"] != "image"]
    if module.check_mode or not orphans:
        return {"changed": bool(orphans), "found": orphans, "removed": [], "left_behind": []}
    report = remove_found(conn, orphans, removal_timeout)
    if report["left_behind"]:
        raise OpenStackError(
            "Could not remove every temporary: " + ", ".join(
                f"{item['type']} {item['id']} ({item.get('error')})" for item in report["left_behind"]),
            found=orphans, removed=report["removed"], left_behind=report["left_behind"],
        )
    return {"changed": bool(report["removed"]), "found": orphans, "removed": report["removed"], "left_behind": []}
