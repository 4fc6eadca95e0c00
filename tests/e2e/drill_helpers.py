# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared by the drill and AWX tests: a small volume of known data at site A, and the bank's backups."""

from __future__ import annotations

import io
import os
import random
import typing as t

from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack.temporaries import parent_images, remove_found

from devcloud_fixtures import wait_for_gone, wait_for_status  # pylint: disable=wrong-import-order

MIB = 1024 * 1024
STEP_TIMEOUT = 600


def create_small_volume(conn: t.Any, name: str, data_mib: int = 8) -> t.Any:
    """A 1 GiB volume (the smallest Cinder makes) holding ``data_mib`` MiB of random data, then zeros."""
    payload = random.Random(name).randbytes(data_mib * MIB)
    image = conn.image.create_image(name=f"{name}-seed", disk_format="raw", container_format="bare", visibility="private")
    try:
        # A sized upload: Glance under uWSGI refuses large chunks of a chunked one.
        response = conn.image.put(f"/images/{image.id}/file", data=io.BytesIO(payload),
                                  headers={"Content-Type": "application/octet-stream", "Content-Length": str(len(payload))})
        response.raise_for_status()
        wait_for_status(lambda: conn.image.get_image(image.id), "active", STEP_TIMEOUT, "seed image", failures=("killed", "deleted"))
        volume = conn.block_storage.create_volume(name=name, size=1, image_id=image.id)
        return wait_for_status(lambda: conn.block_storage.get_volume(volume.id), "available", STEP_TIMEOUT, f"volume {name}")
    finally:
        conn.image.delete_image(image.id, ignore_missing=True)


def delete_volume(conn: t.Any, volume_id: str) -> None:
    conn.block_storage.delete_volume(volume_id, ignore_missing=True)
    wait_for_gone(lambda: conn.block_storage.get_volume(volume_id), STEP_TIMEOUT, f"volume {volume_id}")
    # A raw restore on Ceph keeps its image as the volume's parent: it can go now, as the cleanup role does.
    left = remove_found(conn, parent_images(conn, {volume_id}), STEP_TIMEOUT)["left_behind"]
    assert left == [], left


def drill_volumes(conn: t.Any, run_id: str | None = None) -> list[t.Any]:
    """Volumes a drill restored (marked openstack_dr_bank_drill), of one run or of any."""
    return [volume for volume in conn.block_storage.volumes()
            if "openstack_dr_bank_drill" in (volume.metadata or {})
            and (run_id is None or volume.metadata["openstack_dr_bank_drill"] == run_id)]


def bank_backup_names(bank: dict, passphrase: str | None) -> set[str]:
    from ansible_collections.openstack_dr.bank.plugins.module_utils._bank import open_bank  # pylint: disable=import-outside-toplevel
    from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.store import BackupStore  # pylint: disable=import-outside-toplevel

    with open_bank(dict(bank, create=False)) as opened:
        return {str(entry.backup_name) for entry in BackupStore(opened, passphrase=passphrase).list_backups()}


def unique(prefix: str) -> str:
    return f"{prefix}-{os.urandom(4).hex()}"
