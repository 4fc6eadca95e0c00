# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""volume_glance_backup, top to bottom.

check inputs -> already complete? -> find the volume -> check-mode plan -> open the writer ->
copy the volume to a temporary image (through a temporary snapshot and volume, or directly) ->
stream the image into the bank -> remove every temporary -> commit (the manifest, written last)
-> result. Temporaries are removed on success, failure, timeout and SIGTERM; a backup whose
manifest is missing is resumed by the next run with the same name, uploading only the chunks the
bank does not have yet.
"""

from __future__ import annotations

import dataclasses
import hmac
import typing as t

from ansible_collections.openstack_dr.bank.plugins.module_utils import _inputs as inputs
from ansible_collections.openstack_dr.bank.plugins.module_utils._bank import open_bank
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.hashing import StreamHasher
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.layout import backup_id_for_name
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.store import BackupStore
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.units import GIB, MIB
from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import BankMissingError, DrBankError, IntegrityError
from ansible_collections.openstack_dr.bank.plugins.module_utils._imageformats.reader import SUPPORTED_DISK_FORMATS, open_raw_stream
from ansible_collections.openstack_dr.bank.plugins.module_utils._manifest import backup_summary
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack.backup_steps import (
    GlanceImageSource,
    choose_copy_mode,
    create_temporary_snapshot,
    create_temporary_volume,
    get_active_image,
    image_facts,
    upload_volume_to_image,
)
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack.connection import checked_timeout, connect, data_step_timeout
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack.temporaries import Temporaries
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack.transfer_format import (
    RAW,
    TransferFormat,
    choose_transfer_format,
    fallback_to_raw,
    glance_disk_formats,
)
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack.volumes import describe_volume, find_volume
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack.waiters import Deadline
from ansible_collections.openstack_dr.bank.plugins.module_utils._phases import PhaseTimer

# Fastest end to end first (upload-to-image of the 4 GiB test volume: vdi 16.6 s, vmdk 20.1 s,
# qcow2 33-36 s because Cinder compresses it, raw 23-27 s): see docs/benchmarks.md.
# 1 MiB download pieces queued for the image's hash thread.
HASH_QUEUE_PIECES = 16
BACKUP_FORMAT_PREFERENCE = tuple(name for name in ("vdi", "vmdk", "qcow2") if name in SUPPORTED_DISK_FORMATS)


def run_volume_backup(module: t.Any) -> dict:
    params = module.params
    check_inputs(params)
    phases = PhaseTimer()
    with phases("prepare"):
        bank = open_backup_bank(params["bank"], module.check_mode)
        store = BackupStore(bank, params["encryption_passphrase"], params["compression_level"]) if bank is not None else None
        existing = complete_backup(store, params["backup_name"])
        if existing is not None:
            return {"changed": False, "backup": backup_summary(existing), "stats": {}, "temporaries": {}}
        conn = connect(params)
        volume = find_volume(conn, params["volume"])
        mode = choose_copy_mode(volume, params["copy_mode"], params["force"])
        transfer = choose_transfer_format(params["transfer_format"], BACKUP_FORMAT_PREFERENCE, glance_disk_formats(conn))
        resumed = store is not None and store.load_progress(params["backup_name"]) is not None
        if module.check_mode:
            return dict(check_mode_plan(params, volume, mode, transfer, resumed), would_create_bank=store is None)
        source = {"volume": describe_volume(conn, volume), "copy_mode": mode}
        writer = open_writer(store, params, source)
    run = BackupRun(conn, params, volume, mode, transfer, source, phases)
    try:
        manifest = run.copy_and_stream(writer)
    except BaseException as exc:
        writer.abort(exc)
        run.add_failure_details(exc)
        raise
    if run.temporaries.report["left_behind"]:
        module.warn("Some temporaries could not be removed: " + ", ".join(
            f"{item['type']} {item['id']}" for item in run.temporaries.report["left_behind"]))
    return run.result(manifest, writer, resumed)


def check_inputs(params: t.Mapping[str, t.Any]) -> None:
    """Every option that needs neither the cloud nor the bank, refused by name before any connection."""
    inputs.check_openstack_options(params)
    inputs.check_backup_name(params["backup_name"])
    inputs.check_text("volume", params["volume"], max_chars=inputs.CINDER_MAX_CHARS)
    inputs.check_number("compression_level", params["compression_level"], inputs.COMPRESSION_LEVEL)
    inputs.check_number("lock_timeout", params["lock_timeout"], inputs.LOCK_TIMEOUT)
    inputs.check_number("parallelism", params["parallelism"], inputs.PARALLELISM)
    inputs.check_number("progress_interval", params["progress_interval"], inputs.PROGRESS_INTERVAL)
    inputs.check_temporary_prefix(params["temporary_prefix"])
    inputs.check_passphrase(params)


def open_backup_bank(config: dict, check_mode: bool) -> t.Any:
    """The bank; in check mode never created: None when it is missing and ``create: true`` would make it."""
    if not check_mode or not config.get("create"):
        return open_bank(config)
    try:
        return open_bank(config, read_only=True)
    except BankMissingError:
        return None


def complete_backup(store: BackupStore | None, backup_name: str) -> t.Any:
    """The complete backup of that name, None when there is none (or no bank yet, in check mode)."""
    if store is None:
        return None
    # A passphrase for an unencrypted bank (or none for an encrypted one) is refused even when the backup exists.
    store.check_access()
    return store.load_manifest(backup_name)


def open_writer(store: BackupStore, params: t.Mapping[str, t.Any], source: dict) -> t.Any:
    """Opening the writer checks the bank's credentials and passphrase before any temporary exists."""
    return store.backup_writer(
        params["backup_name"], description=params["description"], source=source, chunk_size=params["chunk_size"] * MIB,
        parallelism=params["parallelism"], progress_interval=params["progress_interval"], lock_wait_timeout=params["lock_timeout"],
    )


