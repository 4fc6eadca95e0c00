# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The devcloud's Ceph: its Object Gateway as a bank (S3 with Object Lock, Swift), and site B on RBD.

Needs `make devcloud-up` (Ceph, both sites, then the bank server, which lists the gateway's banks
`rgw_s3` and `rgw_swift` in bank.yml). Fails, never skips, when any of them is missing. The RBD tests
exist when sites.yml says site B is on RBD (DEVCLOUD_SITE_B_BACKEND=rbd), and fail when it does not work.
"""

from __future__ import annotations

import datetime
import hashlib
import io
import json
import os
import random
import re
import subprocess
import typing as t
import uuid
from pathlib import Path

import boto3
import botocore.config
import botocore.exceptions
import pytest
import yaml

from ansible_collections.openstack_dr.bank.plugins.module_utils._bank import open_bank
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.store import BackupStore
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack.temporaries import find_orphaned_temporaries

from bank_fixtures import load_bank_servers, unique_name  # pylint: disable=wrong-import-order
from devcloud_fixtures import SITES_YML, load_sites, wait_for_gone, wait_for_status  # pylint: disable=wrong-import-order
from module_runner import run_module  # pylint: disable=wrong-import-order

MIB = 1024 * 1024
GIB = 1024 * MIB
CHUNK = MIB
STEP_TIMEOUT = 600
PASSPHRASE = "ceph test passphrase"
RGW_BANKS = ("rgw_s3", "rgw_swift")


def rgw_configs() -> dict[str, dict[str, t.Any]]:
    configs = load_bank_servers()
    missing = [name for name in RGW_BANKS if name not in configs]
    if missing:
        pytest.fail(f"bank.yml has no {', '.join(missing)}: `make devcloud-up` starts Ceph, then the bank server lists its gateway",
                    pytrace=False)
    return configs


def mixed(size: int, seed: int) -> bytes:
    """Random, compressible and zero regions of odd lengths."""
    rng = random.Random(seed)
    parts, total = [], 0
    while total < size:
        length = rng.randrange(1, 2 * CHUNK)
        kind = rng.randrange(3)
        parts.append(rng.randbytes(length) if kind == 0 else (b"ceph text " * (length // 10 + 1))[:length] if kind == 1 else bytes(length))
        total += length
    return b"".join(parts)[:size]


def pieces(data: bytes, seed: int) -> t.Iterator[bytes]:
    rng = random.Random(seed)
    offset = 0
    while offset < len(data):
        size = rng.choice((1, 4095, 65536, CHUNK - 1, CHUNK + 1, 3 * CHUNK + 7))
        yield data[offset:offset + size]
        offset += size


def read_all(reader) -> bytes:
    parts = []
    while True:
        part = reader.read(77777)
        if not part:
            return b"".join(parts)
        parts.append(part)


def s3_client(config: dict[str, t.Any]):
    return boto3.client("s3", endpoint_url=config["endpoint_url"], region_name=config["region"], aws_access_key_id=config["access_key"],
                        aws_secret_access_key=config["secret_key"], config=botocore.config.Config(retries={"max_attempts": 5}))


def purge_versioned_bucket(s3, bucket: str) -> None:
    """Every version and delete marker (bypassing GOVERNANCE retention), then the bucket."""
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for entry in page.get("Versions", []) + page.get("DeleteMarkers", []):
            s3.delete_object(Bucket=bucket, Key=entry["Key"], VersionId=entry["VersionId"], BypassGovernanceRetention=True)
    s3.delete_bucket(Bucket=bucket)


def remove_bank_bucket(config: dict[str, t.Any]) -> None:
    with open_bank({**config, "create": False}) as bank:
        bank.delete_many([entry.key for entry in bank.list()])
        if config["type"] == "s3":
            bank.client.delete_bucket(Bucket=config["bucket"])  # type: ignore[attr-defined]
        else:
            bank._request("DELETE", bank._container_url(), (204, 404))  # type: ignore[attr-defined]  # pylint: disable=protected-access


@pytest.fixture(name="rgw_bank_config", params=RGW_BANKS)
def fixture_rgw_bank_config(request: pytest.FixtureRequest) -> t.Iterator[dict[str, t.Any]]:
    """A fresh bank on the gateway (S3 API: bucket, Swift API: container), removed at teardown."""
    config = dict(rgw_configs()[request.param])
    config["bucket" if config["type"] == "s3" else "container"] = unique_name(f"e2e-ceph-{request.param}")
    config["create"] = True
    yield config
    remove_bank_bucket(config)


# --- the Object Gateway as a bank ----------------------------------------------------------------


def test_engine_backup_restores_byte_exact_through_rgw(rgw_bank_config):
    """The chunk engine writes a backup into the gateway and reads it back byte for byte; a second
    backup of the same data stores nothing new (S3 encrypted, Swift not)."""
    passphrase = PASSPHRASE if rgw_bank_config["type"] == "s3" else None
    data = mixed(9 * CHUNK + 999, seed=12) + bytes(3 * CHUNK) + random.Random(13).randbytes(CHUNK + 1)
    with open_bank(rgw_bank_config) as bank:
        store = BackupStore(bank, passphrase=passphrase)
        manifest = store.backup_writer("first", chunk_size=CHUNK).write(pieces(data, 1))
        assert manifest.size == len(data) and manifest.hashes["sha256"] == hashlib.sha256(data).hexdigest()
        second = store.backup_writer("second", chunk_size=CHUNK)
        second.write(pieces(data, 2))
        assert second.stats.chunks_written == 0 and second.stats.bytes_written == 0
    with open_bank(dict(rgw_bank_config, create=False)) as bank:
        for name in ("first", "second"):
            with BackupStore(bank, passphrase=passphrase).open_backup(name) as reader:
                assert read_all(reader) == data, name


def test_object_lock_bucket_exists_and_new_ones_lock_versions():
    """The devcloud's Object Lock bucket is versioned and locked; a new bucket with Object Lock keeps a
    GOVERNANCE-retained version from deletion unless the owner bypasses it; the collection's S3 bank
    writes into and reads from such a bucket."""
    config = rgw_configs()["rgw_s3"]
    rgw = load_sites()["ceph"]["rgw"]
    s3 = s3_client(config)
    devcloud_bucket = rgw["object_lock_bucket"]
    assert s3.get_object_lock_configuration(Bucket=devcloud_bucket)["ObjectLockConfiguration"]["ObjectLockEnabled"] == "Enabled"
    assert s3.get_bucket_versioning(Bucket=devcloud_bucket)["Status"] == "Enabled"

    bucket = unique_name("e2e-ceph-lock")
    s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    try:
        assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
        until = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)
        put = s3.put_object(Bucket=bucket, Key="locked", Body=b"kept", ObjectLockMode="GOVERNANCE", ObjectLockRetainUntilDate=until)
        retention = s3.get_object_retention(Bucket=bucket, Key="locked", VersionId=put["VersionId"])["Retention"]
        assert retention["Mode"] == "GOVERNANCE"
        with pytest.raises(botocore.exceptions.ClientError) as refused:
            s3.delete_object(Bucket=bucket, Key="locked", VersionId=put["VersionId"])
        assert refused.value.response["Error"]["Code"] == "AccessDenied"
        assert s3.get_object(Bucket=bucket, Key="locked", VersionId=put["VersionId"])["Body"].read() == b"kept"
        s3.delete_object(Bucket=bucket, Key="locked", VersionId=put["VersionId"], BypassGovernanceRetention=True)

        data = random.Random(21).randbytes(3 * CHUNK + 5)
        with open_bank(dict(config, bucket=bucket)) as bank:
            BackupStore(bank).backup_writer("locked-bank", chunk_size=CHUNK).write([data])
            with BackupStore(bank).open_backup("locked-bank") as reader:
                assert read_all(reader) == data
    finally:
        purge_versioned_bucket(s3, bucket)


# --- the site backends ------------------------------------------------------------------------------


def ceph_env() -> dict[str, str]:
    return dict(os.environ, CEPH_CONF=load_sites()["ceph"]["conf"])


def rbd_json(*args: str) -> t.Any:
    """An `rbd` CLI call as the Ceph admin (not as Cinder): what is really in the pools."""
    out = subprocess.run(["rbd", *args, "--format", "json"], capture_output=True, text=True, env=ceph_env(), timeout=120, check=True)
    return json.loads(out.stdout)


def rbd_sha256(pool: str, image: str) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with subprocess.Popen(["rbd", "export", f"{pool}/{image}", "-", "--no-progress"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                          env=ceph_env()) as proc:
        assert proc.stdout is not None
        for piece in iter(lambda: proc.stdout.read(4 * MIB), b""):
            digest.update(piece)
            size += len(piece)
    assert proc.returncode == 0, f"rbd export {pool}/{image} exited {proc.returncode}"
    return digest.hexdigest(), size


def nfs_sha256(site: str, volume_id: str) -> tuple[str, int]:
    """A volume of the NFS driver is a raw file on the site's share."""
    path = Path(load_sites()["sites"][site]["share_mount"]) / f"volume-{volume_id}"
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        for piece in iter(lambda: handle.read(4 * MIB), b""):
            digest.update(piece)
            size += len(piece)
    return digest.hexdigest(), size


