# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""volume_glance_restore, top to bottom.

find the backup -> check the name is free -> private image -> stream the
verified chunks into it -> volume from the image -> restore the bootable flag
and image metadata -> remove the image. A failed restore removes its image
and its half-made volume; both are tagged so a crash leaves them findable.
"""

from __future__ import annotations

import time

from ansible_collections.openstack_dr.bank.plugins.module_utils._bank import open_bank
from ansible_collections.openstack_dr.bank.plugins.module_utils._bank.options import bank_argument_spec
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.store import BackupStore
from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import InvalidInputError
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack._sdk import call
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack.connection import (
    connect,
    data_step_timeout,
    openstack_argument_spec,
)
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack.restore_steps import (
    create_restore_image,
    create_volume_from_image,
    find_volumes_by_name,
    resolve_volume_type,
    set_volume_bootable,
    set_volume_image_metadata,
    upload_image_data,
    volume_carries_tag,
)
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack.temporaries import (
    DEFAULT_PREFIX,
    TAG_KEYS,
    TemporaryResources,
)

GIB = 1024 ** 3
RESTORED_FROM_TAG = "openstack_dr_bank_restored_from"


def argument_spec() -> dict:
    spec = openstack_argument_spec()
    spec.update(bank_argument_spec())
    spec.update(
        backup=dict(type="str", required=True),
        restore_name=dict(type="str", required=True),
        description=dict(type="str"),
        volume_type=dict(type="str"),
        availability_zone=dict(type="str"),
        size=dict(type="int"),
        metadata=dict(type="dict", default={}),
        parallelism=dict(type="int", default=4),
        temporary_prefix=dict(type="str", default=DEFAULT_PREFIX),
    )
    return spec


def volume_result(volume) -> dict:
    """The volume as openstack.cloud returns volumes."""
    return volume.to_dict(computed=False)


def run_volume_restore(module) -> dict:
    params = module.params
    store = BackupStore(open_bank(dict(params["bank"], create=False)), params["encryption_passphrase"])
    store.check_access()
    manifest = store.load_manifest(params["backup"])
    if manifest is None:
        progress = store.load_progress(params["backup"])
        state = f" (it is {progress.get('status')}, not complete)" if progress else ""
        raise InvalidInputError(f"No complete backup {params['backup']!r} in the bank {store.bank.description}{state}")
    source_volume = manifest.source.get("volume") or {}
    minimum_size = max(int(source_volume.get("size") or 0), -(-manifest.size // GIB), 1)
    size = params["size"] if params["size"] is not None else minimum_size
    if size < minimum_size:
        raise InvalidInputError(f"size {size} GiB is smaller than the backup, which needs {minimum_size} GiB")

    conn = connect(params)
    restore_name = params["restore_name"]
    for volume in find_volumes_by_name(conn, restore_name):
        if volume_carries_tag(volume, RESTORED_FROM_TAG, manifest.backup_id):
            return {"changed": False, "volume": volume_result(volume), "image_id": None, "backup": _backup_brief(manifest),
                    "volume_type_reason": "already restored", "stats": {}}
        raise InvalidInputError(
            f"A volume named {restore_name!r} ({volume.id}) already exists and was not restored from backup "
            f"{manifest.backup_name!r}; choose another restore_name. Nothing was changed.", volume=volume.id)
    volume_type, type_reason = resolve_volume_type(conn, params["volume_type"], source_volume.get("volume_type"))
    metadata = {key: str(value) for key, value in (source_volume.get("metadata") or {}).items() if key not in TAG_KEYS}
    metadata.update({key: str(value) for key, value in params["metadata"].items()})
    metadata[RESTORED_FROM_TAG] = manifest.backup_id
    if module.check_mode:
        return {"changed": True, "volume": {"name": restore_name, "size": size, "volume_type": volume_type,
                                            "availability_zone": params["availability_zone"], "metadata": metadata},
                "image_id": None, "backup": _backup_brief(manifest), "volume_type_reason": type_reason, "stats": {}}

    step_timeout = data_step_timeout(params["timeout"], size)
    phases = {}
    temporaries = TemporaryResources(conn, backup=manifest.backup_name, source_volume_id=source_volume.get("id"),
                                     prefix=params["temporary_prefix"], removal_timeout=params["timeout"])
    with temporaries:
        started = time.monotonic()
        image = create_restore_image(conn, temporaries.name("image"), manifest.size, min_disk=size, tags=temporaries.tags)
        temporaries.record("image", image.id, image.name)
        with store.open_backup(manifest.backup_id, parallelism=params["parallelism"]) as reader:
            upload_image_data(conn, image, reader, manifest.size, timeout=step_timeout)
        phases["upload_image"] = round(time.monotonic() - started, 3)
        started = time.monotonic()
        # Tagged as temporary until it is complete, so a crash mid-way leaves a findable volume.
        volume = create_volume_from_image(
            conn, restore_name, size, image, volume_type=volume_type, availability_zone=params["availability_zone"],
            metadata=dict(metadata, **temporaries.tags), description=params["description"], timeout=step_timeout)
        temporaries.record("volume", volume.id, volume.name)
        phases["create_volume"] = round(time.monotonic() - started, 3)
        if source_volume.get("bootable"):
            set_volume_bootable(conn, volume, True)
        image_metadata = set_volume_image_metadata(conn, volume, source_volume.get("volume_image_metadata"))
        call(f"remove temporary tags from volume {volume.id}", conn.block_storage.delete_volume_metadata,
             volume, keys=list(temporaries.tags))
        temporaries.forget("volume", volume.id)
        started = time.monotonic()
        temporaries.remove("image", image.id)
        phases["remove_image"] = round(time.monotonic() - started, 3)
    volume = call(f"get volume {volume.id}", conn.block_storage.get_volume, volume.id)
    seconds = sum(phases.values())
    return {
        "changed": True,
        "volume": volume_result(volume),
        "image_id": image.id,
        "backup": _backup_brief(manifest),
        "volume_type_reason": type_reason,
        "image_metadata": image_metadata,
        "stats": {"bytes": manifest.size, "seconds": round(seconds, 3), "seconds_per_phase": phases,
                  "mib_per_second": round(manifest.size / 1048576 / phases["upload_image"], 1) if phases["upload_image"] else None},
    }


def _backup_brief(manifest) -> dict:
    return {"id": manifest.backup_id, "name": manifest.backup_name, "created_at": manifest.created_at,
            "size": manifest.size, "source_volume": (manifest.source.get("volume") or {}).get("id")}
