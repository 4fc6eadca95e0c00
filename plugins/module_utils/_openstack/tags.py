# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The metadata (Cinder) and properties (Glance) that mark a temporary, so a crashed run's leftovers are findable."""

from __future__ import annotations

import typing as t
import uuid

DEFAULT_PREFIX = "dr-bank-tmp-"
TAG_RUN = "openstack_dr_bank_run"
TAG_BACKUP = "openstack_dr_bank_backup"
TAG_SOURCE_VOLUME = "openstack_dr_bank_source_volume"
TAG_TEMPORARY = "openstack_dr_bank_temporary"
TAG_KEYS = (TAG_RUN, TAG_BACKUP, TAG_SOURCE_VOLUME, TAG_TEMPORARY)
# Volumes a restore made carry this key with the backup id: a rerun recognises them.
RESTORED_FROM_TAG = "openstack_dr_bank_restored_from"
# Set (to the UTC time) as a restore's last step, before its temporary tags go: only a volume carrying
# it is "already restored", and the cleanup tools never remove a volume that carries it.
RESTORE_COMPLETE_TAG = "openstack_dr_bank_restore_complete"
# Set on a restore image that Glance cannot delete because the restored volume is its copy-on-write
# clone (Ceph): the image's life is then the volume's, and cleanup removes it once the volume is gone.
PARENT_OF_TAG = "openstack_dr_bank_parent_of"
# Volumes a DR drill restores carry this key with the drill's run id; they go when the drill is over.
DRILL_TAG = "openstack_dr_bank_drill"
# Cinder metadata and Glance property values are limited to 255 characters.
MAX_VALUE_LENGTH = 255


def new_run_id() -> str:
    return uuid.uuid4().hex


def temporary_tags(run_id: str, backup: str | None, source_volume_id: str | None) -> dict[str, str]:
    """The metadata/properties every temporary carries."""
    tags = {TAG_TEMPORARY: "true", TAG_RUN: run_id}
    if backup:
        tags[TAG_BACKUP] = str(backup)[:MAX_VALUE_LENGTH]
    if source_volume_id:
        tags[TAG_SOURCE_VOLUME] = str(source_volume_id)
    return tags


def is_temporary(tags: t.Mapping[str, t.Any] | None, run_id: str | None = None) -> bool:
    """True when metadata/properties mark a temporary (of `run_id` when given)."""
    if not tags or str(tags.get(TAG_TEMPORARY, "")).lower() != "true":
        return False
    return run_id is None or tags.get(TAG_RUN) == run_id


def image_properties(image: t.Any) -> dict[str, t.Any]:
    """Custom properties of an SDK image (they land in `.properties`; plain dicts also accepted)."""
    if isinstance(image, dict):
        props = dict(image.get("properties") or {})
        props.update({k: v for k, v in image.items() if k.startswith("openstack_dr_bank_")})
        return props
    return dict(getattr(image, "properties", None) or {})


def carries_tag(resource: t.Any, key: str, value: str | None = None) -> bool:
    """True when the resource's metadata has `key` (equal to `value` when given): idempotency checks."""
    metadata = dict(getattr(resource, "metadata", None) or {})
    if key not in metadata:
        return False
    return value is None or str(metadata[key]) == str(value)