def volume_sha256(site: str, volume_id: str) -> tuple[str, int]:
    """The volume's bytes read from its backend directly."""
    if load_sites()["sites"][site]["backend"] == "rbd":
        return rbd_sha256("volumes", f"volume-{volume_id}")
    return nfs_sha256(site, volume_id)


def payload(seed: int) -> tuple[bytes, str]:
    """An image's bytes (24 MiB + 4321 of random, text and zeros) and the sha256 of a 1 GiB volume of them."""
    data = mixed(24 * MIB + 4321, seed)
    digest = hashlib.sha256(data)
    for offset in range(len(data), GIB, 64 * MIB):
        digest.update(bytes(min(64 * MIB, GIB - offset)))
    return data, digest.hexdigest()


def make_volume(conn, tag: str, data: bytes) -> tuple[t.Any, t.Any]:
    """A 1 GiB volume (default type) from an image of `data`; returns (volume, image)."""
    image = conn.image.create_image(name=f"{tag}-src-image", data=io.BytesIO(data), disk_format="raw", container_format="bare",
                                    visibility="private", validate_checksum=False)
    wait_for_status(lambda: conn.image.get_image(image.id), "active", STEP_TIMEOUT, f"{tag} image", failures=("killed", "deleted"))
    volume = conn.block_storage.create_volume(name=f"{tag}-src", size=1, image_id=image.id, metadata={"e2e": tag})
    return wait_for_status(lambda: conn.block_storage.get_volume(volume.id), "available", STEP_TIMEOUT, f"{tag} volume"), image


