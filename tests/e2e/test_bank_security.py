# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The bank against a killed run and a curious reader, on the real servers.

A SIGKILLed backup (the whole ``ansible`` process tree, as a supervisor stops a job) leaves its lock;
the next deletion on the same host breaks it at once. An encrypted bank shows no name, metadata or
image hash in any object, after a backup and while one is interrupted, on Swift (its own API and S3)
and on moto; without the passphrase ``bank_backup_info`` fails, and a version 1 manifest still reads.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time

import pytest

from ansible_collections.openstack_dr.bank.plugins.module_utils._bank import open_bank
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.layout import manifest_key
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.store import STALLED, BackupStore
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.verify import DATA, verify_backup

from bank_fixtures import with_endpoint  # pylint: disable=wrong-import-order
from devcloud_fixtures import load_sites, wait_for, wait_for_gone, wait_for_status  # pylint: disable=wrong-import-order
from fault_proxy import FaultProxy  # pylint: disable=wrong-import-order
from module_runner import run_module, signal_process_tree, start_module  # pylint: disable=wrong-import-order

MIB = 1024 * 1024
STEP_TIMEOUT = 600
PASSPHRASE = "bank security passphrase"
TEST_TAG = {"openstack_dr_bank_e2e": "test_bank_security"}
# What a SIGKILL to a successful prune may take on this shared 2-core host: one ansible run, most of it
# start-up (4 s idle, 25 s under a load of 14). The lock_timeout of 0 is what proves there was no wait.
PRUNE_WITHIN = 60.0


@pytest.fixture(scope="module", name="small_volume")
def fixture_small_volume(site_a, tmp_path_factory):
    """A 1 GiB volume at site A whose first 32 MiB are random: 32 data chunks at 1 MiB."""
    path = tmp_path_factory.mktemp("security") / "source.raw"
    path.write_bytes(random.Random(97).randbytes(32 * MIB))
    with open(path, "rb") as data:
        image = site_a.image.create_image(name="e2e-security-source", data=data, disk_format="raw", container_format="bare",
                                          visibility="private", validate_checksum=False, **TEST_TAG)
    path.unlink()
    try:
        wait_for_status(lambda: site_a.image.get_image(image.id), "active", STEP_TIMEOUT, "source image",
                        failures=("killed", "deleted"))
        volume = site_a.block_storage.create_volume(name="e2e-security-source", size=1, image_id=image.id, metadata=TEST_TAG)
        volume = wait_for_status(lambda: site_a.block_storage.get_volume(volume.id), "available", STEP_TIMEOUT, "source volume")
    finally:
        site_a.image.delete_image(image.id, ignore_missing=True)
    yield volume
    site_a.block_storage.delete_volume(volume.id, ignore_missing=True)
    wait_for_gone(lambda: site_a.block_storage.get_volume(volume.id), STEP_TIMEOUT, "source volume")


