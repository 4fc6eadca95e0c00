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

from ansible_collections.openstack_dr.bank.plugins.module_utils import _inputs as inputs
from ansible_collections.openstack_dr.bank.plugins.module_utils._bank import open_bank
from ansible_collections.openstack_dr.bank.plugins.module_utils._bank.counting import CountingBank
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.store import BackupStore
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.units import GIB, MIB
from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import ImageInUseError, InvalidInputError, OpenStackError
from ansible_collections.openstack_dr.bank.plugins.module_utils._imageformats.qcow2_writer import PiecesReader, Qcow2Writer, file_pieces
from ansible_collections.openstack_dr.bank.plugins.module_utils._manifest import backup_summary
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack.connection import checked_timeout, connect, data_step_timeout
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.documents import utc_now
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack.removal import remove_image, remove_volume
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack.restore_steps import (
    create_restore_image,
    create_volume_from_image,
    keep_as_parent,
    mark_as_parent,
    made_from_image_of_run,
    mark_restore_complete,
    remove_volume_metadata,
    resolve_volume_type,
    set_volume_bootable,
    set_volume_image_metadata,
    upload_image_data,
)
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack.tags import (
    DRILL_TAG,
    RESTORE_COMPLETE_TAG,
    RESTORED_FROM_TAG,
    TAG_KEYS,
    TAG_RUN,
    TAG_TEMPORARY,
    carries_tag,
)
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack.temporaries import Temporaries, find_orphaned_temporaries
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack.transfer_format import (
    RAW,
    TransferFormat,
    choose_transfer_format,
    glance_default_store_type,
    glance_disk_formats,
    prefer_raw_where_cinder_clones,
)
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack.volumes import get_volume, volume_result, volumes_named
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack.waiters import Deadline, wait_volume_status
from ansible_collections.openstack_dr.bank.plugins.module_utils._phases import PhaseTimer

# Cinder downloads the whole image into its conversion directory before writing the volume: a
# qcow2 without the zero clusters is about half the 4 GiB test volume (27-30 s against 40-50 s raw).
RESTORE_FORMAT_PREFERENCE = ("qcow2",)
# qemu's default cluster: zero runs of 64 KiB inside non-zero chunks are left out of the image too.
QCOW2_CLUSTER_SIZE = 65536
# Statuses of a volume that Cinder is still making: a killed run's volume-from-image goes on without it.
SETTLING_VOLUME_STATUSES = frozenset({"creating", "downloading"})
NOT_INHERITED_KEYS = frozenset(TAG_KEYS) | {RESTORE_COMPLETE_TAG, DRILL_TAG}


def run_volume_restore(module: t.Any) -> dict:
    params = module.params
    check_inputs(params)
    phases = PhaseTimer()
    with phases("prepare"):
        # Counted, so the stats say what the restore asked of the bank (as a backup's do).
        bank = CountingBank(open_bank(params["bank"], read_only=True))
        store = BackupStore(bank, params["encryption_passphrase"])
        store.check_access()
        manifest = complete_backup(store, params["backup"])
        size = restore_size(manifest, params["size"])
        conn = connect(params)
        earlier = earlier_restore(conn, params["restore_name"], manifest)
        if earlier is not None and earlier.complete:
            return {"changed": False, "volume": volume_result(earlier.volume), "image_id": None, "backup": backup_summary(manifest),
                    "volume_type_reason": "already restored", "earlier_restore": earlier.as_dict(), "stats": {}}
        source_volume = manifest.source.get("volume") or {}
        volume_type, type_reason = resolve_volume_type(conn, params["volume_type"], source_volume.get("volume_type"))
        metadata = restored_metadata(source_volume, params["metadata"], manifest.backup_id)
        transfer = choose_transfer_format(params["transfer_format"], RESTORE_FORMAT_PREFERENCE, glance_disk_formats(conn))
        if transfer.automatic and transfer.disk_format != RAW:
            transfer = prefer_raw_where_cinder_clones(transfer, glance_default_store_type(conn), data_share(manifest))
    if module.check_mode:
        return {"changed": True, "volume": {"name": params["restore_name"], "size": size, "volume_type": volume_type,
                                            "availability_zone": params["availability_zone"], "metadata": metadata},
                "image_id": None, "backup": backup_summary(manifest), "volume_type_reason": type_reason,
                "transfer_format": transfer.as_dict(), "earlier_restore": earlier.as_dict() if earlier else None, "stats": {}}
    run = RestoreRun(conn, store, bank, manifest, params, size, transfer, phases)
    if earlier is not None:
        completed = run.settle_earlier_restore(earlier)
        if completed is not None:
            return {"changed": True, "volume": volume_result(completed), "image_id": None, "parent_image": run.parent_image,
                    "backup": backup_summary(manifest),
                    "volume_type_reason": "completed an interrupted restore", "earlier_restore": earlier.as_dict(),
                    "image_metadata": run.image_metadata, "transfer_format": transfer.as_dict(), "stats": run.stats()}
    volume, image_id, image_metadata = run.restore(volume_type, metadata)
    return {"changed": True, "volume": volume_result(volume), "image_id": image_id, "parent_image": run.parent_image,
            "backup": backup_summary(manifest),
            "volume_type_reason": type_reason, "image_metadata": image_metadata, "transfer_format": transfer.as_dict(),
            "earlier_restore": earlier.as_dict() if earlier else None, "stats": run.stats()}