def remove_volume_then_image(conn, volume_id: str | None, image_id: str | None) -> None:
    # On RBD a volume made from an image is its copy-on-write child: Glance refuses the image (409) before it.
    if volume_id:
        conn.block_storage.delete_volume(volume_id, ignore_missing=True)
        wait_for_gone(lambda: conn.block_storage.get_volume(volume_id), STEP_TIMEOUT, f"volume {volume_id}")
    if image_id:
        conn.image.delete_image(image_id, ignore_missing=True)
        wait_for_gone(lambda: conn.image.get_image(image_id), STEP_TIMEOUT, f"image {image_id}")


def module_env() -> dict[str, str]:
    return {"OS_CLIENT_CONFIG_FILE": load_sites()["clouds_yaml"]}


def backup_at_site_a(volume_id: str, bank: dict[str, t.Any], name: str) -> None:
    backup = run_module("volume_glance_backup", {"cloud": "site-a", "volume": volume_id, "bank": bank, "backup_name": name},
                        env=module_env())
    assert not backup.failed, backup.result


def log_lines_from(path: str, offset: int) -> list[str]:
    with open(path, "rb") as handle:
        handle.seek(offset)
        return handle.read().decode(errors="replace").splitlines()


def test_each_site_runs_on_the_backend_sites_yml_names(devcloud_connect):
    """sites.yml's `backend` is what Cinder really uses: an RBD pool of Ceph, or the mounted NFS share."""
    sites = load_sites()
    for name, info in sites["sites"].items():
        admin = devcloud_connect(info["admin_cloud"])
        pools = [pool.name for pool in admin.block_storage.backend_pools()]
        assert pools and all(f"@{info['backend']}#" in pool for pool in pools), (name, pools)
        if info["backend"] == "rbd":
            assert info["image_store"] == "rbd" and info["ceph"]["conf"] == sites["ceph"]["conf"]
            rbd_json("ls", "-l", info["ceph"]["volume_pool"])  # the pool exists and answers
        else:
            assert info["backend"] == "nfs" and info["share_mount"] in Path("/proc/mounts").read_text(), name


