# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Volumes: listed in one place, found by name or id, described for the manifest and for results."""

from __future__ import annotations

import typing as t

from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import InvalidInputError, OpenStackError
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack._sdk import api_errors, call, is_not_found, status_code
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack.connection import cloud_location
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack.tags import TAG_KEYS

# Statuses in which a volume's data can be read: attached or not.
USABLE_VOLUME_STATUSES = frozenset({"available", "in-use"})


def list_volumes(conn: t.Any) -> list[t.Any]:
    """Every volume of the project, with details.

    Filtered by callers, client-side: Cinder refuses name and metadata filters unless its
    resource_filters allow them, and a DR tool cannot depend on a site's policy file.
    """
    return call("list volumes", lambda: list(conn.block_storage.volumes(details=True)))


def volumes_named(conn: t.Any, name: str) -> list[t.Any]:
    """Every volume named exactly `name` (names are not unique in Cinder)."""
    return [volume for volume in list_volumes(conn) if volume.name == name]


def get_volume(conn: t.Any, volume_id: str) -> t.Any:
    return call(f"get volume {volume_id}", conn.block_storage.get_volume, volume_id)


def find_volume(conn: t.Any, name_or_id: str) -> t.Any:
    """The volume named or identified by `name_or_id`, in a status whose data can be copied.

    Raises InvalidInputError when unknown, ambiguous or in an unusable status (error, creating...).
    """
    if not name_or_id:
        raise InvalidInputError("No volume given")
    volume = None
    try:
        volume = conn.block_storage.get_volume(name_or_id)
    except api_errors() as error:
        # Cinder answers 404 for an unknown id and 400 ("Malformed request url") for a non-id.
        if not (is_not_found(error) or status_code(error) == 400):
            raise OpenStackError(f"Failed to look up volume {name_or_id!r}: {error}") from error
    if volume is None:
        volume = _the_one_named(conn, name_or_id)
    if volume.status not in USABLE_VOLUME_STATUSES:
        raise InvalidInputError(
            f"Volume {volume.name or ''} ({volume.id}) is in status {volume.status!r}; only available or in-use volumes can be backed up",
            volume=volume.id, status=volume.status,
        )
    return volume


def _the_one_named(conn: t.Any, name: str) -> t.Any:
    named = volumes_named(conn, name)
    if len(named) > 1:
        raise InvalidInputError(
            f"Volume name {name!r} is ambiguous: {len(named)} volumes carry it ({', '.join(v.id for v in named)}); give the volume id",
            volume=name,
        )
    if not named:
        raise InvalidInputError(f"Volume {name!r} not found", volume=name)
    return named[0]


def describe_volume(conn: t.Any, volume: t.Any) -> dict[str, t.Any]:
    """Plain dict of everything a restore at another site needs (for the manifest)."""
    location = cloud_location(conn)
    image_metadata = dict(getattr(volume, "volume_image_metadata", None) or {})
    return {
        "id": volume.id,
        "name": volume.name,
        "size": volume.size,
        # Cinder's `volume_type` field carries the type NAME, which is what another site can match.
        "volume_type": volume.volume_type,
        "bootable": _as_bool(volume.is_bootable),
        "multiattach": _as_bool(getattr(volume, "is_multiattach", False)),
        "availability_zone": volume.availability_zone,
        "metadata": {k: v for k, v in dict(volume.metadata or {}).items() if k not in TAG_KEYS},
        # Our own tags would leak from a temporary image into a restored volume otherwise.
        "volume_image_metadata": {k: v for k, v in image_metadata.items() if k not in TAG_KEYS},
        "status": volume.status,
        "description": volume.description,
        "cloud": location["cloud"],
        "region": location["region"],
    }


def volume_result(volume: t.Any) -> dict[str, t.Any]:
    """A volume in a module result: as openstack.cloud returns volumes."""
    if hasattr(volume, "to_dict"):
        return volume.to_dict(computed=False)
    return dict(vars(volume))


def _as_bool(value: t.Any) -> bool:
    if isinstance(value, str):
        return value.lower() == "true"
    return bool(value)
