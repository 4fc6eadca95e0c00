# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""volume_glance_restore, top to bottom.

find the complete backup -> its size -> already restored? -> volume type and metadata ->
check-mode plan -> private image fed with the verified chunks (raw, or a qcow2 that carries only
the clusters holding data) -> volume from the image -> bootable flag, image metadata, tags ->
remove the image -> result. The image and the half-made volume are registered as temporaries the
moment their create call returns, so a failure, a timeout or SIGTERM removes them.
"""

from __future__ import annotations

import dataclasses
import typing as t

from ansible_collections.openstack_dr.bank.plugins.module_utils._bank import open_bank
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.store import BackupStore
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.units import GIB, MIB
from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import InvalidInputError
from ansible_collections.openstack_dr.bank.plugins.module_utils._imageformats.qcow2_writer import PiecesReader, Qcow2Writer, file_pieces
from ansible_collections.openstack_dr.bank.plugins.module_utils._manifest import backup_summary
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack.connection import checked_timeout, connect, data_step_timeout
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack.restore_steps import (
    create_restore_image,
    create_volume_from_image,
    remove_volume_metadata,
    resolve_volume_type,
    set_volume_bootable,
    set_volume_image_metadata,
    upload_image_data,
)
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack.tags import RESTORED_FROM_TAG, TAG_KEYS, TAG_TEMPORARY, carries_tag
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack.temporaries import Temporaries
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack.transfer_format import (
    RAW,
    TransferFormat,
    choose_transfer_format,
    glance_disk_formats,
)
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack.volumes import get_volume, volume_result, volumes_named
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack.waiters import Deadline
from ansible_collections.openstack_dr.bank.plugins.module_utils._phases import PhaseTimer

# Cinder downloads the whole image into its conversion directory before writing the volume: a
# qcow2 without the zero clusters is about half the 4 GiB test volume (27-30 s against 40-50 s raw).
RESTORE_FORMAT_PREFERENCE = ("qcow2",)
# qemu's default cluster: zero runs of 64 KiB inside non-zero chunks are left out of the image too.
QCOW2_CLUSTER_SIZE = 65536


def run_volume_restore(module: t.Any) -> dict:
    params = module.params
    checked_timeout(params["timeout"])
    phases = PhaseTimer()
    with phases("prepare"):
        store = BackupStore(open_bank(dict(params["bank"], create=False)), params["encryption_passphrase"])
        store.check_access()
        manifest = complete_backup(store, params["backup"])
        size = restore_size(manifest, params["size"])
        conn = connect(params)
        existing = already_restored(conn, params["restore_name"], manifest)
        if existing is not None:
            return {"changed": False, "volume": volume_result(existing), "image_id": None, "backup": backup_summary(manifest),
                    "volume_type_reason": "already restored", "stats": {}}
        source_volume = manifest.source.get("volume") or {}
        volume_type, type_reason = resolve_volume_type(conn, params["volume_type"], source_volume.get("volume_type"))
        metadata = restored_metadata(source_volume, params["metadata"], manifest.backup_id)
        transfer = choose_transfer_format(params["transfer_format"], RESTORE_FORMAT_PREFERENCE, glance_disk_formats(conn))
    if module.check_mode:
        return {"changed": True, "volume": {"name": params["restore_name"], "size": size, "volume_type": volume_type,
                                            "availability_zone": params["availability_zone"], "metadata": metadata},
                "image_id": None, "backup": backup_summary(manifest), "volume_type_reason": type_reason,
                "transfer_format": transfer.as_dict(), "stats": {}}
    run = RestoreRun(conn, store, manifest, params, size, transfer, phases)
    volume, image_id, image_metadata = run.restore(volume_type, metadata)
    return {"changed": True, "volume": volume_result(volume), "image_id": image_id, "backup": backup_summary(manifest),
            "volume_type_reason": type_reason, "image_metadata": image_metadata, "transfer_format": transfer.as_dict(),
            "stats": run.stats()}


def complete_backup(store: BackupStore, name_or_id: str) -> t.Any:
    manifest = store.load_manifest(name_or_id)
    if manifest is None:
        progress = store.load_progress(name_or_id)
        state = f" (it is {progress.status}, not complete)" if progress else ""
        raise InvalidInputError(f"No complete backup {name_or_id!r} in the bank {store.bank.description}{state}")
    return manifest


def restore_size(manifest: t.Any, requested: int | None) -> int:
    """GiB of the new volume: at least the source volume's size and the backup's bytes."""
    source_size = int((manifest.source.get("volume") or {}).get("size") or 0)
    minimum = max(source_size, -(-manifest.size // GIB), 1)
    size = minimum if requested is None else requested
    if size < minimum:
        raise InvalidInputError(f"size {size} GiB is smaller than the backup, which needs {minimum} GiB")
    return size


def already_restored(conn: t.Any, restore_name: str, manifest: t.Any) -> t.Any:
    """The volume of that name restored from this backup, None when the name is free; anything else is an error."""
    for volume in volumes_named(conn, restore_name):
        if carries_tag(volume, TAG_TEMPORARY):
            # A run killed before it finished: its volume may be incomplete and is due for removal.
            raise InvalidInputError(
                f"A volume named {restore_name!r} ({volume.id}, status {volume.status}) is the unfinished result of an interrupted "
                "restore; remove it with the cleanup role (openstack_dr.bank.temporaries_cleanup) and run the restore again.",
                volume=volume.id)
        if carries_tag(volume, RESTORED_FROM_TAG, manifest.backup_id):
            return volume
        raise InvalidInputError(
            f"A volume named {restore_name!r} ({volume.id}) already exists and was not restored from backup "
            f"{manifest.backup_name!r}; choose another restore_name. Nothing was changed.", volume=volume.id)
    return None


def restored_metadata(source_volume: t.Mapping[str, t.Any], requested: t.Mapping[str, t.Any], backup_id: str) -> dict[str, str]:
    metadata = {key: str(value) for key, value in (source_volume.get("metadata") or {}).items() if key not in TAG_KEYS}
    metadata.update({key: str(value) for key, value in requested.items()})
    metadata[RESTORED_FROM_TAG] = backup_id
    return metadata


@dataclasses.dataclass
class RestoreRun:
    """One restore's OpenStack side: its temporaries, its phases and what crossed Glance."""

    conn: t.Any
    store: BackupStore
    manifest: t.Any
    params: t.Mapping[str, t.Any]
    size: int
    transfer: TransferFormat
    phases: PhaseTimer
    bytes_uploaded: int = 0

    def __post_init__(self) -> None:
        self.step_timeout = data_step_timeout(self.params["timeout"], self.size)
        self.temporaries = Temporaries(self.conn, backup=self.manifest.backup_name,
                                       source_volume_id=(self.manifest.source.get("volume") or {}).get("id"),
                                       prefix=self.params["temporary_prefix"], removal_timeout=checked_timeout(self.params["timeout"]))

    def restore(self, volume_type: str | None, metadata: dict[str, str]) -> tuple[t.Any, str, dict]:
        with self.temporaries:
            with self.phases("image_upload"):
                image, image_registration = self.upload_backup_as_image()
            with self.phases("volume_from_image"):
                volume, registration = create_volume_from_image(
                    self.conn, self.temporaries, image, name=self.params["restore_name"], size=self.size,
                    deadline=Deadline(self.step_timeout), volume_type=volume_type, availability_zone=self.params["availability_zone"],
                    metadata=metadata, description=self.params["description"])
            with self.phases("finishing"):
                image_metadata = self.finish_volume(volume)
                self.temporaries.keep(registration)
                self.temporaries.remove_now(image_registration)
        return get_volume(self.conn, volume.id), image.id, image_metadata

    def upload_backup_as_image(self) -> tuple[t.Any, t.Any]:
        image, registration = create_restore_image(self.conn, self.temporaries, disk_format=self.transfer.disk_format, min_disk=self.size)
        with self.store.open_backup(self.manifest.backup_id, parallelism=self.params["parallelism"]) as reader:
            if self.transfer.disk_format == RAW:
                body, self.bytes_uploaded = reader, self.manifest.size
            else:
                qcow2 = Qcow2Writer(self.manifest.size, self.manifest.allocation_bitmap(QCOW2_CLUSTER_SIZE), QCOW2_CLUSTER_SIZE)
                body, self.bytes_uploaded = PiecesReader(qcow2.stream(file_pieces(reader)), size=qcow2.size), qcow2.size
            return upload_image_data(self.conn, image, body, self.bytes_uploaded, deadline=Deadline(self.step_timeout)), registration

    def finish_volume(self, volume: t.Any) -> dict:
        source_volume = self.manifest.source.get("volume") or {}
        if source_volume.get("bootable"):
            set_volume_bootable(self.conn, volume, True)
        image_metadata = set_volume_image_metadata(self.conn, volume, source_volume.get("volume_image_metadata"))
        remove_volume_metadata(self.conn, volume, self.temporaries.tags)
        return image_metadata

    def stats(self) -> dict:
        upload_seconds = self.phases.seconds.get("image_upload") or 0.0
        return {"bytes": self.manifest.size, "seconds": self.phases.total(), "seconds_per_phase": dict(self.phases.seconds),
                "mib_per_second": round(self.manifest.size / MIB / upload_seconds, 1) if upload_seconds else None,
                "glance": {"bytes_uploaded": self.bytes_uploaded, "transfer_format": self.transfer.disk_format}}