def test_each_site_is_configured_for_its_backend():
    """The configuration up wrote: RBD with the copy-on-write settings of production, or NFS."""
    import configparser  # pylint: disable=import-outside-toplevel
    for name, info in load_sites()["sites"].items():
        etc = Path(load_sites()["logs_dir"]).parent / "state" / name / "etc"
        cinder = configparser.RawConfigParser(strict=False)
        cinder.read(etc / "cinder" / "cinder.conf")
        glance = configparser.RawConfigParser(strict=False)
        glance.read(etc / "glance" / "glance-api.conf")
        assert cinder["DEFAULT"]["enabled_backends"] == info["backend"] == cinder[info["backend"]]["volume_backend_name"]
        assert cinder["DEFAULT"]["default_volume_type"] == info["volume_types"]["default"]
        if info["backend"] == "rbd":
            assert cinder["rbd"]["volume_driver"] == "cinder.volume.drivers.rbd.RBDDriver"
            # The cephx user is named after the checkout (two checkouts on one machine never share its keyring link).
            assert (cinder["rbd"]["rbd_pool"], cinder["rbd"]["rbd_user"]) == ("volumes", info["ceph"]["cinder_user"])
            assert info["ceph"]["cinder_user"].startswith("cinder-")
            assert cinder["rbd"]["rbd_flatten_volume_from_snapshot"] == "false"
            # Cinder reads image locations as a service user (Glance's locations API), so it clones images.
            assert cinder["glance"]["auth_type"] == "password" and cinder["glance"]["username"] == "cinder"
            assert glance["DEFAULT"]["enabled_backends"] == "ceph:rbd"
            assert (glance["ceph"]["rbd_store_pool"], glance["ceph"]["rbd_store_user"]) == ("images", "glance")
            assert glance["DEFAULT"]["show_image_direct_url"] == "false"
        else:
            assert cinder["nfs"]["volume_driver"] == "cinder.volume.drivers.nfs.NfsDriver"
            assert glance["DEFAULT"]["enabled_backends"] == "local:file"


def site_b_backend() -> str:
    """Site B's backend, from sites.yml (or, before the devcloud is up, what `make devcloud-up` would choose)."""
    try:
        return yaml.safe_load(SITES_YML.read_text())["sites"]["site-b"]["backend"]
    except (OSError, KeyError, TypeError, yaml.YAMLError):
        return os.environ.get("DEVCLOUD_SITE_B_BACKEND") or "rbd"


