# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""bank_sync end to end: every ordered pair of bank types on real servers, a resume after a kill, a corrupt
source chunk, check mode against the real run, an encrypted replica, and a restore at site B from the
replica with the primary gone.

The module runs for real through ``ansible``; the backups it copies are small synthetic ones written
through the engine (1 MiB chunks), except in the restore test, which backs a devcloud volume up.
S3 is moto (another server than Swift), or Swift's S3 API where real S3 authentication matters; the Ceph
Object Gateway (RGW) serves both APIs, each as a source and as a target, and an Object Lock target (RGW and
moto).
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import random
import signal
import subprocess
import sys
import tempfile
import typing as t

import pytest
import yaml

from ansible_collections.openstack_dr.bank.plugins.module_utils._bank import open_bank
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.documents import parse_utc
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.layout import BANK_CONFIG_KEY, CHUNKS_PREFIX, chunk_key, manifest_key
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.store import BackupStore
from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import BankError

from bank_fixtures import with_endpoint  # pylint: disable=wrong-import-order
from devcloud_fixtures import connect, load_sites, wait_for  # pylint: disable=wrong-import-order
from drill_helpers import create_small_volume, delete_volume, unique  # pylint: disable=wrong-import-order
from fault_proxy import FaultProxy  # pylint: disable=wrong-import-order
from module_runner import run_module, signal_process_tree, start_module  # pylint: disable=wrong-import-order
from test_modules import volume_sha256  # pylint: disable=wrong-import-order
from test_object_lock import client, fixture_locked_bucket, locked  # noqa: F401 pylint: disable=wrong-import-order,unused-import

MIB = 1024 * 1024
GIB = 1024 * MIB
PASSPHRASE = "replica passphrase that must never be printed"
REPO = pathlib.Path(__file__).resolve().parents[2]
# A bank type -> the server of bank_fixtures that serves it.
SERVERS = {"file": "file", "s3": "moto", "swift": "swift"}
# Every ordered pair of bank types, then RGW's S3 and Swift APIs each once as a source and once as a target:
# two more runs (RGW is the slowest server here, 25-40 s a run), not a matrix five servers wide.
PAIRS = [(SERVERS[source], SERVERS[target]) for source in SERVERS for target in SERVERS] + [
    ("rgw_s3", "rgw_swift"), ("rgw_swift", "rgw_s3")]
LABELS = {server: bank_type for bank_type, server in SERVERS.items()}


def payload(seed: int, mib: int) -> bytes:
    return random.Random(seed).randbytes(mib * MIB)


def store_of(config: dict, passphrase: str | None = None, create: bool = False) -> BackupStore:
    return BackupStore(open_bank(dict(config, create=create)), passphrase)


def write_backup(store: BackupStore, name: str, volume: str, data: bytes) -> None:
    writer = store.backup_writer(name, source={"volume": {"id": f"id-{volume}", "name": volume}}, chunk_size=MIB, parallelism=2)
    writer.write(iter([data]), expected_size=len(data))


def chunk_keys(store: BackupStore) -> set[str]:
    return {entry.key for entry in store.bank.list(CHUNKS_PREFIX)}


def read_back(store: BackupStore, name: str) -> bytes:
    with store.open_backup(name) as reader:
        return reader.read()