def test_a_sigkilled_backup_does_not_block_a_prune_on_the_same_host(small_volume, make_bank_config):
    sites = load_sites()
    env = {"OS_CLIENT_CONFIG_FILE": sites["clouds_yaml"]}
    name = "e2e-security-sigkill"
    bank = make_bank_config("swift_s3", "security-sigkill")
    args = {"cloud": "site-a", "volume": small_volume.id, "backup_name": name, "copy_mode": "direct", "chunk_size": 1,
            "parallelism": 1, "encryption_passphrase": PASSPHRASE}
    try:
        with open_bank(bank) as direct, FaultProxy(bank["endpoint_url"]) as proxy:
            # Each chunk upload waits half a second, so the stream lasts long enough to be killed in the middle.
            proxy.fail_always(fault="delay", method="PUT", path_contains="/chunks/", delay=0.5)
            with tempfile.TemporaryDirectory() as tree:
                process = start_module("volume_glance_backup", dict(args, bank=with_endpoint(bank, proxy.url)), tree, env=env)
                try:
                    wait_for(lambda: proxy.count(method="PUT", path_contains="/chunks/") >= 5 or process.poll() is not None,
                             STEP_TIMEOUT, "the backup to upload five chunks", interval=0.2)
                    assert process.poll() is None, f"the backup ended before it could be killed: {process.communicate()}"
                    signal_process_tree(process.pid, signal.SIGKILL)
                    killed_at = time.monotonic()
                    process.communicate(timeout=STEP_TIMEOUT)
                finally:
                    if process.poll() is None:
                        signal_process_tree(process.pid, signal.SIGKILL)
            proxy.clear()
            (left,) = [entry.key for entry in direct.list("locks/")]
            lock = json.loads(direct.get(left))
            # An encrypted bank's lock names the backup by id: locks are read without the passphrase.
            assert lock["kind"] == "shared" and name not in lock["operation"] and lock["boot_id"], lock

            # lock_timeout 0: one try, so the dead holder's lock must be broken at once, not waited out.
            prune_args = {"bank": dict(bank, create=False), "prune": True, "encryption_passphrase": PASSPHRASE, "lock_timeout": 0}
            pruned = run_module("bank_delete", prune_args, env=env)
            seconds = time.monotonic() - killed_at
            assert not pruned.failed, pruned.result
            assert pruned["pruned"]["progress_objects"] == 1 and pruned["pruned"]["chunks"] >= 3, pruned.result
            # The operator hears of it: the broken lock is a warning of the run that broke it.
            assert "Broke the stale bank lock" in pruned.stdout + pruned.stderr + str(pruned.result.get("warnings")), pruned.result
            assert not list(direct.list("locks/")) and not list(direct.list("chunks/"))
            started = time.monotonic()
            assert not run_module("bank_delete", prune_args, env=env)["changed"]
            print(f"\nSIGKILL to a successful prune: {seconds:.1f} s (a prune with nothing to do: "
                  f"{time.monotonic() - started:.1f} s)")
            assert seconds < PRUNE_WITHIN
    finally:
        cleaned = run_module("temporaries_cleanup", {"cloud": "site-a", "backups": [name]}, env=env)
        assert not cleaned.failed, cleaned.result


def test_a_killed_backup_is_listed_as_stalled_at_once(make_bank_config):
    """The progress object names its writer: a listing on the same host sees that process is gone."""
    bank = make_bank_config("moto", "security-stalled")
    script = (
        "import sys, time\n"
        "from ansible_collections.openstack_dr.bank.plugins.module_utils._bank import open_bank\n"
        "from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.store import BackupStore\n"
        f"store = BackupStore(open_bank({bank!r}), {PASSPHRASE!r})\n"
        "def source():\n"
        "    yield bytes(range(256)) * 8192\n"
        "    print('streaming', flush=True)\n"
        "    time.sleep(600)\n"
        "    yield b''\n"
        "store.backup_writer('e2e-killed-writer', chunk_size=1048576).write(source())\n"
    )
    writer = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                              env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    try:
        assert writer.stdout.readline().strip() == "streaming"
        with open_bank(dict(bank, create=False)) as engine_bank:
            store = BackupStore(engine_bank, PASSPHRASE)
            assert [listed.status for listed in store.list_backups()] == ["in_progress"]
            writer.kill()
            writer.wait(STEP_TIMEOUT)
            assert [listed.status for listed in store.list_backups()] == [STALLED]
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait(STEP_TIMEOUT)


# -- encrypted metadata -------------------------------------------------------------------------------

NAME = "e2e-payroll-2026-12-01"
DESCRIPTION = "nightly payroll ledger backup"
SOURCE = {"volume": {"id": "c0ffee00-payroll-volume", "name": "payroll-ledger-volume", "volume_type": "gold-a",
                     "description": "ledger of the payroll", "metadata": {"owner": "finance-zeta", "cost_center": "CC-9911"}},
          "image": {"os_hash_algo": "sha512", "os_hash_value": "f00dface-glance-hash"}}


def needles(data: bytes) -> dict[str, bytes]:
    wanted = {"backup name": NAME.encode(), "description": DESCRIPTION.encode()}
    volume = SOURCE["volume"]
    wanted.update({f"volume {key}": str(volume[key]).encode() for key in ("id", "name", "description")})
    wanted.update({f"metadata {key}": value.encode() for key, value in volume["metadata"].items()})
    wanted["glance hash"] = SOURCE["image"]["os_hash_value"].encode()
    for algorithm in ("sha256", "sha512"):
        digest = hashlib.new(algorithm, data).digest()
        wanted.update({f"{algorithm} hex": digest.hex().encode(), f"{algorithm} HEX": digest.hex().upper().encode(),
                       f"{algorithm} raw": digest, f"{algorithm} base64": base64.b64encode(digest)})
    return wanted


