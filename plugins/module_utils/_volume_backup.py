# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""volume_glance_backup, top to bottom.

find the volume -> (temporary snapshot -> temporary volume ->) temporary image
-> stream the image into the bank in chunks -> remove every temporary -> write
the manifest last. Temporaries are removed on success, failure, timeout and
SIGTERM; a backup whose manifest is missing is resumed by the next run with
the same name, uploading only the chunks the bank does not have yet.
"""

from __future__ import annotations

import time
import typing as t

from ansible_collections.openstack_dr.bank.plugins.module_utils._bank import open_bank
from ansible_collections.openstack_dr.bank.plugins.module_utils._bank.options import bank_argument_spec
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.layout import backup_id_for_name
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.store import BackupStore
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.writer import MIB
from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import DrBankError, InvalidInputError
from ansible_collections.openstack_dr.bank.plugins.module_utils._manifest import Manifest, source_summary
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack.backup_steps import (
    choose_copy_mode,
    copy_volume_to_image,
    describe_volume,
    find_volume,
    open_image_download,
)
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack.connection import (
    connect,
    data_step_timeout,
    openstack_argument_spec,
)
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack.temporaries import (
    DEFAULT_PREFIX,
    TemporaryResources,
)

GIB = 1024 * MIB


def argument_spec() -> dict:
    spec = openstack_argument_spec()
    spec.update(bank_argument_spec())
    spec.update(
        volume=dict(type="str", required=True),
        backup_name=dict(type="str", required=True),
        description=dict(type="str", default=""),
        chunk_size=dict(type="int", default=4, choices=[1, 2, 4, 8, 16, 32, 64]),
        compression_level=dict(type="int", default=3),
        parallelism=dict(type="int", default=4),
        copy_mode=dict(type="str", default="auto", choices=["auto", "snapshot", "direct"]),
        force=dict(type="bool", default=False),
        temporary_prefix=dict(type="str", default=DEFAULT_PREFIX),
        lock_timeout=dict(type="int", default=600),
        progress_interval=dict(type="int", default=30),
    )
    return spec


def backup_summary(manifest: Manifest) -> dict:
    stats = manifest.document.get("stats") or {}
    return {
        "id": manifest.backup_id,
        "name": manifest.backup_name,
        "description": manifest.document.get("description", ""),
        "created_at": manifest.created_at,
        "completed_at": manifest.document.get("completed_at"),
        "size": manifest.size,
        "stored_bytes": stats.get("bytes_written"),
        "hashes": manifest.hashes,
        **source_summary(manifest.source),
    }


def _planned_temporaries(mode: str, prefix: str, backup_name: str, volume: t.Any) -> list[dict]:
    kinds = ["image"] if mode == "direct" else ["snapshot", "volume", "image"]
    return [{"type": kind, "name_prefix": f"{prefix}{backup_name}-{kind}-", "size_gib": volume.size} for kind in kinds]


def run_volume_backup(module) -> dict:
    params = module.params
    if params["compression_level"] not in range(1, 20):
        raise InvalidInputError(f"compression_level must be between 1 and 19, got {params['compression_level']}")
    store = BackupStore(open_bank(params["bank"]), params["encryption_passphrase"], params["compression_level"])
    backup_name = params["backup_name"]

    existing = store.load_manifest(backup_name)
    if existing is not None:
        return {"changed": False, "backup": backup_summary(existing), "stats": {}, "temporaries": {}}

    conn = connect(params)
    volume = find_volume(conn, params["volume"])
    mode = choose_copy_mode(volume, params["copy_mode"], params["force"])
    progress = store.load_progress(backup_name)
    if module.check_mode:
        return {
            "changed": True,
            "backup": {"id": backup_id_for_name(backup_name), "name": backup_name, "size": volume.size * GIB,
                       "source_volume": {"id": volume.id, "name": volume.name, "size": volume.size}},
            "copy_mode": mode,
            "resumed": progress is not None,
            "temporaries": {"would_create": _planned_temporaries(mode, params["temporary_prefix"], backup_name, volume)},
            "stats": {},
        }

    step_timeout = data_step_timeout(params["timeout"], volume.size)
    source = {"volume": describe_volume(conn, volume), "copy_mode": mode}
    # Opening the writer checks the bank's credentials and passphrase before any temporary exists.
    writer = store.backup_writer(
        backup_name, description=params["description"], source=source, chunk_size=params["chunk_size"] * MIB,
        parallelism=params["parallelism"], progress_interval=params["progress_interval"],
        lock_wait_timeout=params["lock_timeout"],
    )
    phases = {}
    temporaries = TemporaryResources(conn, backup=backup_name, source_volume_id=volume.id,
                                     prefix=params["temporary_prefix"], removal_timeout=params["timeout"])
    try:
        with temporaries:
            started = time.monotonic()
            image, mode = copy_volume_to_image(conn, temporaries, volume, mode, params["force"], step_timeout)
            phases["copy_to_image"] = round(time.monotonic() - started, 3)
            started = time.monotonic()
            with open_image_download(conn, image) as download:
                source["image"] = {
                    "disk_format": download.disk_format, "container_format": download.container_format,
                    "min_disk": download.min_disk, "min_ram": download.min_ram, "size": download.size,
                    "os_hash_algo": download.os_hash_algo, "os_hash_value": download.os_hash_value,
                }
                writer.expected_size = download.size
                if download.os_hash_algo and download.os_hash_value:
                    writer.extra_hash_algorithm = download.os_hash_algo
                    writer.extra_hash_expected = download.os_hash_value
                writer.write_chunks(download.pieces)
            phases["transfer"] = round(time.monotonic() - started, 3)
            cleanup_started = time.monotonic()
        phases["cleanup"] = round(time.monotonic() - cleanup_started, 3)
        manifest = writer.commit()
    except DrBankError as exc:
        writer.abort(exc)
        exc.details.setdefault("temporaries", temporaries.report)
        exc.details.setdefault("backup", {"id": backup_id_for_name(backup_name), "name": backup_name,
                                          "complete": False, "resumable": True})
        raise
    except BaseException as exc:
        writer.abort(exc)
        raise
    stats = dict(writer.stats.as_dict(), seconds_per_phase=phases)
    result = {
        "changed": True,
        "backup": backup_summary(manifest),
        "copy_mode": mode,
        "resumed": progress is not None,
        "stats": stats,
        "temporaries": {"created": list(temporaries.report["removed"]) + list(temporaries.report["left_behind"]),
                        "removed": temporaries.report["removed"], "left_behind": temporaries.report["left_behind"]},
    }
    if temporaries.report["left_behind"]:
        module.warn("Some temporaries could not be removed: " + ", ".join(
            f"{item['type']} {item['id']}" for item in temporaries.report["left_behind"]))
    return result