def check_mode_plan(params: t.Mapping[str, t.Any], volume: t.Any, mode: str, transfer: TransferFormat, resumed: bool) -> dict:
    kinds = ["image"] if mode == "direct" else ["snapshot", "volume", "image"]
    prefix = f"{params['temporary_prefix']}{params['backup_name']}"
    return {
        "changed": True,
        "backup": {"id": backup_id_for_name(params["backup_name"]), "name": params["backup_name"], "size": volume.size * GIB,
                   "source_volume": {"id": volume.id, "name": volume.name, "size": volume.size}},
        "copy_mode": mode,
        "transfer_format": transfer.as_dict(),
        "resumed": resumed,
        "temporaries": {"would_create": [{"type": kind, "name_prefix": f"{prefix}-{kind}-", "size_gib": volume.size} for kind in kinds]},
        "stats": {},
    }


@dataclasses.dataclass
class BackupRun:
    """One backup's OpenStack side: its temporaries, its phases, the image it streams from."""

    conn: t.Any
    params: t.Mapping[str, t.Any]
    volume: t.Any
    mode: str
    transfer: TransferFormat
    source: dict
    phases: PhaseTimer
    glance: dict = dataclasses.field(default_factory=lambda: {"bytes_downloaded": 0, "range_requests": 0})

    def __post_init__(self) -> None:
        self.backup_name = self.params["backup_name"]
        self.step_timeout = data_step_timeout(self.params["timeout"], self.volume.size)
        self.temporaries = Temporaries(self.conn, backup=self.backup_name, source_volume_id=self.volume.id,
                                       prefix=self.params["temporary_prefix"], removal_timeout=checked_timeout(self.params["timeout"]))

    def copy_and_stream(self, writer: t.Any) -> t.Any:
        with self.temporaries:
            image = self.copy_volume_to_image()
            with self.phases("download_and_stream"):
                self.stream_image_into_bank(image, writer)
            with self.phases("cleanup"):
                self.temporaries.cleanup()
        with self.phases("commit"):
            return writer.commit()

    def copy_volume_to_image(self) -> t.Any:
        uploaded = self.volume
        if self.mode == "snapshot":
            with self.phases("snapshot"):
                snapshot = create_temporary_snapshot(self.conn, self.temporaries, self.volume, force=self.volume.status == "in-use",
                                                     deadline=Deadline(self.step_timeout))
            with self.phases("temporary_volume"):
                uploaded = create_temporary_volume(self.conn, self.temporaries, snapshot, self.volume.size,
                                                   deadline=Deadline(self.step_timeout))
        with self.phases("upload_to_image"):
            try:
                return upload_volume_to_image(self.conn, self.temporaries, uploaded, disk_format=self.transfer.disk_format,
                                              deadline=Deadline(self.step_timeout))
            except DrBankError as refusal:
                if not self.transfer.automatic or self.transfer.disk_format == RAW or refusal.details.get("http_status") != 400:
                    raise
                self.transfer = fallback_to_raw(self.transfer, refusal)
                return upload_volume_to_image(self.conn, self.temporaries, uploaded, disk_format=RAW, deadline=Deadline(self.step_timeout))

    def stream_image_into_bank(self, image: t.Any, writer: t.Any) -> None:
        """Raw images are streamed as they are; sparse ones are turned back into the volume's raw bytes on the way."""
        image = get_active_image(self.conn, image.id)
        self.source["image"] = image_facts(image)
        self.source["transfer_format"] = self.transfer.disk_format
        glance_hash = (image.hash_algo, image.hash_value) if getattr(image, "hash_algo", None) and getattr(image, "hash_value", None) else None
        image_source = GlanceImageSource(self.conn, image)
        try:
            if self.transfer.disk_format == RAW:
                writer.write_chunks(image_source.stream(0), expected_size=image_source.size, expected_hash=glance_hash)
                return
            hashed = HashedImageSource(image_source, glance_hash)
            try:
                raw = open_raw_stream(image.disk_format, hashed, f"{image.id} ({image.name})")
                volume_bytes = self.volume.size * GIB
                if raw.virtual_size != volume_bytes:
                    raise IntegrityError(f"Image {image.id} holds {raw.virtual_size} bytes but volume {self.volume.id} has {volume_bytes}")
                writer.write_chunks(raw.pieces(), expected_size=volume_bytes)
            except BaseException:
                hashed.abandon()
                raise
            hashed.check(f"image {image.id}")
        finally:
            self.glance = {"bytes_downloaded": image_source.bytes_streamed + image_source.bytes_ranged,
                           "range_requests": image_source.range_requests, "image_size": image_source.size}

    def add_failure_details(self, exc: BaseException) -> None:
        if isinstance(exc, DrBankError):
            exc.details.setdefault("temporaries", self.temporaries.report)
            exc.details.setdefault("backup", {"id": backup_id_for_name(self.backup_name), "name": self.backup_name,
                                              "complete": False, "resumable": True})

    def result(self, manifest: t.Any, writer: t.Any, resumed: bool) -> dict:
        report = self.temporaries.report
        stream_seconds = self.phases.seconds.get("download_and_stream") or 0.0
        # The stream's own rate: the Glance copy before it is in seconds_per_phase, not in this figure.
        stats = dict(writer.stats.as_dict(), seconds=self.phases.total(), seconds_per_phase=dict(self.phases.seconds),
                     mib_per_second=round(manifest.size / MIB / stream_seconds, 1) if stream_seconds else None,
                     glance=dict(self.glance, transfer_format=self.transfer.disk_format))
        return {
            "changed": True,
            "backup": backup_summary(manifest),
            "copy_mode": self.mode,
            "transfer_format": self.transfer.as_dict(),
            "resumed": resumed,
            "stats": stats,
            "temporaries": {"created": report["removed"] + report["left_behind"], "removed": report["removed"],
                            "left_behind": report["left_behind"]},
        }


