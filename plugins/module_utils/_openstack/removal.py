# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Remove one image, volume or snapshot and wait until it is gone, all within one deadline."""

from __future__ import annotations

import time
import typing as t

from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import ImageInUseError, OpenStackError
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack._sdk import api_errors, status_code
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack.waiters import (
    SNAPSHOT_DELETABLE_STATUSES,
    VOLUME_DELETABLE_STATUSES,
    Deadline,
    wait_deletable,
    wait_gone,
)

Remover = t.Callable[[t.Any, str, Deadline], None]


def _delete(kind: str, resource_id: str, delete: t.Callable[..., t.Any], deadline: Deadline,
            sleep: t.Callable[[float], None] = time.sleep) -> None:
    """Send the delete, retrying a 409 or 5xx until the deadline.

    An aborted image upload can still hold Glance's row for a moment (a 500 on SQLite, a 409
    elsewhere): the removal must not give up on the first refusal.
    """
    delay = 1.0
    while True:
        try:
            delete(resource_id, ignore_missing=True)
            return
        except api_errors() as error:
            code = status_code(error)
            if kind == "image" and code == 409 and _used_by_store(error):
                # Not transient: the image is the parent of a volume cloned from it (Ceph), for that volume's life.
                raise ImageInUseError(f"Glance cannot delete image {resource_id}: {error}", resource_type=kind,
                                      resource_id=resource_id) from error
            transient = code == 409 or (code is not None and code >= 500)
            if not transient or deadline.remaining() < delay:
                raise OpenStackError(f"Failed to delete {kind} {resource_id}: {error}", resource_type=kind, resource_id=resource_id) from error
        sleep(delay)
        delay = min(delay * 2, 10.0)


def _used_by_store(error: BaseException) -> bool:
    """Glance's InUseByStore: "The image cannot be deleted because it is in use through the backend store"."""
    return "in use through the backend store" in str(error).lower()


def remove_image(conn: t.Any, image_id: str, deadline: Deadline) -> None:
    _delete("image", image_id, conn.image.delete_image, deadline)
    wait_gone("image", image_id, conn.image.get_image, deadline)


def remove_volume(conn: t.Any, volume_id: str, deadline: Deadline) -> None:
    """Waits until the volume leaves creating/downloading/uploading, then deletes it."""
    if wait_deletable("volume", volume_id, conn.block_storage.get_volume, VOLUME_DELETABLE_STATUSES, deadline):
        _delete("volume", volume_id, conn.block_storage.delete_volume, deadline)
        wait_gone("volume", volume_id, conn.block_storage.get_volume, deadline)


def remove_snapshot(conn: t.Any, snapshot_id: str, deadline: Deadline) -> None:
    if wait_deletable("snapshot", snapshot_id, conn.block_storage.get_snapshot, SNAPSHOT_DELETABLE_STATUSES, deadline):
        _delete("snapshot", snapshot_id, conn.block_storage.delete_snapshot, deadline)
        wait_gone("snapshot", snapshot_id, conn.block_storage.get_snapshot, deadline)


# Only for leftovers found by listing a site, whose type is data; a run registers its removals directly.
REMOVER_OF_FOUND_TYPE: dict[str, Remover] = {"image": remove_image, "volume": remove_volume, "snapshot": remove_snapshot}