def check_inputs(params: t.Mapping[str, t.Any]) -> None:
    """Every option that needs neither the cloud nor the bank, refused by name before any connection."""
    inputs.check_openstack_options(params)
    inputs.check_backup_reference(params["backup"])
    inputs.check_volume_name(params["restore_name"], "restore_name")
    inputs.check_number("size", params["size"], inputs.VOLUME_SIZE, optional=True)
    inputs.check_number("parallelism", params["parallelism"], inputs.PARALLELISM)
    inputs.check_text("description", params["description"], max_chars=inputs.CINDER_MAX_CHARS, optional=True, allow_empty=True)
    inputs.check_text("volume_type", params["volume_type"], max_chars=inputs.CINDER_MAX_CHARS, optional=True)
    inputs.check_text("availability_zone", params["availability_zone"], max_chars=inputs.CINDER_MAX_CHARS, optional=True)
    inputs.check_metadata(params["metadata"])
    inputs.check_temporary_prefix(params["temporary_prefix"])
    inputs.check_passphrase(params)


def data_share(manifest: t.Any) -> float:
    """The share of the volume in clusters that may hold data (0.0 for an empty one)."""
    if not manifest.size:
        return 0.0
    bitmap = manifest.allocation_bitmap(QCOW2_CLUSTER_SIZE)
    allocated = bin(int.from_bytes(bitmap, "little")).count("1")
    return min(1.0, allocated * QCOW2_CLUSTER_SIZE / manifest.size)


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


@dataclasses.dataclass
class EarlierRestore:
    """A volume of the wanted name that a restore of this backup made: complete, or left unfinished by a killed run."""

    volume: t.Any
    complete: bool
    outcome: str = "found"

    def as_dict(self) -> dict:
        return {"volume_id": self.volume.id, "status": self.volume.status, "complete": self.complete, "outcome": self.outcome}


def earlier_restore(conn: t.Any, restore_name: str, manifest: t.Any) -> EarlierRestore | None:
    """The volume of that name restored (or being restored) from this backup; None when the name is free.

    Complete means available, not tagged temporary, and carrying the restore's completion mark. A
    volume of that name that this backup did not make is an error: it is never touched.
    """
    for volume in volumes_named(conn, restore_name):
        if carries_tag(volume, RESTORED_FROM_TAG, manifest.backup_id):
            # The mark is set before the temporary tags go; volumes restored by 0.1.0 carry neither.
            complete = (volume.status == "available" and not carries_tag(volume, TAG_TEMPORARY)
                        and (carries_tag(volume, RESTORE_COMPLETE_TAG) or not carries_tag(volume, TAG_RUN)))
            return EarlierRestore(volume, complete)
        if carries_tag(volume, TAG_TEMPORARY):
            raise InvalidInputError(
                f"A volume named {restore_name!r} ({volume.id}, status {volume.status}) is the unfinished result of an interrupted "
                "restore of another backup; remove it with the cleanup role (openstack_dr.bank.temporaries_cleanup) or choose "
                "another restore_name. Nothing was changed.", volume=volume.id)
        raise InvalidInputError(
            f"A volume named {restore_name!r} ({volume.id}) already exists and was not restored from backup "
            f"{manifest.backup_name!r}; choose another restore_name. Nothing was changed.", volume=volume.id)
    return None