if site_b_backend() == "rbd":

    def test_rbd_backup_at_b_in_snapshot_mode_restores_at_a_byte_identical(site_a, site_b):
        """Backup at B (RBD) through a snapshot and its copy-on-write clone, into the gateway's S3 bank;
        restore at A (NFS). The temporaries go in the order RBD needs: the clone before its snapshot
        (else Cinder flattens the clone first, or refuses: SnapshotIsBusy)."""
        tag = f"e2e-ceph-b2a-{uuid.uuid4().hex[:8]}"
        data, expected = payload(31)
        bank = dict(rgw_configs()["rgw_s3"], bucket=unique_name(tag), create=True)
        volume_log = load_sites()["sites"]["site-b"]["logs"]["cinder-volume"]
        log_offset = os.path.getsize(volume_log)
        source, image = make_volume(site_b, tag, data)
        restored_id = None
        try:
            # Cinder cloned the Glance image (copy-on-write), as a production RBD cloud does.
            parent = rbd_json("info", f"volumes/volume-{source.id}").get("parent") or {}
            assert (parent.get("pool"), parent.get("image")) == ("images", image.id), parent
            backup = run_module("volume_glance_backup", {"cloud": "site-b", "volume": source.id, "bank": bank, "backup_name": tag,
                                                         "copy_mode": "snapshot", "encryption_passphrase": PASSPHRASE}, env=module_env())
            assert not backup.failed, backup.result
            temps = backup["temporaries"]
            kinds = [entry["type"] for entry in temps["removed"]]
            assert sorted(kinds) == ["image", "snapshot", "volume"] and temps["left_behind"] == [], temps
            assert kinds.index("volume") < kinds.index("snapshot"), f"the clone must go before its snapshot: {kinds}"
            snapshot_id = next(entry["id"] for entry in temps["removed"] if entry["type"] == "snapshot")
            flattened = [line for line in log_lines_from(volume_log, log_offset) if f"snapshot-{snapshot_id}" in line and "dependent" in line]
            assert flattened == [], f"Cinder flattened the clone of the backup's snapshot (removed too early): {flattened}"

            restore = run_module("volume_glance_restore", {"cloud": "site-a", "bank": dict(bank, create=False), "backup": tag,
                                                           "restore_name": tag, "encryption_passphrase": PASSPHRASE}, env=module_env())
            assert not restore.failed, restore.result
            restored_id = restore["volume"]["id"]
            assert volume_sha256("site-a", restored_id) == (expected, GIB)
            assert volume_sha256("site-b", source.id) == (expected, GIB)
        finally:
            if restored_id:
                remove_volume_then_image(site_a, restored_id, None)
            remove_volume_then_image(site_b, source.id, image.id)
            remove_bank_bucket(bank)

    def test_rbd_backup_at_a_restores_at_b_byte_identical(site_a, site_b):
        """Backup at A (NFS) into the gateway's Swift bank; restore at B (RBD): the bytes in the RBD pool
        are the source's, the volume has the site's default type and no temporary is left."""
        tag = f"e2e-ceph-a2b-{uuid.uuid4().hex[:8]}"
        data, expected = payload(32)
        bank = dict(rgw_configs()["rgw_swift"], container=unique_name(tag), create=True)
        source, image = make_volume(site_a, tag, data)
        restored_id = None
        try:
            backup_at_site_a(source.id, bank, tag)
            restore_args = {"cloud": "site-b", "bank": dict(bank, create=False), "backup": tag, "restore_name": tag}
            # An admin sees that Glance keeps images in RBD, but 24 MiB of data in 1 GiB stays qcow2 (raw would carry the zeros).
            planned = run_module("volume_glance_restore", dict(restore_args, cloud=load_sites()["sites"]["site-b"]["admin_cloud"]),
                                 check=True, env=module_env())
            assert planned["transfer_format"]["format"] == "qcow2", planned.result
            share = re.search(r"the data is only (\d+)% of the volume", planned["transfer_format"]["reason"])
            assert "Ceph RBD" in planned["transfer_format"]["reason"] and share and int(share.group(1)) <= 3, planned["transfer_format"]
            restore = run_module("volume_glance_restore", restore_args, env=module_env())
            assert not restore.failed, restore.result
            # The member user cannot see Glance's store types: auto stays qcow2 and says how to get the clone.
            assert restore["transfer_format"]["format"] == "qcow2" and "transfer_format raw" in restore["transfer_format"]["reason"]
            restored_id = restore["volume"]["id"]
            assert site_b.image.find_image(restore["image_id"]) is None, "the restore image is left"
            assert [item for item in find_orphaned_temporaries(site_b) if item.get("backup") == tag] == []
            restored = site_b.block_storage.get_volume(restored_id)
            assert restored.volume_type == load_sites()["sites"]["site-b"]["volume_types"]["default"]
            assert rbd_json("info", f"volumes/volume-{restored_id}")["size"] == GIB
            assert volume_sha256("site-b", restored_id) == (expected, GIB)
        finally:
            if restored_id:
                remove_volume_then_image(site_b, restored_id, None)
            remove_volume_then_image(site_a, source.id, image.id)
            remove_bank_bucket(bank)

    def test_rbd_raw_restore_keeps_the_image_as_the_clones_parent_until_the_volume_goes(site_a, site_b):
        """A raw restore at B: Cinder clones the restore image, so Glance cannot delete it. The restore
        finishes at once (no retry until its deadline), says so, keeps the image marked as the volume's
        parent; the cleanup module leaves it while the volume exists and removes it after."""
        tag = f"e2e-ceph-raw-{uuid.uuid4().hex[:8]}"
        data, expected = payload(33)
        bank = dict(rgw_configs()["rgw_s3"], bucket=unique_name(tag), create=True)
        source, image = make_volume(site_a, tag, data)
        restored_id = parent_id = None
        try:
            backup_at_site_a(source.id, bank, tag)
            restore = run_module("volume_glance_restore", {"cloud": "site-b", "bank": dict(bank, create=False), "backup": tag,
                                                           "restore_name": tag, "transfer_format": "raw", "timeout": 600},
                                 env=module_env())
            assert not restore.failed, restore.result
            restored_id = restore["volume"]["id"]
            parent_id = restore["image_id"]
            assert restore["parent_image"] == {"id": parent_id, "parent_of": restored_id}, restore.result
            assert "stays as the parent of volume" in restore.stdout + restore.stderr + str(restore.result.get("warnings")), restore.result
            # Before, the refused delete was retried until the removal deadline and the restore then failed.
            parent = rbd_json("info", f"volumes/volume-{restored_id}").get("parent") or {}
            assert (parent.get("pool"), parent.get("image")) == ("images", parent_id), parent
            assert volume_sha256("site-b", restored_id) == (expected, GIB)
            cleanup = {"cloud": "site-b", "backups": [tag]}
            kept = run_module("temporaries_cleanup", cleanup, env=module_env())
            assert not kept.failed and parent_id not in [item["id"] for item in kept["removed"]], kept.result
            assert site_b.image.find_image(parent_id) is not None
            # A drill's cleanup removes the volumes it restored: the parent goes in the same run, after its volume.
            site_b.block_storage.set_volume_metadata(restored_id, openstack_dr_bank_drill=tag)
            removed = run_module("temporaries_cleanup", dict(cleanup, drill_run_id=tag), env=module_env())
            assert not removed.failed, removed.result
            assert [(item["type"], item["id"]) for item in removed["removed"]] == [("volume", restored_id), ("image", parent_id)]
            assert site_b.image.find_image(parent_id) is None
            restored_id = parent_id = None
        finally:
            remove_volume_then_image(site_b, restored_id, parent_id)
            remove_volume_then_image(site_a, source.id, image.id)
            remove_bank_bucket(bank)

    def test_auto_restores_a_dense_backup_raw_as_a_clone_where_glance_keeps_images_in_rbd(site_a, devcloud_connect, tmp_path):
        """An admin's auto restore at B of a volume that is 40 % data: Glance's stores say RBD, so the image
        goes up raw and the volume is its copy-on-write clone, byte-identical; a member is told why not."""
        tag = f"e2e-ceph-auto-{uuid.uuid4().hex[:8]}"
        data = os.urandom(400 * MIB)
        expected = hashlib.sha256(data + bytes(GIB - len(data))).hexdigest()
        bank = {"type": "file", "path": str(tmp_path / "bank"), "create": True}
        site_b_admin = devcloud_connect(load_sites()["sites"]["site-b"]["admin_cloud"])
        source, image = make_volume(site_a, tag, data)
        restored_id = parent_id = None
        try:
            backup_at_site_a(source.id, bank, tag)
            restore_args = {"bank": dict(bank, create=False), "backup": tag, "restore_name": tag}
            member = run_module("volume_glance_restore", dict(restore_args, cloud="site-b"), check=True, env=module_env())
            assert member["transfer_format"]["format"] == "qcow2" and "not visible to this user" in member["transfer_format"]["reason"]
            restore = run_module("volume_glance_restore", dict(restore_args, cloud=load_sites()["sites"]["site-b"]["admin_cloud"]),
                                 env=module_env())
            assert not restore.failed, restore.result
            restored_id, parent_id = restore["volume"]["id"], restore["image_id"]
            reason = restore["transfer_format"]["reason"]
            assert restore["transfer_format"]["format"] == "raw" and "copy-on-write clone" in reason and "39% of the volume" in reason, reason
            assert restore["stats"]["glance"] == {"bytes_uploaded": GIB, "transfer_format": "raw"}
            # Cinder cloned the image: the volume's RBD parent is the restore image, which stays while the volume lives.
            assert restore["parent_image"] == {"id": parent_id, "parent_of": restored_id}, restore.result
            parent = rbd_json("info", f"volumes/volume-{restored_id}").get("parent") or {}
            assert (parent.get("pool"), parent.get("image")) == ("images", parent_id), parent
            assert volume_sha256("site-b", restored_id) == (expected, GIB)
        finally:
            remove_volume_then_image(site_b_admin, restored_id, parent_id)
            remove_volume_then_image(site_a, source.id, image.id)