def flip_a_byte(store: BackupStore, key: str) -> None:
    blob = bytearray(store.bank.get(key))
    blob[len(blob) // 2] ^= 0x01
    store.bank.put(key, bytes(blob))


def sync_args(source: dict, target: dict, passphrase: str | None = None, **extra: t.Any) -> dict:
    args = {"source_bank": dict(source, create=False), "target_bank": target, "parallelism": 3, "lock_timeout": 60}
    if passphrase:
        args["encryption_passphrase"] = passphrase
    args.update(extra)
    return args


def assert_replica(source: BackupStore, target: BackupStore, names: t.Iterable[str]) -> None:
    """The target holds the source's configuration and these backups' manifests byte for byte, and restores them."""
    assert target.bank.get(BANK_CONFIG_KEY) == source.bank.get(BANK_CONFIG_KEY)
    for name in names:
        key = manifest_key(source.backup_id_for(name))
        assert target.bank.get(key) == source.bank.get(key), name
        assert read_back(target, name) == read_back(source, name), name


def assert_no_gap(target: BackupStore) -> None:
    """Every complete-looking backup of the target has every chunk."""
    present = chunk_keys(target)
    for listed in target.list_backups():
        if listed.status == "complete":
            missing = {chunk_key(digest) for digest in listed.manifest.chunk_map.unique_data_digests()} - present
            assert not missing, f"{listed.backup_name} is complete in the target but lacks {len(missing)} chunks"


@pytest.mark.parametrize(("source_server", "target_server"), PAIRS,
                         ids=[f"{LABELS.get(source, source)}-to-{LABELS.get(target, target)}" for source, target in PAIRS])
def test_sync_between_bank_types(make_bank_config, source_server, target_server):
    """Check mode predicts the copy, the copy is a byte-exact replica, a rerun changes nothing, and a corrupt
    source chunk is reported and not copied while the other new backup is."""
    source_config = make_bank_config(source_server, f"sync-src-{source_server}")
    target_config = make_bank_config(target_server, f"sync-dst-{target_server}")
    source = store_of(source_config, create=True)
    shared = payload(1, 2)
    write_backup(source, "db-1", "db", shared + payload(2, 1) + bytes(MIB))
    write_backup(source, "db-2", "db", shared + payload(3, 1))
    write_backup(source, "web-1", "web", payload(4, 2))

    predicted = run_module("bank_sync", sync_args(source_config, target_config), check=True)
    assert not predicted.failed, predicted.result
    copied = run_module("bank_sync", sync_args(source_config, target_config))
    assert not copied.failed, copied.result
    assert copied["changed"] and predicted["changed"]
    for field in ("copied", "counts", "volumes", "bank_config"):
        assert predicted[field] == copied[field], field
    assert sorted(entry["name"] for entry in copied["copied"]) == ["db-1", "db-2", "web-1"]
    # 2 shared + 1 + 1 + 2 distinct chunks; the zero chunk is never stored.
    assert {key: copied["counts"][key] for key in ("chunks_copied", "chunks_skipped", "chunks_corrupt")} == \
        {"chunks_copied": 6, "chunks_skipped": 0, "chunks_corrupt": 0}
    target = store_of(target_config)
    assert_replica(source, target, ["db-1", "db-2", "web-1"])
    assert chunk_keys(target) == chunk_keys(source)
    assert copied["counts"]["bytes_copied"] == sum(entry.size for entry in target.bank.list(CHUNKS_PREFIX))
    assert [(item["source_volume"]["name"], item["lag_seconds"], item["in_sync"]) for item in copied["volumes"]] == \
        [("db", 0, True), ("web", 0, True)]

    again = run_module("bank_sync", sync_args(source_config, target_config))
    assert not again.failed and not again["changed"], again.result
    assert (again["counts"]["backups_present"], again["counts"]["chunks_copied"], again["copied"]) == (3, 0, [])

    write_backup(source, "web-2", "web", payload(5, 2))
    write_backup(source, "db-3", "db", shared + payload(6, 1))
    damaged = sorted(chunk_key(digest) for digest in source.load_manifest("web-2").chunk_map.unique_data_digests())[0]
    flip_a_byte(source, damaged)
    partial = run_module("bank_sync", sync_args(source_config, target_config))
    assert partial.failed and partial["error_type"] == "IntegrityError", partial.result
    assert "web-2" in partial["msg"]
    assert [entry["name"] for entry in partial["copied"]] == ["db-3"]
    assert [entry["name"] for entry in partial["damaged"]] == ["web-2"]
    assert [bad["chunk"] for bad in partial["damaged"][0]["chunks"]] == [damaged.rsplit("/", 1)[1]]
    assert (partial["counts"]["chunks_corrupt"], partial["counts"]["chunks_copied"]) == (1, 2)
    assert not target.bank.exists(damaged)
    assert target.load_manifest("web-2") is None
    assert_replica(source, target, ["db-3"])
    assert_no_gap(target)
    web = {item["source_volume"]["name"]: item for item in partial["volumes"]}["web"]
    assert not web["in_sync"] and web["target_newest"]["name"] == "web-1"


def test_a_killed_sync_resumes_copying_only_what_is_missing(make_bank_config):
    """SIGKILL to the module's process tree mid-copy: the target holds no complete-looking backup with a gap, the
    rerun copies only the missing chunks, and a third run changes nothing."""
    source_config = make_bank_config("swift", "sync-kill-src")
    target_config = make_bank_config("moto", "sync-kill-dst")
    source = store_of(source_config, create=True)
    for index in range(3):
        write_backup(source, f"big-{index}", "big", payload(10 + index, 8))
    total = len(chunk_keys(source))
    with FaultProxy(source_config["cloud"]["auth"]["auth_url"].rsplit("/auth", 1)[0]) as proxy:
        # Slow chunk reads make the copy last long enough to be killed in the middle.
        proxy.fail_always(fault="delay", method="GET", path_contains="/chunks/", delay=0.3)
        slow_source = with_endpoint(source_config, proxy.url)
        with tempfile.TemporaryDirectory() as tree:
            process = start_module("bank_sync", sync_args(slow_source, target_config, parallelism=2), tree)
            try:
                wait_for(lambda: process.poll() is not None or chunk_count(target_config) >= 4, 120, "some chunks copied",
                         interval=0.1)
                assert process.poll() is None, f"the sync ended before it could be killed: {process.communicate()}"
                signal_process_tree(process.pid, signal.SIGKILL)
                process.wait(timeout=60)
            finally:
                if process.poll() is None:
                    signal_process_tree(process.pid, signal.SIGKILL)
                    process.wait(timeout=60)
    target = store_of(target_config)
    left = chunk_keys(target)
    assert 4 <= len(left) < total
    assert_no_gap(target)
    resumed = run_module("bank_sync", sync_args(source_config, target_config))
    assert not resumed.failed and resumed["changed"], resumed.result
    assert resumed["counts"]["chunks_copied"] == total - len(left)
    assert resumed["counts"]["chunks_skipped"] == len(left)
    assert_replica(source, target, [f"big-{index}" for index in range(3)])
    third = run_module("bank_sync", sync_args(source_config, target_config))
    assert not third.failed and not third["changed"] and third["counts"]["chunks_copied"] == 0, third.result


def chunk_count(config: dict) -> int:
    """Chunks in the bank so far; 0 while its bucket or container does not exist yet."""
    try:
        with open_bank(dict(config, create=False, max_attempts=1)) as opened:
            return sum(1 for dummy in opened.list(CHUNKS_PREFIX))
    except BankError:
        return 0


def test_an_encrypted_replica_opens_with_the_same_passphrase_and_follows_deletions(make_bank_config):
    source_config = make_bank_config("swift_s3", "sync-enc-src")
    target_config = make_bank_config("swift", "sync-enc-dst")
    source = store_of(source_config, PASSPHRASE, create=True)
    write_backup(source, "vault-1", "vault", payload(20, 3))
    write_backup(source, "vault-2", "vault", payload(21, 2))
    copied = run_module("bank_sync", sync_args(source_config, target_config, PASSPHRASE))
    assert not copied.failed and copied["counts"]["backups_copied"] == 2, copied.result
    assert PASSPHRASE not in json.dumps(copied.result) + copied.stdout + copied.stderr
    assert_replica(source, store_of(target_config, PASSPHRASE), ["vault-1", "vault-2"])
    listed = run_module("bank_backup_info", {"bank": dict(target_config, create=False), "encryption_passphrase": PASSPHRASE,
                                             "verify": "data"})
    assert not listed.failed and sorted(entry["name"] for entry in listed["backups"]) == ["vault-1", "vault-2"], listed.result
    assert all(entry["verification"]["ok"] for entry in listed["backups"])
    wrong = run_module("bank_backup_info", {"bank": dict(target_config, create=False), "encryption_passphrase": "guess"})
    assert wrong.failed and "Wrong encryption passphrase" in wrong["msg"]
    refused = run_module("bank_sync", sync_args(source_config, target_config))
    assert refused.failed and "encryption_passphrase is required" in refused["msg"]

    deleted = run_module("bank_delete", {"bank": dict(source_config, create=False), "encryption_passphrase": PASSPHRASE,
                                         "backup": "vault-1", "prune": True})
    assert not deleted.failed, deleted.result
    args = sync_args(source_config, target_config, PASSPHRASE, follow_deletions=True)
    predicted = run_module("bank_sync", args, check=True)
    following = run_module("bank_sync", args)
    assert not following.failed and following["changed"], following.result
    assert predicted["deleted"] == following["deleted"] and predicted["pruned"] == following["pruned"]
    assert [entry["name"] for entry in following["deleted"]] == ["vault-1"] and following["pruned"]["chunks"] == 3
    target = store_of(target_config, PASSPHRASE)
    assert target.load_manifest("vault-1") is None and chunk_keys(target) == chunk_keys(source)
    assert not run_module("bank_sync", args)["changed"]


def test_a_target_holding_another_bank_is_refused(make_bank_config):
    source_config, target_config = make_bank_config("file", "sync-mine"), make_bank_config("moto", "sync-other")
    write_backup(store_of(source_config, PASSPHRASE, create=True), "mine", "vol", payload(30, 1))
    other = store_of(target_config, PASSPHRASE, create=True)
    write_backup(other, "theirs", "vol", payload(31, 1))
    before = {entry.key for entry in other.bank.list()}
    refused = run_module("bank_sync", sync_args(source_config, target_config, PASSPHRASE))
    assert refused.failed and "holds another bank" in refused["msg"], refused.result
    assert {entry.key for entry in other.bank.list() if not entry.key.startswith("locks/")} == \
        {key for key in before if not key.startswith("locks/")}


def objects_of(manifest: t.Any) -> list[str]:
    return [manifest_key(manifest.backup_id)] + sorted(chunk_key(digest) for digest in manifest.chunk_map.unique_data_digests())


def assert_locked_until(config: dict, keys: list[str], date: float) -> None:
    s3 = client(config)
    for key in keys:
        head = s3.head_object(Bucket=config["bucket"], Key=key)
        assert head["ObjectLockMode"] == "GOVERNANCE", key
        assert head["ObjectLockRetainUntilDate"].timestamp() >= date, key


def test_a_sync_into_an_object_lock_bank_locks_what_it_copies_and_extends_what_it_reuses(make_bank_config, locked_bucket):
    """Into a bucket with Object Lock (RGW, moto): every object copied is locked until the backup's date plus the
    target's days, the replica's manifest says so, verification and bank_delete there honour it, and a newer
    backup's sync extends the chunks it reuses."""
    source_config = make_bank_config("file", "sync-src-plain")
    target_config = locked(locked_bucket["owner"])
    source = store_of(source_config, create=True)
    shared = payload(40, 2)
    write_backup(source, "db-1", "db", shared + payload(41, 1))
    copied = run_module("bank_sync", sync_args(source_config, target_config))
    assert not copied.failed and copied["counts"]["backups_copied"] == 1, copied.result
    target = BackupStore(open_bank(target_config))
    first = target.load_manifest("db-1")
    assert parse_utc(first.document["protected_until"]) == parse_utc(first.created_at) + 86400
    assert first.document["object_lock"] == {"mode": "governance", "days": 1, "extension_days": 0}
    assert_locked_until(target_config, objects_of(first), parse_utc(first.document["protected_until"]))
    verified = run_module("bank_backup_info", {"bank": target_config, "backup": "db-1", "verify": "presence"})
    verification = verified["backups"][0]["verification"]
    assert verification["ok"] and verification["checked_locks"] == 4, verification
    kept = run_module("bank_delete", {"bank": target_config, "backup": "db-1"})
    assert not kept.failed and not kept["changed"], kept.result
    assert kept["deleted"]["protected_until"] == first.document["protected_until"]

    write_backup(source, "db-2", "db", shared + payload(42, 1))  # created after the first sync: a later date
    again = run_module("bank_sync", sync_args(source_config, target_config))
    assert not again.failed and (again["counts"]["chunks_copied"], again["counts"]["chunks_skipped"]) == (1, 2), again.result
    second = target.load_manifest("db-2")
    assert parse_utc(second.document["protected_until"]) > parse_utc(first.document["protected_until"])
    assert_locked_until(target_config, objects_of(second), parse_utc(second.document["protected_until"]))
    assert read_back(target, "db-2") == read_back(source, "db-2")
    unchanged = run_module("bank_sync", sync_args(source_config, target_config))
    assert not unchanged.failed and not unchanged["changed"] and unchanged["counts"]["backups_present"] == 2, unchanged.result

    # The target's days grow: both replicas are locked for too short now, and are locked again (no chunk copied).
    longer = locked(locked_bucket["owner"], object_lock_days=2)
    relocked = run_module("bank_sync", sync_args(source_config, longer))
    assert not relocked.failed and relocked["changed"], relocked.result
    assert (relocked["counts"]["backups_copied"], relocked["counts"]["chunks_copied"]) == (2, 0), relocked.result
    for name in ("db-1", "db-2"):
        replica = BackupStore(open_bank(longer)).load_manifest(name)
        assert parse_utc(replica.document["protected_until"]) >= parse_utc(replica.created_at) + 2 * 86400, name
        assert_locked_until(longer, objects_of(replica), parse_utc(replica.created_at) + 2 * 86400)
    assert not run_module("bank_sync", sync_args(source_config, longer))["changed"]


@pytest.mark.parametrize("locked_bucket", ["moto"], indirect=True)
def test_a_plain_replica_of_an_object_lock_bank_claims_no_lock_and_can_be_deleted(make_bank_config, locked_bucket):
    """From a bucket with Object Lock into a plain bank: the replica's manifest drops the source's date, so
    verification there checks no lock and passes, and bank_delete deletes at once; the source stays protected."""
    source_config = locked(locked_bucket["owner"])
    target_config = make_bank_config("file", "sync-dst-plain")
    source = BackupStore(open_bank(source_config))
    write_backup(source, "db-1", "db", payload(43, 2))
    copied = run_module("bank_sync", sync_args(source_config, target_config))
    assert not copied.failed and copied["counts"]["backups_copied"] == 1, copied.result
    replica = dict(target_config, create=False)
    listed = run_module("bank_backup_info", {"bank": replica, "verify": "presence"})["backups"]
    assert [(entry["name"], entry["protected_until"]) for entry in listed] == [("db-1", None)], listed
    assert listed[0]["verification"]["ok"] and listed[0]["verification"]["checked_locks"] == 0, listed
    assert read_back(store_of(target_config), "db-1") == read_back(source, "db-1")
    deleted = run_module("bank_delete", {"bank": replica, "backup": "db-1", "prune": True})
    assert not deleted.failed and deleted["changed"] and store_of(target_config).load_manifest("db-1") is None, deleted.result
    protected = run_module("bank_backup_info", {"bank": source_config, "backup": "db-1"})["backups"][0]
    assert protected["protected_until"] == source.load_manifest("db-1").document["protected_until"]


def run_playbook(playbook: str, extra: dict, workdir: pathlib.Path, env: dict) -> subprocess.CompletedProcess:
    varsfile = workdir / f"{playbook}-vars.yml"
    varsfile.write_text(yaml.safe_dump(extra))
    varsfile.chmod(0o600)
    command = [str(pathlib.Path(sys.executable).parent / "ansible-playbook"), str(REPO / "playbooks" / f"{playbook}.yml"),
               "-e", f"@{varsfile}", "-e", f"ansible_python_interpreter={sys.executable}"]
    environment = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(REPO / ".cache" / "collections"), ANSIBLE_NOCOLOR="1",
                       ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0", **env)
    return subprocess.run(command, capture_output=True, text=True, env=environment, timeout=1500, check=False, cwd=REPO)


def test_restore_at_site_b_from_the_replica_with_the_primary_gone(make_bank_config, tmp_path):
    """Back up at site A into the primary, replicate with playbooks/sync.yml, delete the primary's bucket, then
    playbooks/restore.yml at site B from the replica: the restored volume is byte for byte the source's."""
    sites = load_sites()
    env = {"OS_CLIENT_CONFIG_FILE": sites["clouds_yaml"]}
    site_a, site_b = connect("site-a", sites), connect("site-b", sites)
    primary = make_bank_config("swift_s3", "sync-primary")
    replica = make_bank_config("swift", "sync-replica")
    name = unique("e2e-sync")
    volume = create_small_volume(site_a, name)
    restored_ids: list[str] = []
    try:
        backed_up = run_module("volume_glance_backup", {"cloud": "site-a", "volume": volume.id, "bank": primary,
                                                        "backup_name": name, "encryption_passphrase": PASSPHRASE}, env=env)
        assert not backed_up.failed, backed_up.result
        expected_sha256 = backed_up["backup"]["hashes"]["sha256"]
        assert expected_sha256 == hashlib.sha256(random.Random(name).randbytes(8 * MIB) + bytes(GIB - 8 * MIB)).hexdigest()

        synced = run_playbook("sync", {"dr_bank": primary, "dr_replica_bank": replica, "dr_encryption_passphrase": PASSPHRASE,
                                       "dr_sync_max_lag_seconds": 3600}, tmp_path, env)
        assert synced.returncode == 0, synced.stdout[-4000:] + synced.stderr[-2000:]
        assert PASSPHRASE not in synced.stdout + synced.stderr

        _delete_bucket(primary)
        unreachable = run_module("bank_backup_info", {"bank": dict(primary, create=False), "encryption_passphrase": PASSPHRASE})
        assert unreachable.failed and "does not exist" in unreachable["msg"], unreachable.result

        restore_name = f"{name}-from-replica"
        restored = run_playbook("restore", {"dr_bank": dict(replica, create=False), "dr_encryption_passphrase": PASSPHRASE,
                                            "dr_site_b_cloud": "site-b",
                                            "dr_restore": [{"source_volume": volume.id, "restore_name": restore_name}]}, tmp_path, env)
        restored_ids = [found.id for found in site_b.block_storage.volumes() if found.name == restore_name]
        assert restored.returncode == 0, restored.stdout[-4000:] + restored.stderr[-2000:]
        assert len(restored_ids) == 1
        assert volume_sha256(site_b, restored_ids[0]) == (expected_sha256, GIB)
    finally:
        for volume_id in restored_ids:
            delete_volume(site_b, volume_id)
        delete_volume(site_a, volume.id)
        site_a.close()
        site_b.close()


def _delete_bucket(config: dict) -> None:
    """Make the primary unreachable for good: every object, then the bucket itself."""
    with open_bank(dict(config, create=False)) as opened:
        opened.delete_many([entry.key for entry in opened.list()])
        opened.client.delete_bucket(Bucket=config["bucket"])  # type: ignore[attr-defined]