class HashedImageSource:
    """An image source whose one sequential download is hashed in a thread of its own.

    The image reader streams every byte of the file once, from its start, so this digest is
    Glance's checksum of the file; sha512 on the reading thread would halve the stream's speed.
    """

    def __init__(self, source: GlanceImageSource, expected_hash: tuple[str, str] | None) -> None:
        self.source = source
        self.size = source.size
        self.expected_hash = expected_hash
        self.hasher = StreamHasher(expected_hash[0], HASH_QUEUE_PIECES) if expected_hash else None
        self.streams = 0

    def stream(self, offset: int) -> t.Iterator[bytes]:
        self.streams += 1
        if offset or self.streams > 1:
            raise IntegrityError("The image was not read in one pass from its start: its checksum cannot be verified")
        for piece in self.source.stream(offset):
            if self.hasher is not None:
                self.hasher.update(piece)
            yield piece

    def read_range(self, offset: int, length: int) -> bytes:
        return self.source.read_range(offset, length)

    def abandon(self) -> None:
        """The read failed: stop the hash thread (the digest would cover only part of the image)."""
        if self.hasher is not None:
            self.hasher.abandon()

    def check(self, what: str) -> None:
        if self.hasher is None or self.expected_hash is None:
            return
        actual = self.hasher.hexdigest()
        if not hmac.compare_digest(actual, self.expected_hash[1].lower()):
            raise IntegrityError(f"The {self.expected_hash[0]} of {what} is {actual}, Glance says {self.expected_hash[1]}: the download was damaged")