def test_ceph_is_healthy_and_listens_on_127_0_0_1_in_its_own_range():
    """One monitor, manager, OSD and gateway, HEALTH_OK; the OSD's addresses are 127.0.0.1 in Ceph's port range."""
    ceph = load_sites()["ceph"]
    status = json.loads(subprocess.run(["ceph", "status", "--format", "json"], capture_output=True, text=True, env=ceph_env(),
                                       timeout=60, check=True).stdout)
    assert status["health"]["status"] == "HEALTH_OK", status["health"]
    assert status["osdmap"]["num_up_osds"] == 1 and status["mgrmap"]["available"]
    assert re.fullmatch(r"\[v2:127\.0\.0\.1:\d+,v1:127\.0\.0\.1:\d+\]", ceph["mon"])
    osd = json.loads(subprocess.run(["ceph", "osd", "dump", "--format", "json"], capture_output=True, text=True, env=ceph_env(),
                                    timeout=60, check=True).stdout)["osds"][0]
    addresses = [entry["addr"] for key in ("public_addrs", "cluster_addrs") for entry in osd[key]["addrvec"]]
    low, high = ceph["ports"]["messenger"]
    assert addresses and all(addr.startswith("127.0.0.1:") and low <= int(addr.rsplit(":", 1)[1]) <= high for addr in addresses), addresses
