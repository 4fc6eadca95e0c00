# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The modules end to end: back up at site A, restore at site B, from the bank alone.

Every module runs for real through the ``ansible`` command, as the member user of project ``dr``
at each site, against the two-site devcloud and the Swift bank (S3 API and Swift API) or a
directory. Restored bytes are read back through an upload to an image and compared by hash.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import tempfile
import threading
import uuid

import pytest

from ansible_collections.openstack_dr.bank.plugins.module_utils._bank import open_bank
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.store import BackupStore
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.verify import verify_backup
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack.temporaries import find_orphaned_temporaries, parent_images, remove_found

from bank_fixtures import with_endpoint  # pylint: disable=wrong-import-order
from devcloud_fixtures import connect, load_sites, wait_for, wait_for_gone, wait_for_status  # pylint: disable=wrong-import-order
from fault_proxy import FaultProxy  # pylint: disable=wrong-import-order
from module_runner import run_module, signal_process_tree, start_module  # pylint: disable=wrong-import-order

MIB = 1024 * 1024
GIB = 1024 * MIB
STEP_TIMEOUT = 600
PASSPHRASE = "correct horse battery staple"
TEXT = b"Block of the DR test volume: lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 64


def source_bytes(layout_seed: int = 7, padded_to: int = GIB) -> tuple[str, list[tuple[int, bytes]]]:
    """1 GiB of known data as (offset, bytes) regions; everything else is zeros.

    Returns the sha256 of those bytes followed by zeros up to ``padded_to`` (a larger restored volume).
    """
    rng = random.Random(layout_seed)
    regions = [
        (0, rng.randbytes(192 * MIB)),                                  # random
        (256 * MIB, (TEXT * (160 * MIB // len(TEXT) + 1))[:160 * MIB]),  # compressible text
        (700 * MIB, rng.randbytes(8 * MIB)),                            # an island in the zeros
        (GIB - MIB, rng.randbytes(MIB)),                                # data up to the very end
    ]
    digest = hashlib.sha256()
    position = 0
    for offset, data in regions:
        digest.update(bytes(offset - position))
        digest.update(data)
        position = offset + len(data)
    for dummy in range(position, padded_to, 64 * MIB):
        digest.update(bytes(min(64 * MIB, padded_to - dummy)))
    return digest.hexdigest(), regions


def write_sparse(path: str, regions: list[tuple[int, bytes]], size: int = GIB) -> None:
    with open(path, "wb") as handle:
        handle.truncate(size)
        for offset, data in regions:
            handle.seek(offset)
            handle.write(data)


def module_env(sites: dict) -> dict:
    return {"OS_CLIENT_CONFIG_FILE": sites["clouds_yaml"]}


def volume_sha256(conn, volume_id: str) -> tuple[str, int]:
    """Read a volume's bytes the only way a member can: upload it to an image and download that."""
    response = conn.block_storage.upload_volume_to_image(volume_id, f"readback-{volume_id[:8]}",
                                                         disk_format="raw", container_format="bare")
    image_id = response["image_id"]
    try:
        wait_for_status(lambda: conn.image.get_image(image_id), "active", STEP_TIMEOUT, "read-back image",
                        failures=("killed", "deleted"))
        wait_for_status(lambda: conn.block_storage.get_volume(volume_id), "available", STEP_TIMEOUT,
                        "volume after read-back")
        digest = hashlib.sha256()
        size = 0
        stream = conn.image.download_image(image_id, stream=True)
        for piece in stream.iter_content(MIB):
            digest.update(piece)
            size += len(piece)
        stream.close()
        return digest.hexdigest(), size
    finally:
        conn.image.delete_image(image_id, ignore_missing=True)
        wait_for_gone(lambda: conn.image.get_image(image_id), STEP_TIMEOUT, "read-back image")


def project_resources(conn) -> set[tuple[str, str]]:
    found = {("volume", v.id) for v in conn.block_storage.volumes()}
    found |= {("snapshot", s.id) for s in conn.block_storage.snapshots()}
    found |= {("image", i.id) for i in conn.image.images(owner=conn.current_project_id)}
    return found


def assert_no_temporaries(*conns) -> None:
    """No temporary of this file's backups (all named e2e-...) is left; other suites may share the project."""
    for conn in conns:
        ours = [item for item in find_orphaned_temporaries(conn) if str(item.get("backup") or "").startswith("e2e-")]
        assert ours == [], f"temporaries left at {conn.config.name}"


def delete_volume(conn, volume_id: str) -> None:
    conn.block_storage.delete_volume(volume_id, ignore_missing=True)
    wait_for_gone(lambda: conn.block_storage.get_volume(volume_id), STEP_TIMEOUT, f"volume {volume_id}")
    # A raw restore on Ceph keeps its image as the volume's parent: it can go now, as the cleanup role does.
    left = remove_found(conn, parent_images(conn, {volume_id}), STEP_TIMEOUT)["left_behind"]
    assert left == [], left


@pytest.fixture(scope="module", name="sites")
def fixture_sites():
    return load_sites()


@pytest.fixture(scope="module", name="source_volume")
def fixture_source_volume(site_a, tmp_path_factory):
    """A bootable 1 GiB volume of type gold-a at site A with random, text and zero regions, and its sha256."""
    expected, regions = source_bytes()
    path = str(tmp_path_factory.mktemp("source") / "source.raw")
    write_sparse(path, regions)
    with open(path, "rb") as data:
        image = site_a.image.create_image(name="e2e-source-image", data=data, disk_format="raw", container_format="bare",
                                          visibility="private", hw_disk_bus="scsi", os_distro="debian", validate_checksum=False)
    os.unlink(path)
    wait_for_status(lambda: site_a.image.get_image(image.id), "active", STEP_TIMEOUT, "source image",
                    failures=("killed", "deleted"))
    volume = site_a.block_storage.create_volume(name="e2e-source", size=1, image_id=image.id, volume_type="gold-a",
                                                metadata={"app": "billing", "tier": "db"})
    volume = wait_for_status(lambda: site_a.block_storage.get_volume(volume.id), "available", STEP_TIMEOUT, "source volume")
    site_a.image.delete_image(image.id)
    yield volume, expected
    delete_volume(site_a, volume.id)


@pytest.fixture(scope="module", name="banks")
def fixture_banks(sites, tmp_path_factory):
    """One fresh bank per kind: Swift via S3 (encrypted), Swift via its own API, a directory."""
    import yaml  # pylint: disable=import-outside-toplevel
    with open(sites["bank_yml"], encoding="utf-8") as handle:
        servers = yaml.safe_load(handle)
    suffix = os.urandom(4).hex()
    return {
        "swift_s3": dict(servers["swift_s3"], bucket=f"e2e-modules-{suffix}", create=True),
        # Swift serves the S3 API from the same namespace: a container of its own, not the S3 bucket.
        "swift": dict(servers["swift"], container=f"e2e-modules-swift-{suffix}", create=True),
        "file": {"type": "file", "path": str(tmp_path_factory.mktemp("bank")), "create": True},
    }


def backup_args(volume_id: str, bank: dict, name: str, **extra) -> dict:
    args = {"cloud": "site-a", "volume": volume_id, "bank": bank, "backup_name": name}
    if bank.get("type") == "s3":
        args["encryption_passphrase"] = PASSPHRASE
    args.update(extra)
    return args


def restore_args(bank: dict, backup: str, restore_name: str, **extra) -> dict:
    args = {"cloud": "site-b", "bank": dict(bank, create=False), "backup": backup, "restore_name": restore_name}
    if bank.get("type") == "s3":
        args["encryption_passphrase"] = PASSPHRASE
    args.update(extra)
    return args


def test_backup_at_a_restore_at_b_is_byte_identical(sites, site_a, site_b, source_volume, banks):
    volume, expected_sha256 = source_volume
    env = module_env(sites)
    site_a.block_storage.set_volume_bootable_status(volume.id, True)
    bank = banks["swift_s3"]
    before_a, before_b = project_resources(site_a), project_resources(site_b)

    checked = run_module("volume_glance_backup", backup_args(volume.id, bank, "e2e-full"), check=True, env=env)
    assert checked["changed"] and not checked.failed, checked.result
    assert checked["temporaries"]["would_create"]
    assert project_resources(site_a) == before_a
    # Check mode creates nothing, the bank included: it says it would.
    assert checked["would_create_bank"] is True, checked.result
    listed = run_module("bank_backup_info", {"bank": bank, "backup": "e2e-full"}, env=env)
    assert listed.failed and "does not exist" in listed["msg"], listed.result

    backup = run_module("volume_glance_backup", backup_args(volume.id, bank, "e2e-full"), env=env)
    assert not backup.failed, backup.result
    assert backup["changed"] and backup["copy_mode"] == "direct", backup.result
    assert backup["backup"]["hashes"]["sha256"] == expected_sha256
    assert backup["stats"]["zero_bytes_skipped"] >= 400 * MIB
    assert backup["stats"]["bytes_written"] < 250 * MIB  # random data stays, text compresses, zeros vanish
    # auto crosses Glance in a sparse format: about the 361 MiB of data, not the 1 GiB volume.
    assert backup["transfer_format"]["format"] == "vdi", backup["transfer_format"]
    assert backup["stats"]["glance"]["bytes_downloaded"] < 400 * MIB, backup["stats"]["glance"]
    phases = backup["stats"]["seconds_per_phase"]
    assert set(phases) == {"prepare", "upload_to_image", "download_and_stream", "cleanup", "commit"}, phases
    assert backup["stats"]["seconds"] == pytest.approx(sum(phases.values()), abs=0.01)
    assert PASSPHRASE not in backup.stdout + backup.stderr
    assert project_resources(site_a) == before_a
    assert_no_temporaries(site_a)

    again = run_module("volume_glance_backup", backup_args(volume.id, bank, "e2e-full"), env=env)
    assert not again.failed and not again["changed"], again.result

    checked = run_module("volume_glance_restore", restore_args(bank, "e2e-full", "e2e-restored"), check=True, env=env)
    assert checked["changed"] and not checked.failed, checked.result
    assert project_resources(site_b) == before_b

    restored = run_module("volume_glance_restore", restore_args(bank, "e2e-full", "e2e-restored"), env=env)
    assert not restored.failed, restored.result
    restored_volume = site_b.block_storage.get_volume(restored["volume"]["id"])
    try:
        assert restored_volume.status == "available"
        assert restored_volume.is_bootable in (True, "true")
        # gold-a does not exist at site B: the default type is used, and the result says so.
        assert "does not exist here" in restored["volume_type_reason"]
        image_metadata = restored_volume.volume_image_metadata or {}
        assert image_metadata.get("hw_disk_bus") == "scsi" and image_metadata.get("os_distro") == "debian"
        assert restored_volume.metadata.get("app") == "billing"
        assert project_resources(site_b) == before_b | {("volume", restored_volume.id)}
        assert_no_temporaries(site_a, site_b)

        again = run_module("volume_glance_restore", restore_args(bank, "e2e-full", "e2e-restored"), env=env)
        assert not again.failed and not again["changed"], again.result
        assert again["volume"]["id"] == restored_volume.id

        assert volume_sha256(site_b, restored_volume.id) == (expected_sha256, GIB)
        # auto uploads a qcow2 of the clusters holding data, made from the manifest alone.
        assert restored["transfer_format"]["format"] == "qcow2", restored["transfer_format"]
        assert restored["stats"]["glance"]["bytes_uploaded"] < 400 * MIB, restored["stats"]
        assert set(restored["stats"]["seconds_per_phase"]) == {"prepare", "image_upload", "volume_from_image", "finishing"}
        # Every chunk of the backup that holds data was read from the bank (zero chunks are not stored); nothing written.
        data_chunks = backup["stats"]["chunks"] - backup["stats"]["zero_chunks"]
        requests = restored["stats"]["requests"]
        assert data_chunks > 0 and requests["get"] >= data_chunks, (requests, backup["stats"])
        assert requests["put"] == requests["delete"] == requests["lock"] == 0, requests
        assert restored["backup"]["source_volume"]["id"] == volume.id and restored["backup"] == backup["backup"]
    finally:
        delete_volume(site_b, restored_volume.id)


def test_raw_and_sparse_transfers_store_the_same_chunks_and_restore_the_same_bytes(sites, site_a, site_b, source_volume, banks):
    """A raw backup of the volume already backed up through vdi dedupes entirely; a raw restore gives the same bytes."""
    volume, expected_sha256 = source_volume
    env = module_env(sites)
    bank = banks["swift_s3"]
    raw = run_module("volume_glance_backup", backup_args(volume.id, bank, "e2e-raw", transfer_format="raw"), env=env)
    assert not raw.failed, raw.result
    assert raw["transfer_format"] == {"format": "raw", "reason": "raw as requested"}
    assert raw["stats"]["glance"]["bytes_downloaded"] == GIB
    assert raw["backup"]["hashes"]["sha256"] == expected_sha256
    assert raw["stats"]["chunks_written"] == 0, "the vdi backup of the same bytes already stored every chunk"
    restored = run_module("volume_glance_restore", restore_args(bank, "e2e-raw", "e2e-raw-restored", transfer_format="raw"), env=env)
    assert not restored.failed, restored.result
    try:
        assert restored["stats"]["glance"] == {"bytes_uploaded": GIB, "transfer_format": "raw"}
        assert volume_sha256(site_b, restored["volume"]["id"]) == (expected_sha256, GIB)
    finally:
        delete_volume(site_b, restored["volume"]["id"])
    assert_no_temporaries(site_a, site_b)


def test_snapshot_mode_of_an_in_use_volume_through_swift_and_file_banks(sites, site_a, site_b, source_volume, banks):
    volume, expected_sha256 = source_volume
    env = module_env(sites)
    admin = connect("site-a-admin", sites)
    # No Nova here: a reserved attachment (Cinder's attachments API) and an admin status reset make the
    # volume in-use. It is never attached for real, because the NFS driver hands snapshots of attached
    # volumes to Nova, which this devcloud lacks.
    attachment = site_a.block_storage.create_attachment(volume.id, instance=str(uuid.uuid4()))
    admin.block_storage.reset_volume_status(volume.id, "in-use", None, None)
    try:
        assert site_a.block_storage.get_volume(volume.id).status == "in-use"
        refused = run_module("volume_glance_backup", backup_args(volume.id, banks["swift"], "e2e-in-use"), env=env)
        assert refused.failed and "force" in refused["msg"], refused.result
        assert_no_temporaries(site_a)
        for kind in ("swift", "file"):
            backup = run_module("volume_glance_backup",
                                backup_args(volume.id, banks[kind], "e2e-in-use", force=True, copy_mode="auto"), env=env)
            assert not backup.failed, backup.result
            assert backup["copy_mode"] == "snapshot"
            kinds = sorted(item["type"] for item in backup["temporaries"]["removed"])
            assert kinds == ["image", "snapshot", "volume"]
            assert backup["backup"]["hashes"]["sha256"] == expected_sha256
            assert site_a.block_storage.get_volume(volume.id).status == "in-use"
            assert_no_temporaries(site_a)
    finally:
        site_a.block_storage.delete_attachment(attachment.id)
        wait_for_status(lambda: site_a.block_storage.get_volume(volume.id), "available", STEP_TIMEOUT, "detached source")
        admin.close()
    restored = run_module("volume_glance_restore", restore_args(banks["file"], "e2e-in-use", "e2e-from-file",
                                                                volume_type="gold-b", size=2), env=env)
    assert not restored.failed, restored.result
    try:
        assert restored["volume"]["volume_type"] == "gold-b" and restored["volume"]["size"] == 2
        # A larger volume holds the backup's bytes followed by zeros.
        assert volume_sha256(site_b, restored["volume"]["id"]) == (source_bytes(padded_to=2 * GIB)[0], 2 * GIB)
    finally:
        delete_volume(site_b, restored["volume"]["id"])
    assert_no_temporaries(site_a, site_b)


def test_changing_one_mib_writes_about_one_chunk(sites, site_a, source_volume, banks):
    volume, dummy = source_volume
    env = module_env(sites)
    bank = banks["swift_s3"]
    first = run_module("volume_glance_backup", backup_args(volume.id, bank, "e2e-incremental-1"), env=env)
    assert not first.failed, first.result
    # The NFS driver keeps the volume as a file on the site's share: change 1 MiB of it in place.
    share = load_sites()["sites"]["site-a"]["share_mount"]
    with open(os.path.join(share, f"volume-{volume.id}"), "r+b") as handle:
        handle.seek(300 * MIB)
        handle.write(random.Random(99).randbytes(MIB))
    second = run_module("volume_glance_backup", backup_args(volume.id, bank, "e2e-incremental-2"), env=env)
    assert not second.failed, second.result
    assert second["stats"]["chunks_written"] == 1
    assert second["stats"]["bytes_written"] <= 5 * MIB
    assert second["stats"]["duplicate_bytes_skipped"] >= 300 * MIB
    assert_no_temporaries(site_a)


def test_backup_info_lists_filters_verifies_and_shows_progress(sites, banks, source_volume):
    volume, dummy = source_volume
    env = module_env(sites)
    bank = banks["swift_s3"]
    listed = run_module("bank_backup_info", {"bank": bank, "encryption_passphrase": PASSPHRASE, "source_volume": volume.id, "verify": "presence"}, env=env)
    assert not listed.failed, listed.result
    names = {entry["name"] for entry in listed["backups"]}
    assert "e2e-full" in names
    assert all(entry["verification"]["ok"] for entry in listed["backups"])
    assert run_module("bank_backup_info", {"bank": bank, "encryption_passphrase": PASSPHRASE, "source_volume": "no-such-volume"}, env=env)["backups"] == []
    checked = run_module("bank_backup_info", {"bank": bank, "backup": "e2e-full", "verify": "data", "verify_percent": 10,
                                              "encryption_passphrase": PASSPHRASE}, env=env)
    assert checked["backups"][0]["verification"]["ok"] and checked["backups"][0]["verification"]["checked_chunks"] > 0

    # A backup in progress shows its bytes done and its last update.
    started = threading.Event()
    finish = threading.Event()

    def slow_source():
        yield random.Random(1).randbytes(2 * MIB)
        started.set()
        assert finish.wait(120)
        yield random.Random(2).randbytes(MIB)

    with open_bank(dict(bank, create=False)) as engine_bank:
        store = BackupStore(engine_bank, PASSPHRASE)
        writer = store.backup_writer("e2e-in-progress", chunk_size=MIB, progress_interval=0)
        thread = threading.Thread(target=writer.write, args=(slow_source(),), kwargs={"expected_size": 3 * MIB})
        thread.start()
        try:
            assert started.wait(120)
            running = run_module("bank_backup_info", {"bank": bank, "encryption_passphrase": PASSPHRASE, "backup": "e2e-in-progress"}, env=env)
            entry = running["backups"][0]
            assert entry["status"] == "in_progress" and entry["bytes_total"] == 3 * MIB
            assert entry["bytes_done"] >= MIB and entry["updated_at"]
        finally:
            finish.set()
            thread.join(120)
    done = run_module("bank_backup_info", {"bank": bank, "encryption_passphrase": PASSPHRASE, "backup": "e2e-in-progress"}, env=env)
    assert done["backups"][0]["status"] == "complete"


def test_bank_delete_check_mode_idempotence_and_shared_chunks(sites, banks):
    env = module_env(sites)
    bank = banks["swift_s3"]
    args = {"bank": bank, "backup": "e2e-incremental-1", "encryption_passphrase": PASSPHRASE}
    predicted = run_module("bank_delete", args, check=True, env=env)
    assert predicted["changed"] and predicted["deleted"]["objects"] >= 1, predicted.result
    # The incremental backups share all but about one chunk: only that chunk is unique.
    assert predicted["deleted"]["chunks"] <= 1
    assert run_module("bank_backup_info", {"bank": bank, "encryption_passphrase": PASSPHRASE, "backup": "e2e-incremental-1"}, env=env)["backups"]
    deleted = run_module("bank_delete", args, env=env)
    assert deleted["changed"] and deleted["deleted"] == predicted["deleted"], deleted.result
    assert run_module("bank_backup_info", {"bank": bank, "encryption_passphrase": PASSPHRASE, "backup": "e2e-incremental-1"}, env=env)["backups"] == []
    assert not run_module("bank_delete", args, env=env)["changed"]
    verified = run_module("bank_backup_info", {"bank": bank, "encryption_passphrase": PASSPHRASE, "backup": "e2e-incremental-2", "verify": "presence"}, env=env)
    assert verified["backups"][0]["verification"]["ok"]


def test_bank_delete_prune_removes_what_a_failed_backup_left(sites, banks):
    """A backup whose source was cut leaves chunks and a progress object; prune removes exactly those."""
    env = module_env(sites)
    bank = dict(banks["swift"], container=banks["swift"]["container"] + "-prune")
    kept_data = random.Random(61).randbytes(2 * MIB)
    failed_data = kept_data[:MIB] + random.Random(62).randbytes(4 * MIB)

    def cut_source():
        yield failed_data[:3 * MIB]
        raise ConnectionResetError("the image download was cut")

    with open_bank(bank) as engine_bank:
        store = BackupStore(engine_bank)
        store.backup_writer("e2e-prune-kept", chunk_size=MIB).write([kept_data])
        kept_chunks = {entry.key for entry in engine_bank.list("chunks/")}
        with pytest.raises(ConnectionResetError):
            store.backup_writer("e2e-prune-failed", chunk_size=MIB).write(cut_source())
        orphans = {entry.key for entry in engine_bank.list("chunks/")} - kept_chunks
    assert orphans, "the failed backup stored none of its own chunks"

    refused = run_module("bank_delete", {"bank": bank}, env=env)
    assert refused.failed and "prune=true" in refused["msg"], refused.result
    predicted = run_module("bank_delete", {"bank": bank, "prune": True}, check=True, env=env)
    assert predicted["changed"], predicted.result
    assert (predicted["pruned"]["chunks"], predicted["pruned"]["progress_objects"]) == (len(orphans), 1)
    listed = run_module("bank_backup_info", {"bank": bank}, env=env)["backups"]
    assert sorted(entry["status"] for entry in listed) == ["complete", "failed"]

    pruned = run_module("bank_delete", {"bank": bank, "prune": True}, env=env)
    assert pruned["changed"] and pruned["pruned"] == predicted["pruned"], pruned.result
    assert set(pruned["pruned"]["keys"]) >= orphans
    listed = run_module("bank_backup_info", {"bank": bank, "verify": "data"}, env=env)["backups"]
    assert [(entry["name"], entry["verification"]["ok"]) for entry in listed] == [("e2e-prune-kept", True)]
    with open_bank(bank) as engine_bank:
        assert {entry.key for entry in engine_bank.list("chunks/")} == kept_chunks
    assert not run_module("bank_delete", {"bank": bank, "prune": True}, env=env)["changed"]


def bad_input_cases(sites, volume_id: str, banks: dict, error_volume_id: str) -> list[tuple[str, str, dict, str]]:
    bank = banks["swift_s3"]
    quota = load_sites()["sites"]["site-b"]["quotas"]["gigabytes"]
    unreachable = dict(bank, endpoint_url="http://127.0.0.1:9", max_attempts=2)
    wrong_secret = dict(bank, secret_key="not-the-secret")
    return [
        ("unknown volume", "volume_glance_backup", backup_args("no-such-volume", bank, "e2e-bad"), "not found"),
        ("volume in error", "volume_glance_backup", backup_args(error_volume_id, bank, "e2e-bad"), "error"),
        ("missing backup_name", "volume_glance_backup", {"cloud": "site-a", "volume": volume_id, "bank": bank},
         "backup_name"),
        ("unknown backup", "volume_glance_restore", restore_args(bank, "no-such-backup", "e2e-bad"), "No complete backup"),
        ("size too small", "volume_glance_restore", restore_args(bank, "e2e-full", "e2e-bad", size=0), "size must be between 1 and"),
        ("unknown volume type", "volume_glance_restore", restore_args(bank, "e2e-full", "e2e-bad", volume_type="platinum"),
         "unknown volume_type"),
        ("bank unreachable", "volume_glance_backup", backup_args(volume_id, unreachable, "e2e-bad"), "127.0.0.1:9"),
        ("wrong bank credentials", "volume_glance_restore", restore_args(wrong_secret, "e2e-full", "e2e-bad"), "bank"),
        ("wrong passphrase", "volume_glance_restore",
         dict(restore_args(bank, "e2e-full", "e2e-bad"), encryption_passphrase="guess"), "Wrong encryption passphrase"),
        ("over quota at site B", "volume_glance_restore", restore_args(bank, "e2e-full", "e2e-bad", size=quota + 1), "quota"),
    ]


def test_bad_inputs_fail_clearly_and_leave_nothing(sites, site_a, site_b, source_volume, banks):
    volume, dummy = source_volume
    env = module_env(sites)
    admin = connect("site-a-admin", sites)
    broken = site_a.block_storage.create_volume(name="e2e-broken", size=1)
    wait_for_status(lambda: site_a.block_storage.get_volume(broken.id), "available", STEP_TIMEOUT, "broken volume")
    admin.block_storage.reset_volume_status(broken.id, "error", None, None)
    try:
        # An unrelated volume holding the name a restore wants.
        squatter = site_b.block_storage.create_volume(name="e2e-taken", size=1)
        wait_for_status(lambda: site_b.block_storage.get_volume(squatter.id), "available", STEP_TIMEOUT, "squatter")
        cases = bad_input_cases(sites, volume.id, banks, broken.id)
        cases.append(("restore_name taken", "volume_glance_restore", restore_args(banks["swift_s3"], "e2e-full", "e2e-taken"),
                      "already exists"))
        before_a, before_b = project_resources(site_a), project_resources(site_b)
        for label, module, args, message in cases:
            outcome = run_module(module, args, env=env)
            assert outcome.failed, f"{label}: {outcome.result}"
            assert message in outcome["msg"], f"{label}: {outcome['msg']}"
            assert "not-the-secret" not in outcome.stdout + outcome.stderr and "guess" not in str(outcome.result.get("invocation"))
            assert project_resources(site_a) == before_a, label
            assert project_resources(site_b) == before_b, label
            assert_no_temporaries(site_a, site_b)
        assert site_b.block_storage.get_volume(squatter.id).name == "e2e-taken"
    finally:
        admin.block_storage.reset_volume_status(broken.id, "available", None, None)
        admin.close()
        delete_volume(site_a, broken.id)
        for leftover in site_b.block_storage.volumes():
            if leftover.name == "e2e-taken":
                delete_volume(site_b, leftover.id)


def test_sigterm_during_the_transfer_cleans_up_and_the_rerun_resumes(sites, site_a, source_volume, banks):
    """SIGTERM to the process group of a running ``ansible`` mid-transfer: every temporary goes, no manifest
    is written, the bank is not left locked; the rerun resumes, uploading only the chunks still missing."""
    volume, dummy = source_volume
    env = module_env(sites)
    name = "e2e-sigterm-resume"
    bank = dict(banks["swift_s3"], bucket=banks["swift_s3"]["bucket"] + "-sigterm")
    args = backup_args(volume.id, bank, name, copy_mode="snapshot", parallelism=1, chunk_size=1)
    with open_bank(bank) as direct, FaultProxy(bank["endpoint_url"]) as proxy:
        # Each chunk upload waits half a second, so the transfer lasts long enough to be interrupted.
        proxy.fail_always(fault="delay", method="PUT", path_contains="/chunks/", delay=0.5)
        with tempfile.TemporaryDirectory() as tree:
            process = start_module("volume_glance_backup", dict(args, bank=with_endpoint(bank, proxy.url)), tree, env=env)
            try:
                wait_for(lambda: proxy.count(method="PUT", path_contains="/chunks/") >= 5 or process.poll() is not None,
                         STEP_TIMEOUT, "the transfer to upload five chunks")
                assert process.poll() is None, f"the backup ended before it could be interrupted: {process.communicate()}"
                made = {item["type"] for item in find_orphaned_temporaries(site_a) if item.get("backup") == name}
                assert made == {"snapshot", "volume", "image"}, made
                os.killpg(process.pid, signal.SIGTERM)
                process.communicate(timeout=STEP_TIMEOUT)
            finally:
                if process.poll() is None:
                    os.killpg(process.pid, signal.SIGKILL)
        # The module removes its temporaries before it exits; ansible itself may exit first.
        wait_for(lambda: not [item for item in find_orphaned_temporaries(site_a) if item.get("backup") == name],
                 STEP_TIMEOUT, "the interrupted backup's temporaries to be removed")
        proxy.clear()
        store = BackupStore(direct, PASSPHRASE)
        wait_for(lambda: getattr(store.load_progress(name), "status", None) == "failed", STEP_TIMEOUT,
                 "the interrupted backup to record its failure")
        assert store.load_manifest(name) is None
        assert "SIGTERM" in store.load_progress(name).error
        assert not list(direct.list("locks/")), "the interrupted backup left its bank lock"
        stored_before = {entry.key for entry in direct.list("chunks/")}
        assert len(stored_before) >= 3  # the proxy counts a PUT before its delayed upload is done

        rerun = run_module("volume_glance_backup", args, env=env)
        assert not rerun.failed, rerun.result
        assert rerun["changed"] and rerun["resumed"], rerun.result
        stored_after = {entry.key for entry in direct.list("chunks/")}
        assert stored_after >= stored_before
        # Only the chunks the bank did not have were uploaded again.
        assert rerun["stats"]["chunks_written"] == len(stored_after - stored_before), rerun.result
        assert rerun["stats"]["duplicate_chunks"] >= len(stored_before)
        assert store.load_progress(name) is None and verify_backup(store, name).ok
    assert_no_temporaries(site_a)


def test_sigterm_during_volume_from_image_removes_the_half_made_volume(sites, site_a, site_b, source_volume, banks):
    """SIGTERM while Cinder creates the restored volume: the volume was registered when Cinder returned its id,
    so it is removed with the image, and the same restore then succeeds."""
    volume, dummy = source_volume
    env = module_env(sites)
    name = "e2e-sigterm-restore"
    made = run_module("volume_glance_backup", backup_args(volume.id, banks["file"], name), env=env)
    assert not made.failed, made.result
    restore_name = f"e2e-sigterm-restored-{uuid.uuid4().hex[:8]}"
    # Raw carries every byte, so Cinder's download into the volume lasts long enough to be interrupted.
    args = restore_args(banks["file"], name, restore_name, transfer_format="raw")

    def half_made():
        return [v for v in site_b.block_storage.volumes() if v.name == restore_name]

    with tempfile.TemporaryDirectory() as tree:
        process = start_module("volume_glance_restore", args, tree, env=env)
        try:
            wait_for(lambda: half_made() or process.poll() is not None, STEP_TIMEOUT, "the restore to create its volume", interval=0.2)
            assert process.poll() is None, f"the restore ended before it could be interrupted: {process.communicate()}"
            assert half_made()[0].status in ("creating", "downloading"), half_made()[0].status
            signal_process_tree(process.pid, signal.SIGTERM)
            process.communicate(timeout=STEP_TIMEOUT)
        finally:
            if process.poll() is None:
                signal_process_tree(process.pid, signal.SIGKILL)
    wait_for(lambda: not half_made(), STEP_TIMEOUT, "the half-made volume to be removed")
    wait_for(lambda: not [item for item in find_orphaned_temporaries(site_b) if item.get("backup") == name],
             STEP_TIMEOUT, "the interrupted restore's temporaries to be removed")

    rerun = run_module("volume_glance_restore", args, env=env)
    assert not rerun.failed, rerun.result
    assert rerun["changed"] and rerun["volume"]["status"] == "available", rerun.result
    delete_volume(site_b, rerun["volume"]["id"])
    assert_no_temporaries(site_a, site_b)