def restored_metadata(source_volume: t.Mapping[str, t.Any], requested: t.Mapping[str, t.Any], backup_id: str) -> dict[str, str]:
    # A source that was itself restored must not hand its completion mark to a volume not yet made.
    metadata = {key: str(value) for key, value in (source_volume.get("metadata") or {}).items() if key not in NOT_INHERITED_KEYS}
    metadata.update({key: str(value) for key, value in requested.items()})
    metadata[RESTORED_FROM_TAG] = backup_id
    return metadata


@dataclasses.dataclass
class RestoreRun:
    """One restore's OpenStack side: its temporaries, its phases and what crossed Glance."""

    conn: t.Any
    store: BackupStore
    bank: CountingBank  # the store's bank, counting the requests the restore makes
    manifest: t.Any
    params: t.Mapping[str, t.Any]
    size: int
    transfer: TransferFormat
    phases: PhaseTimer
    bytes_uploaded: int = 0
    image_metadata: dict | None = None
    parent_image: dict | None = None  # the restore image, kept because the volume is its clone

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
                try:
                    self.temporaries.remove_now(image_registration)
                except ImageInUseError:
                    self.parent_image = keep_as_parent(self.conn, self.temporaries, image_registration, volume.id)
        return get_volume(self.conn, volume.id), image.id, image_metadata

    def settle_earlier_restore(self, earlier: EarlierRestore) -> t.Any:
        """Complete an interrupted restore's volume when its bytes are known good, else remove it.

        Returns the completed volume, or None once the unusable one is gone (the caller restores anew).
        The killed run's restore image, if any, is removed either way; on Ceph, one the completed volume was cloned
        from stays as its parent.
        """
        volume = earlier.volume
        deadline = Deadline(self.step_timeout)
        with self.phases("earlier_restore"):
            if volume.status in SETTLING_VOLUME_STATUSES:
                # The killed run's volume-from-image may still be running in Cinder: let it end, well or not.
                try:
                    volume = wait_volume_status(self.conn, volume.id, ["available"], deadline,
                                                what="finish the interrupted volume-from-image")
                except OpenStackError:
                    volume = get_volume(self.conn, volume.id)
            run_id = (volume.metadata or {}).get(TAG_RUN)
            images = [item["id"] for item in find_orphaned_temporaries(self.conn, run_id=run_id) if item["type"] == "image"] if run_id else []
            if volume.status == "available" and (carries_tag(volume, RESTORE_COMPLETE_TAG) or made_from_image_of_run(volume)):
                self.image_metadata = self.finish_volume(volume)
                self.remove_killed_runs_images(images, volume.id)
                earlier.outcome = "completed"
                return get_volume(self.conn, volume.id)
            # The volume first: on Ceph it may be the image's clone, which Glance refuses to orphan.
            remove_volume(self.conn, volume.id, deadline)
            self.remove_killed_runs_images(images, None)
            earlier.outcome = "removed and restored again"
        return None

    def remove_killed_runs_images(self, image_ids: list[str], kept_volume_id: str | None) -> None:
        """Remove the killed run's restore images; one the kept volume was cloned from stays as its parent.

        Best effort, as before: an image that cannot go stays tagged, for the cleanup tools.
        """
        for image_id in image_ids:
            try:
                remove_image(self.conn, image_id, Deadline(self.step_timeout))
            except ImageInUseError:
                if kept_volume_id is not None:
                    self.parent_image = mark_as_parent(self.conn, image_id, kept_volume_id)
            except OpenStackError:
                pass

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
        mark_restore_complete(self.conn, volume, utc_now())
        # The tags of whatever run made it (this one, or a killed one whose volume is being completed);
        # the SDK drops each key from the object it is given, so it must be a fresh one.
        current = get_volume(self.conn, volume.id)
        remove_volume_metadata(self.conn, current, [key for key in TAG_KEYS if key in (current.metadata or {})])
        return image_metadata

    def stats(self) -> dict:
        upload_seconds = self.phases.seconds.get("image_upload") or 0.0
        return {"bytes": self.manifest.size, "seconds": self.phases.total(), "seconds_per_phase": dict(self.phases.seconds),
                "mib_per_second": round(self.manifest.size / MIB / upload_seconds, 1) if upload_seconds else None,
                "glance": {"bytes_uploaded": self.bytes_uploaded, "transfer_format": self.transfer.disk_format},
                "requests": self.bank.snapshot()}