def scan(bank, wanted: dict[str, bytes]) -> tuple[int, dict[str, list[str]]]:
    """How many objects the bank holds, and which needle is in which object (its key or its bytes)."""
    found: dict[str, list[str]] = {}
    count = 0
    for entry in bank.list(""):
        count += 1
        blob = entry.key.encode() + b"\0" + bank.get(entry.key)
        for what, needle in wanted.items():
            if needle in blob:
                found.setdefault(what, []).append(entry.key)
    return count, found


@pytest.mark.parametrize("backend", ("swift", "swift_s3", "moto"))
def test_no_object_of_an_encrypted_bank_shows_names_metadata_or_hashes(backend, make_bank_config):
    data = random.Random(11).randbytes(3 * MIB + 17) + b"payroll rows " * 50000
    wanted = needles(data)
    config = make_bank_config(backend, "security-scan")
    with open_bank(config) as bank:
        store = BackupStore(bank, PASSPHRASE)
        # Interrupted twice: once still running (lock and progress in the bank), once failed.
        started, finish = threading.Event(), threading.Event()

        def slow_source():
            yield data[:2 * MIB]
            started.set()
            assert finish.wait(120)
            yield data[2 * MIB:]

        writer = store.backup_writer(NAME, description=DESCRIPTION, source=SOURCE, chunk_size=MIB, progress_interval=0)
        thread = threading.Thread(target=writer.write, args=(slow_source(),),
                                  kwargs={"expected_size": len(data), "expected_hash": ("sha512", hashlib.sha512(data).hexdigest())})
        thread.start()
        try:
            assert started.wait(120)
            count, found = scan(bank, wanted)
            assert found == {} and count >= 4, (count, found)  # bank.json, a lock, the progress, chunks
            assert [entry.key for entry in bank.list("locks/")]
        finally:
            finish.set()
            thread.join(120)

        def cut_source():
            yield data[:MIB]
            raise ConnectionResetError("the image download was cut")

        with pytest.raises(ConnectionResetError):
            store.backup_writer(NAME + "-cut", description=DESCRIPTION, source=SOURCE, chunk_size=MIB).write(cut_source())
        count, found = scan(bank, wanted)
        assert found == {} and count >= 6, (count, found)

        # With the passphrase, every reader still reads: listing, restore, verification.
        reopened = BackupStore(bank, PASSPHRASE)
        listed = {entry.backup_name: entry for entry in reopened.list_backups()}
        assert listed[NAME].status == "complete" and listed[NAME + "-cut"].status == "failed"
        manifest = listed[NAME].manifest
        assert manifest.hashes["sha256"] == hashlib.sha256(data).hexdigest() and manifest.source == SOURCE
        with reopened.open_backup(NAME) as reader:
            assert hashlib.sha256(reader.read(len(data) + 1)).hexdigest() == manifest.hashes["sha256"]
        assert verify_backup(reopened, NAME, DATA).ok

        # A version 1 manifest (plain JSON, written before documents were sealed) still reads.
        key = manifest_key(manifest.backup_id)
        bank.put(key, manifest.to_bytes())
        old = BackupStore(bank, PASSPHRASE).load_manifest(NAME)
        assert old.document["format_version"] == 1 and old.hashes == manifest.hashes
        assert verify_backup(BackupStore(bank, PASSPHRASE), NAME, DATA).ok


def test_bank_backup_info_on_an_encrypted_bank_needs_its_passphrase(make_bank_config):
    config = make_bank_config("swift_s3", "security-info")
    with open_bank(config) as bank:
        store = BackupStore(bank, PASSPHRASE)
        store.backup_writer(NAME, description=DESCRIPTION, source=SOURCE, chunk_size=MIB).write([random.Random(3).randbytes(MIB)])
    bank = dict(config, create=False)
    refused = run_module("bank_backup_info", {"bank": bank})
    assert refused.failed and "is encrypted: the option encryption_passphrase is required" in refused["msg"], refused.result
    assert NAME not in json.dumps(refused.result)
    wrong = run_module("bank_backup_info", {"bank": bank, "encryption_passphrase": "not the passphrase"})
    assert wrong.failed and "Wrong encryption passphrase" in wrong["msg"], wrong.result
    listed = run_module("bank_backup_info", {"bank": bank, "encryption_passphrase": PASSPHRASE, "verify": "data"})
    assert not listed.failed, listed.result
    (entry,) = listed["backups"]
    assert (entry["name"], entry["description"], entry["status"]) == (NAME, DESCRIPTION, "complete")
    assert entry["source_volume"]["name"] == "payroll-ledger-volume" and entry["verification"]["ok"]
