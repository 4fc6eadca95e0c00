# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every bad input refused by name, before anything is created; the playbooks' summaries; a restore's image metadata.

Each row of the table is one task running a module or a role for real against the devcloud and the
bank servers; the rows of one module or role run in one ansible-playbook run, each result
registered, and the sites and banks are compared around that run. Each row asserts: it failed; its
message names the option and the bound; nothing of ours appeared at site A or site B (volumes,
snapshots, images); every object of both banks is unchanged (key, size, sha256). Other suites share
the project, so the resources compared are those that mention this file's run (its suffix, the seed
volume, its backups): whatever a module given these inputs could create carries one of those.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import typing as t

import pytest
import yaml

from ansible_collections.openstack_dr.bank.plugins.module_utils._bank import open_bank
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.layout import backup_id_for_name
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.store import BackupStore

from devcloud_fixtures import connect, load_sites, wait_for_gone, wait_for_status  # pylint: disable=wrong-import-order
from module_runner import COLLECTIONS, REPO  # pylint: disable=wrong-import-order

MIB = 1024 * 1024
STEP_TIMEOUT = 600
PASSPHRASE = "bad-inputs passphrase"
SUFFIX = os.urandom(3).hex()
SMALL = f"e2e-bad-small-{SUFFIX}"          # the backup every restore row names (its source volume had 3 GiB)
NEW = f"e2e-bad-new-{SUFFIX}"              # the backup name the backup rows would create
RESTORED = f"e2e-bad-restored-{SUFFIX}"    # the volume the restore rows would create
SOURCE_GIB = 3


class Context(t.NamedTuple):
    env: dict
    seed: t.Any                   # the 1 GiB volume at site A (made from an image openstacksdk uploaded)
    file_bank: dict               # unencrypted, holds SMALL
    s3_bank: dict                 # encrypted (Swift's S3 API), holds SMALL
    keystone: str                 # site A's Keystone URL
    missing_dir: str              # a bank directory that does not exist


# -- the sites and the banks, before and after -------------------------------------------------------

def _tags(resource: t.Any) -> dict:
    found = dict(getattr(resource, "metadata", None) or {})
    found.update(getattr(resource, "properties", None) or {})
    return found


def site_resources(conn) -> dict[str, tuple[str, str | None, dict]]:
    found = {v.id: ("volume", v.name, _tags(v)) for v in conn.block_storage.volumes()}
    found.update({s.id: ("snapshot", s.name, _tags(s)) for s in conn.block_storage.snapshots()})
    found.update({i.id: ("image", i.name, _tags(i)) for i in conn.image.images(owner=conn.current_project_id)})
    return found


def ours(entry: tuple[str, str | None, dict], markers: tuple[str, ...]) -> bool:
    dummy, name, tags = entry
    text = f"{name} {json.dumps(tags, sort_keys=True, default=str)}"
    return any(marker in text for marker in markers)


def bank_state(config: dict) -> dict[str, tuple[int, str]]:
    with open_bank(dict(config, create=False)) as bank:
        return {entry.key: (entry.size, hashlib.sha256(bank.get(entry.key)).hexdigest()) for entry in bank.list()}


def write_small_backup(config: dict, passphrase: str | None) -> None:
    """A 1 MiB backup whose source volume had SOURCE_GIB GiB, written by the engine (no cloud needed)."""
    with open_bank(config) as bank:
        store = BackupStore(bank, passphrase)
        source = {"volume": {"id": "0" * 8, "name": "e2e-bad-source", "size": SOURCE_GIB, "metadata": {}}}
        store.backup_writer(SMALL, chunk_size=MIB, source=source).write([os.urandom(MIB)])


def run_playbook(playbook: str, extra_vars: dict, env: dict, timeout: float = 1800) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as scratch:
        variables = pathlib.Path(scratch) / "vars.json"
        variables.write_text(json.dumps(dict(extra_vars, ansible_python_interpreter=sys.executable)))
        command = [str(pathlib.Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", "-c", "local",
                   "-e", f"@{variables}", playbook]
        environment = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS), ANSIBLE_NOCOLOR="1",
                           ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0", **env)
        return subprocess.run(command, capture_output=True, text=True, env=environment, timeout=timeout, check=False)


@pytest.fixture(scope="module", name="context")
def fixture_context(tmp_path_factory):
    sites = load_sites()
    env = {"OS_CLIENT_CONFIG_FILE": sites["clouds_yaml"]}
    servers = yaml.safe_load(pathlib.Path(sites["bank_yml"]).read_text())
    clouds = yaml.safe_load(pathlib.Path(sites["clouds_yaml"]).read_text())
    site_a = connect("site-a", sites)
    # openstacksdk's create_image stamps owner_specified.openstack.* on the image; the volume inherits them.
    image = site_a.image.create_image(name=f"e2e-bad-seed-image-{SUFFIX}", data=os.urandom(MIB), disk_format="raw",
                                      container_format="bare", visibility="private", os_distro="debian")
    wait_for_status(lambda: site_a.image.get_image(image.id), "active", STEP_TIMEOUT, "seed image", failures=("killed", "deleted"))
    seed = site_a.block_storage.create_volume(name=f"e2e-bad-seed-{SUFFIX}", size=1, image_id=image.id)
    seed = wait_for_status(lambda: site_a.block_storage.get_volume(seed.id), "available", STEP_TIMEOUT, "seed volume")
    site_a.image.delete_image(image.id)
    root = tmp_path_factory.mktemp("bad-inputs")
    file_bank = {"type": "file", "path": str(root / "bank")}
    s3_bank = dict(servers["swift_s3"], bucket=f"e2e-bad-{SUFFIX}")
    write_small_backup(dict(file_bank, create=True), None)
    write_small_backup(dict(s3_bank, create=True), PASSPHRASE)
    yield Context(env, seed, file_bank, s3_bank, clouds["clouds"]["site-a"]["auth"]["auth_url"], str(root / "missing"))
    site_a.block_storage.delete_volume(seed.id, ignore_missing=True)
    wait_for_gone(lambda: site_a.block_storage.get_volume(seed.id), STEP_TIMEOUT, "seed volume")
    site_a.close()
    with open_bank(dict(s3_bank, create=False)) as bank:
        bank.delete_many([entry.key for entry in bank.list()])
        bank.client.delete_bucket(Bucket=s3_bank["bucket"])  # type: ignore[attr-defined]


# -- the table -------------------------------------------------------------------------------------

class Row(t.NamedTuple):
    label: str
    target: str                                  # a module, or "role:<name>"
    args: t.Callable[[Context], dict]            # its arguments (a role: its variables)
    expected: tuple[str, ...]                    # the option (or variable) and the bound, in the message


def backup(**extra) -> t.Callable[[Context], dict]:
    return lambda c: dict({"cloud": "site-a", "volume": c.seed.id, "bank": c.file_bank, "backup_name": NEW}, **extra)


def backup_bank(**bank) -> t.Callable[[Context], dict]:
    return lambda c: {"cloud": "site-a", "volume": c.seed.id, "backup_name": NEW,
                      "bank": {key: value for key, value in dict(c.file_bank, **bank).items() if value is not None}}


def restore(**extra) -> t.Callable[[Context], dict]:
    return lambda c: dict({"cloud": "site-b", "backup": SMALL, "restore_name": RESTORED, "bank": c.file_bank}, **extra)


def s3_restore(**extra) -> t.Callable[[Context], dict]:
    return lambda c: dict({"cloud": "site-b", "backup": SMALL, "restore_name": RESTORED, "bank": c.s3_bank,
                           "encryption_passphrase": PASSPHRASE}, **extra)


def delete(**extra) -> t.Callable[[Context], dict]:
    return lambda c: dict({"bank": c.file_bank, "backup": SMALL}, **extra)


def info(**extra) -> t.Callable[[Context], dict]:
    return lambda c: dict({"bank": c.file_bank}, **extra)


def cleanup(**extra) -> t.Callable[[Context], dict]:
    return lambda c: dict({"cloud": "site-a", "backups": [NEW]}, **extra)


def s3_backup_bank(**bank) -> t.Callable[[Context], dict]:
    return lambda c: {"cloud": "site-a", "volume": c.seed.id, "backup_name": NEW, "encryption_passphrase": PASSPHRASE,
                      "bank": dict(c.s3_bank, **bank)}


def sync(**extra) -> t.Callable[[Context], dict]:
    """A sync of the file bank into a directory that does not exist: accepted, it would create it."""
    return lambda c: dict({"source_bank": c.file_bank, "target_bank": {"type": "file", "path": c.missing_dir, "create": True}}, **extra)


def drill(**extra) -> t.Callable[[Context], dict]:
    """A drill report written where the missing directory would be: accepted, it would create that file."""
    return lambda c: dict({"run_id": f"e2e-bad-drill-{SUFFIX}", "volumes": [], "json_path": c.missing_dir}, **extra)


def role_sync(**variables) -> t.Callable[[Context], dict]:
    return lambda c: dict({"bank_sync_source_bank": c.file_bank,
                           "bank_sync_target_bank": {"type": "file", "path": c.missing_dir, "create": True}}, **variables)


def role_drill(**variables) -> t.Callable[[Context], dict]:
    return lambda c: dict({"dr_drill_site_a_cloud": "site-a", "dr_drill_site_b_cloud": "site-b", "dr_drill_bank": c.file_bank,
                           "dr_drill_volumes": [c.seed.id], "dr_drill_run_id": f"e2e-bad-drill-{SUFFIX}",
                           "dr_drill_json_path": c.missing_dir}, **variables)


TIMEOUT_BOUND = "between 1 and 604800 seconds"
ROWS = [
    # volume_glance_backup: numbers at 0, negative and above their bound, and of the wrong type
    Row("backup timeout 0", "volume_glance_backup", backup(timeout=0), ("timeout", TIMEOUT_BOUND)),
    Row("backup timeout -5", "volume_glance_backup", backup(timeout=-5), ("timeout", TIMEOUT_BOUND)),
    Row("backup timeout above a week", "volume_glance_backup", backup(timeout=604801), ("timeout", TIMEOUT_BOUND)),
    Row("backup timeout not a number", "volume_glance_backup", backup(timeout="soon"), ("timeout", "convert to int")),
    Row("backup api_timeout -1", "volume_glance_backup", backup(api_timeout=-1), ("api_timeout", "between 1 and 3600 seconds")),
    Row("backup api_timeout 0", "volume_glance_backup", backup(api_timeout=0), ("api_timeout", "between 1 and 3600 seconds")),
    Row("backup api_timeout above an hour", "volume_glance_backup", backup(api_timeout=3601), ("api_timeout", "between 1 and 3600 seconds")),
    Row("backup lock_timeout -1", "volume_glance_backup", backup(lock_timeout=-1), ("lock_timeout", "between 0 and 86400 seconds")),
    Row("backup lock_timeout above a day", "volume_glance_backup", backup(lock_timeout=86401),
        ("lock_timeout", "between 0 and 86400 seconds")),
    Row("backup parallelism 0", "volume_glance_backup", backup(parallelism=0), ("parallelism", "between 1 and 64")),
    Row("backup parallelism 65", "volume_glance_backup", backup(parallelism=65), ("parallelism", "between 1 and 64")),
    Row("backup progress_interval 0", "volume_glance_backup", backup(progress_interval=0),
        ("progress_interval", "between 1 and 600 seconds")),
    Row("backup progress_interval 601", "volume_glance_backup", backup(progress_interval=601),
        ("progress_interval", "between 1 and 600 seconds")),
    Row("backup compression_level 0", "volume_glance_backup", backup(compression_level=0), ("compression_level", "between 1 and 19")),
    Row("backup compression_level -1", "volume_glance_backup", backup(compression_level=-1), ("compression_level", "between 1 and 19")),
    Row("backup compression_level 20", "volume_glance_backup", backup(compression_level=20), ("compression_level", "between 1 and 19")),
    Row("backup chunk_size 0", "volume_glance_backup", backup(chunk_size=0), ("chunk_size", "one of: 1, 2, 4, 8, 16, 32, 64")),
    Row("backup chunk_size 128", "volume_glance_backup", backup(chunk_size=128), ("chunk_size", "one of: 1, 2, 4, 8, 16, 32, 64")),
    Row("backup force not a bool", "volume_glance_backup", backup(force="maybe"), ("force", "convert to bool")),
    # backup names
    Row("backup_name empty", "volume_glance_backup", backup(backup_name=""), ("backup_name", "must not be empty")),
    Row("backup_name whitespace", "volume_glance_backup", backup(backup_name="   "), ("backup_name", "only whitespace")),
    Row("backup_name with NUL", "volume_glance_backup", backup(backup_name="db\x00x"), ("backup_name", "control characters (found U+0000)")),
    Row("backup_name with ESC", "volume_glance_backup", backup(backup_name="db\x1bx"), ("backup_name", "control characters (found U+001B)")),
    Row("backup_name 4-byte UTF-8", "volume_glance_backup", backup(backup_name="db-\U0001F600"), ("backup_name", "4-byte UTF-8")),
    Row("backup_name 256 bytes", "volume_glance_backup", backup(backup_name="x" * 256), ("backup_name", "at most 255 bytes")),
    Row("backup_name 128 x 2-byte", "volume_glance_backup", backup(backup_name="é" * 128), ("backup_name", "at most 255 bytes")),
    Row("backup_name ../x", "volume_glance_backup", backup(backup_name="../x"), ("backup_name", "must not contain '/'")),
    Row("backup_name is a backup id", "volume_glance_backup", backup(backup_name=backup_id_for_name(SMALL)),
        ("backup_name", "must not look like a backup id")),
    Row("volume empty", "volume_glance_backup", backup(volume=""), ("volume", "must not be empty")),
    Row("temporary_prefix with /", "volume_glance_backup", backup(temporary_prefix="tmp/"), ("temporary_prefix", "must not contain '/'")),
    Row("temporary_prefix empty", "volume_glance_backup", backup(temporary_prefix=""), ("temporary_prefix", "must not be empty")),
    # the bank option
    Row("bank not a dict", "volume_glance_backup", backup(bank="not a dict"), ("bank", "must be a dict")),
    Row("bank unknown key", "volume_glance_backup", backup_bank(colour="blue"), ("bank.colour", "Supported parameters include")),
    Row("bank key of another type", "volume_glance_backup", backup_bank(bucket="b"), ("bank", "of type file does not take bucket")),
    Row("bank.max_attempts 0", "volume_glance_backup", backup_bank(max_attempts=0), ("bank.max_attempts", "at least 1")),
    Row("bank.max_attempts 101", "volume_glance_backup", backup_bank(max_attempts=101), ("bank.max_attempts", "at most 100")),
    Row("bank.max_total_time -1", "volume_glance_backup", backup_bank(max_total_time=-1), ("bank.max_total_time", "at least 0")),
    Row("bank.max_attempts not a number", "volume_glance_backup", backup_bank(max_attempts="many"), ("max_attempts", "convert to int")),
    Row("bank.type unknown", "volume_glance_backup", backup_bank(type="ftp"), ("type", "one of: file, s3, swift")),
    Row("bank.max_total_time above a day", "volume_glance_backup", backup_bank(max_total_time=86401),
        ("bank.max_total_time", "at most 86400")),
    Row("bank.connect_timeout 0", "volume_glance_backup", backup_bank(connect_timeout=0), ("bank.connect_timeout", "at least 0.001")),
    Row("bank.connect_timeout above an hour", "volume_glance_backup", backup_bank(connect_timeout=3601),
        ("bank.connect_timeout", "at most 3600")),
    Row("bank.read_timeout -1", "volume_glance_backup", backup_bank(read_timeout=-1), ("bank.read_timeout", "at least 0.001")),
    Row("bank.read_timeout above an hour", "volume_glance_backup", backup_bank(read_timeout=3601), ("bank.read_timeout", "at most 3600")),
    Row("bank.object_lock_days 0", "volume_glance_backup", s3_backup_bank(object_lock_days=0), ("bank.object_lock_days", "at least 1")),
    Row("bank.object_lock_days above a century", "volume_glance_backup", s3_backup_bank(object_lock_days=36501),
        ("bank.object_lock_days", "at most 36500")),
    Row("bank.object_lock_extension_days -1", "volume_glance_backup", s3_backup_bank(object_lock_days=1, object_lock_extension_days=-1),
        ("bank.object_lock_extension_days", "at least 0")),
    Row("bank.object_lock_extension_days above ten years", "volume_glance_backup",
        s3_backup_bank(object_lock_days=1, object_lock_extension_days=3651), ("bank.object_lock_extension_days", "at most 3650")),
    Row("bank.object_lock_mode unknown", "volume_glance_backup", s3_backup_bank(object_lock_days=1, object_lock_mode="legal-hold"),
        ("object_lock_mode", "one of: governance, compliance")),
    Row("bank.object_lock_mode without days", "volume_glance_backup", s3_backup_bank(object_lock_mode="compliance"),
        ("bank.object_lock_mode", "needs O(bank.object_lock_days)")),
    Row("bank.endpoint_url is Keystone", "volume_glance_backup",
        lambda c: dict(backup()(c), bank=dict(c.s3_bank, endpoint_url=c.keystone, max_attempts=1), encryption_passphrase=PASSPHRASE),
        ("endpoint_url", "not answer as an S3 service")),
    Row("bank.secret_key wrong", "volume_glance_backup",
        lambda c: dict(backup()(c), bank=dict(c.s3_bank, secret_key="not-the-secret", max_attempts=1), encryption_passphrase=PASSPHRASE),
        ("bank.secret_key", "SignatureDoesNotMatch")),
    Row("passphrase for an unencrypted bank (backup exists)", "volume_glance_backup",
        backup(backup_name=SMALL, encryption_passphrase=PASSPHRASE), ("encryption_passphrase", "is not encrypted")),
    Row("passphrase for an unencrypted bank (new backup)", "volume_glance_backup",
        backup(encryption_passphrase=PASSPHRASE), ("encryption_passphrase", "is not encrypted")),
    Row("passphrase empty", "volume_glance_backup", backup(encryption_passphrase=""), ("encryption_passphrase", "must not be empty")),
    # volume_glance_restore
    Row("restore_name empty", "volume_glance_restore", restore(restore_name=""), ("restore_name", "must not be empty")),
    Row("restore_name whitespace", "volume_glance_restore", restore(restore_name=" \t "), ("restore_name", "only whitespace")),
    Row("restore_name with NUL", "volume_glance_restore", restore(restore_name="db\x00x"), ("restore_name", "control characters")),
    Row("restore_name 4-byte UTF-8", "volume_glance_restore", restore(restore_name="db-\U0001F600"), ("restore_name", "4-byte UTF-8")),
    Row("restore_name 256 characters", "volume_glance_restore", restore(restore_name="é" * 256), ("restore_name", "at most 255 characters")),
    Row("restore parallelism 0", "volume_glance_restore", restore(parallelism=0), ("parallelism", "between 1 and 64")),
    Row("restore parallelism -1", "volume_glance_restore", restore(parallelism=-1), ("parallelism", "between 1 and 64")),
    Row("restore size 0", "volume_glance_restore", restore(size=0), ("size", "between 1 and 1048576 GiB")),
    Row("restore size -1", "volume_glance_restore", restore(size=-1), ("size", "between 1 and 1048576 GiB")),
    Row("restore size above 1 PiB", "volume_glance_restore", restore(size=1048577), ("size", "between 1 and 1048576 GiB")),
    Row("restore size below the backup", "volume_glance_restore", restore(size=SOURCE_GIB - 1),
        ("size", f"smaller than the backup, which needs {SOURCE_GIB} GiB")),
    Row("restore parallelism 65", "volume_glance_restore", restore(parallelism=65), ("parallelism", "between 1 and 64")),
    Row("restore timeout 0", "volume_glance_restore", restore(timeout=0), ("timeout", TIMEOUT_BOUND)),
    Row("restore timeout -5", "volume_glance_restore", restore(timeout=-5), ("timeout", TIMEOUT_BOUND)),
    Row("restore timeout above a week", "volume_glance_restore", restore(timeout=604801), ("timeout", TIMEOUT_BOUND)),
    Row("restore api_timeout -1", "volume_glance_restore", restore(api_timeout=-1), ("api_timeout", "between 1 and 3600 seconds")),
    Row("restore api_timeout above an hour", "volume_glance_restore", restore(api_timeout=3601), ("api_timeout", "between 1 and 3600 seconds")),
    Row("restore backup empty", "volume_glance_restore", restore(backup=""), ("backup", "must not be empty")),
    Row("restore description 256 characters", "volume_glance_restore", restore(description="d" * 256),
        ("description", "at most 255 characters")),
    Row("restore metadata of ours", "volume_glance_restore", restore(metadata={"openstack_dr_bank_restored_from": "x"}),
        ("metadata key", "set by this collection")),
    Row("restore metadata value 256 characters", "volume_glance_restore", restore(metadata={"app": "v" * 256}),
        ("metadata.app", "at most 255 characters")),
    Row("restore metadata not a dict", "volume_glance_restore", restore(metadata="app"), ("metadata", "must be a dict")),
    Row("restore passphrase for an unencrypted bank", "volume_glance_restore", restore(encryption_passphrase=PASSPHRASE),
        ("encryption_passphrase", "is not encrypted")),
    Row("restore wrong passphrase", "volume_glance_restore", s3_restore(encryption_passphrase="guess"),
        ("encryption passphrase", "Wrong")),
    Row("restore from a missing bank with create: true", "volume_glance_restore",
        lambda c: dict(restore()(c), bank={"type": "file", "path": c.missing_dir, "create": True}),
        ("directory does not exist", "never creates one")),
    # bank_delete
    Row("delete lock_timeout -1", "bank_delete", delete(lock_timeout=-1), ("lock_timeout", "between 0 and 86400 seconds")),
    Row("delete lock_timeout above a day", "bank_delete", delete(lock_timeout=86401), ("lock_timeout", "between 0 and 86400 seconds")),
    Row("delete backup with NUL", "bank_delete", delete(backup="a\x00b"), ("backup", "control characters")),
    Row("delete passphrase for an unencrypted bank", "bank_delete", delete(encryption_passphrase=PASSPHRASE),
        ("encryption_passphrase", "is not encrypted")),
    # bank_backup_info
    Row("info verify_percent 0", "bank_backup_info", info(verify_percent=0), ("verify_percent", "between 0.001 and 100 percent")),
    Row("info verify_percent -1", "bank_backup_info", info(verify_percent=-1), ("verify_percent", "between 0.001 and 100 percent")),
    Row("info verify_percent 101", "bank_backup_info", info(verify_percent=101), ("verify_percent", "between 0.001 and 100 percent")),
    Row("info verify unknown", "bank_backup_info", info(verify="all"), ("verify", "one of: none, presence, data")),
    Row("info passphrase for an unencrypted bank", "bank_backup_info", info(encryption_passphrase=PASSPHRASE),
        ("encryption_passphrase", "is not encrypted")),
    Row("info missing file bank with create: true", "bank_backup_info",
        lambda c: {"bank": {"type": "file", "path": c.missing_dir, "create": True}},
        ("directory does not exist", "never creates one")),
    # temporaries_cleanup and volume_info
    Row("cleanup older_than -1", "temporaries_cleanup", cleanup(older_than=-1), ("older_than", "between 0 and 315360000 seconds")),
    Row("cleanup older_than above ten years", "temporaries_cleanup", cleanup(older_than=315360001),
        ("older_than", "between 0 and 315360000 seconds")),
    Row("cleanup timeout 0", "temporaries_cleanup", cleanup(timeout=0), ("timeout", TIMEOUT_BOUND)),
    Row("cleanup timeout above a week", "temporaries_cleanup", cleanup(timeout=604801), ("timeout", TIMEOUT_BOUND)),
    Row("cleanup api_timeout -1", "temporaries_cleanup", cleanup(api_timeout=-1), ("api_timeout", "between 1 and 3600 seconds")),
    Row("cleanup backups with NUL", "temporaries_cleanup", cleanup(backups=["a\x00b"]), ("backups[0]", "control characters")),
    Row("volume_info api_timeout 0", "volume_info", lambda c: {"cloud": "site-a", "api_timeout": 0},
        ("api_timeout", "between 1 and 3600 seconds")),
    Row("volume_info api_timeout above an hour", "volume_info", lambda c: {"cloud": "site-a", "api_timeout": 3601},
        ("api_timeout", "between 1 and 3600 seconds")),
    Row("volume_info timeout 0", "volume_info", lambda c: {"cloud": "site-a", "timeout": 0}, ("timeout", TIMEOUT_BOUND)),
    Row("volume_info volumes with an empty name", "volume_info", lambda c: {"cloud": "site-a", "volumes": [""]},
        ("volumes[0]", "must not be empty")),
    # bank_sync
    Row("sync lock_timeout -1", "bank_sync", sync(lock_timeout=-1), ("lock_timeout", "between 0 and 86400 seconds")),
    Row("sync lock_timeout above a day", "bank_sync", sync(lock_timeout=86401), ("lock_timeout", "between 0 and 86400 seconds")),
    Row("sync parallelism 0", "bank_sync", sync(parallelism=0), ("parallelism", "between 1 and 64")),
    Row("sync parallelism 65", "bank_sync", sync(parallelism=65), ("parallelism", "between 1 and 64")),
    Row("sync parallelism not a number", "bank_sync", sync(parallelism="all"), ("parallelism", "convert to int")),
    Row("sync backups with NUL", "bank_sync", sync(backups=["a\x00b"]), ("backups[0]", "control characters")),
    Row("sync source_bank not a dict", "bank_sync", sync(source_bank="not a dict"), ("source_bank", "must be a dict")),
    Row("sync target_bank unknown key", "bank_sync", lambda c: dict(sync()(c), target_bank=dict(sync()(c)["target_bank"], colour="blue")),
        ("target_bank.colour", "Supported parameters include")),
    Row("sync target_bank.max_attempts 0", "bank_sync", lambda c: dict(sync()(c), target_bank=dict(sync()(c)["target_bank"], max_attempts=0)),
        ("bank.max_attempts", "at least 1")),
    Row("sync into the source itself", "bank_sync", lambda c: dict(sync()(c), target_bank=c.file_bank), ("same bank",)),
    Row("sync passphrase for an unencrypted bank", "bank_sync", sync(encryption_passphrase=PASSPHRASE),
        ("encryption_passphrase", "is not encrypted")),
    # drill_report
    Row("drill rpo_target -5", "drill_report", drill(rpo_target=-5), ("rpo_target", "between 0 and 315360000 seconds")),
    Row("drill rto_target above ten years", "drill_report", drill(rto_target=315360001), ("rto_target", "between 0 and 315360000 seconds")),
    Row("drill rto_target not a number", "drill_report", drill(rto_target="soon"), ("rto_target", "convert to int")),
    Row("drill volume target -1", "drill_report", drill(volume_targets={"db": {"rto": -1}}),
        ("volume_targets.db.rto", "between 0 and 315360000 seconds")),
    Row("drill volume target of another kind", "drill_report", drill(volume_targets={"db": {"rtt": 5}}),
        ("volume_targets.db", "a dict of rpo and/or rto")),
    Row("drill run_id empty", "drill_report", drill(run_id=""), ("run_id", "must not be empty")),
    Row("drill run_id with ESC", "drill_report", drill(run_id="d\x1bx"), ("run_id", "control characters")),
    Row("drill started_at not a UTC time", "drill_report", drill(started_at="yesterday"), ("started_at", "YYYY-MM-DDTHH:MM:SSZ")),
    Row("drill restore_finished_at with a space", "drill_report", drill(restore_finished_at="2026-12-03 10:00:00"),
        ("restore_finished_at", "YYYY-MM-DDTHH:MM:SSZ")),
    Row("drill one file for two reports", "drill_report", lambda c: dict(drill()(c), junit_path=c.missing_dir),
        ("junit_path and json_path must differ",)),
    Row("drill mode unknown", "drill_report", drill(mode="partial"), ("mode", "one of: full, sample")),
    # roles: their argument specs, their bounds, and the modules' refusals through them
    Row("role volume_backup concurrency not a number", "role:volume_backup",
        lambda c: {"volume_backup_cloud": "site-a", "volume_backup_bank": c.file_bank, "volume_backup_volumes": [c.seed.id],
                   "volume_backup_concurrency": "many"}, ("volume_backup_concurrency", "convert to int")),
    Row("role volume_backup chunk_size 3", "role:volume_backup",
        lambda c: {"volume_backup_cloud": "site-a", "volume_backup_bank": c.file_bank, "volume_backup_volumes": [c.seed.id],
                   "volume_backup_chunk_size": 3}, ("volume_backup_chunk_size", "one of: 1, 2, 4, 8, 16, 32, 64")),
    Row("role volume_backup parallelism 0", "role:volume_backup",
        lambda c: {"volume_backup_cloud": "site-a", "volume_backup_bank": c.file_bank, "volume_backup_volumes": [c.seed.id],
                   "volume_backup_parallelism": 0}, ("volume_backup_parallelism must be between 1 and 64, got 0",)),
    Row("role volume_backup name prefix with /", "role:volume_backup",
        lambda c: {"volume_backup_cloud": "site-a", "volume_backup_bank": c.file_bank, "volume_backup_volumes": [c.seed.id],
                   "volume_backup_name_prefix": "e2e/", "volume_backup_name_suffix": SUFFIX, "volume_backup_poll_interval": 1},
        ("backup_name must not contain '/'",)),
    Row("role volume_restore step_timeout 0", "role:volume_restore",
        lambda c: {"volume_restore_cloud": "site-b", "volume_restore_bank": c.file_bank, "volume_restore_backups": [SMALL],
                   "volume_restore_step_timeout": 0}, ("volume_restore_step_timeout must be between 1 and 604800, got 0",)),
    Row("role volume_restore restore_name 4-byte UTF-8", "role:volume_restore",
        lambda c: {"volume_restore_cloud": "site-b", "volume_restore_bank": c.file_bank, "volume_restore_poll_interval": 1,
                   "volume_restore_backups": [{"backup": SMALL, "restore_name": "db-\U0001F600"}]},
        ("restore_name must not contain 4-byte UTF-8",)),
    Row("role bank_retention lock_timeout -1", "role:bank_retention",
        lambda c: {"bank_retention_bank": c.file_bank, "bank_retention_keep_last": 1, "bank_retention_lock_timeout": -1},
        ("bank_retention_lock_timeout must be between 0 and 86400, got -1",)),
    Row("role bank_sync parallelism 0", "role:bank_sync", role_sync(bank_sync_parallelism=0),
        ("bank_sync_parallelism must be between 1 and 64, got 0",)),
    Row("role bank_sync async_timeout 59", "role:bank_sync", role_sync(bank_sync_async_timeout=59),
        ("bank_sync_async_timeout must be between 60 and 604800, got 59",)),
    Row("role bank_sync backups with NUL", "role:bank_sync", role_sync(bank_sync_backups=["a\x00b"]), ("backups[0]", "control characters")),
    Row("role dr_drill rto_target -5", "role:dr_drill", role_drill(dr_drill_rto_target=-5),
        ("dr_drill_rto_target must be between 0 and 315360000, got -5",)),
    Row("role dr_drill concurrency 0", "role:dr_drill", role_drill(dr_drill_concurrency=0),
        ("dr_drill_concurrency must be between 1 and 64, got 0",)),
    Row("role dr_drill sample_count -1", "role:dr_drill", role_drill(dr_drill_mode="sample", dr_drill_sample_count=-1),
        ("dr_drill_sample_count must be between 0 and 10000, got -1",)),
    Row("role dr_drill mode unknown", "role:dr_drill", role_drill(dr_drill_mode="partial"), ("dr_drill_mode", "partial")),
    Row("role cleanup older_than -5", "role:cleanup", lambda c: {"cleanup_cloud": "site-a", "cleanup_older_than": -5},
        ("cleanup_older_than must be between 0 and 315360000, got -5",)),
]


def test_the_table_is_large_and_covers_every_module_and_role():
    targets = {row.target for row in ROWS}
    assert len(ROWS) >= 40
    assert targets >= {"volume_glance_backup", "volume_glance_restore", "bank_delete", "bank_backup_info", "temporaries_cleanup",
                       "volume_info", "bank_sync", "drill_report", "role:volume_backup", "role:volume_restore", "role:bank_retention",
                       "role:cleanup", "role:bank_sync", "role:dr_drill"}
    assert len({row.label for row in ROWS}) == len(ROWS)


class GroupAnswer(t.NamedTuple):
    """One ansible-playbook run of every row of one module or role, each row a task with its result registered."""

    results: dict[str, dict]                     # row label -> {"failed": bool, "msg": str}
    created: dict[str, dict]                     # site -> resources of ours that appeared during the run
    banks_unchanged: bool
    output: str


def _row_tasks(index: int, row: Row, context: Context) -> list[dict]:
    register = f"row_{index}"
    if not row.target.startswith("role:"):
        return [{"name": row.label, f"openstack_dr.bank.{row.target}": row.args(context), "ignore_errors": True, "register": register}]
    role = row.target.split(":", 1)[1]
    # A role stops at its first failure: the block's rescue records what failed.
    return [{"name": row.label, "block": [
        {"name": f"Run {role}", "ansible.builtin.include_role": {"name": f"openstack_dr.bank.{role}"}, "vars": row.args(context)},
        {"name": "It ran through", "ansible.builtin.set_fact": {register: {"failed": False, "msg": ""}}},
    ], "rescue": [
        # A looped task (the roles' bound checks) fails with "One or more items failed": its items say why.
        {"name": "It failed", "ansible.builtin.set_fact": {register: {"failed": True, "msg": (
            "{{ ansible_failed_result.msg | default('') }} {{ ansible_failed_result.results | default([]) | selectattr('failed', 'defined')"
            " | selectattr('failed') | map(attribute='msg') | join('; ') }}")}}},
    ]}]


def run_group(target: str, context: Context, site_a, site_b, scratch: pathlib.Path) -> GroupAnswer:
    rows = [(index, row) for index, row in enumerate(ROWS) if row.target == target]
    answers = scratch / "answers.json"
    tasks = [task for index, row in rows for task in _row_tasks(index, row, context)]
    dump = "{{ {" + ", ".join(f"'{index}': row_{index}" for index, dummy in rows) + "} | to_json }}"
    tasks.append({"name": "Write the answers", "ansible.builtin.copy": {"content": dump, "dest": str(answers), "mode": "0600"}})
    playbook = scratch / "rows.yml"
    playbook.write_text(yaml.safe_dump([{"name": f"Bad inputs of {target}", "hosts": "localhost", "gather_facts": False, "tasks": tasks}],
                                       allow_unicode=False))
    markers = (SUFFIX, context.seed.id, backup_id_for_name(SMALL), backup_id_for_name(NEW))
    before = {"A": site_resources(site_a), "B": site_resources(site_b)}
    banks_before = [bank_state(context.file_bank), bank_state(context.s3_bank)]
    completed = run_playbook(str(playbook), {}, context.env)
    output = completed.stdout + completed.stderr
    assert answers.exists(), f"the playbook of {target} wrote no answers:\n{output}"
    registered = json.loads(answers.read_text())
    results = {row.label: {"failed": bool(registered[str(index)].get("failed")), "msg": str(registered[str(index)].get("msg", ""))}
               for index, row in rows}
    created = {}
    for site, conn in (("A", site_a), ("B", site_b)):
        created[site] = {key: entry for key, entry in site_resources(conn).items() if key not in before[site] and ours(entry, markers)}
    unchanged = [bank_state(context.file_bank), bank_state(context.s3_bank)] == banks_before and not os.path.exists(context.missing_dir)
    return GroupAnswer(results, created, unchanged, output)


@pytest.fixture(scope="module", name="group_answers")
def fixture_group_answers(context, site_a, site_b, tmp_path_factory):
    """Runs each module's or role's rows once, when a row of it is first tested."""
    answers: dict[str, GroupAnswer] = {}

    def answer(target: str) -> GroupAnswer:
        if target not in answers:
            answers[target] = run_group(target, context, site_a, site_b, tmp_path_factory.mktemp("rows"))
        return answers[target]

    return answer


@pytest.mark.parametrize("row", ROWS, ids=[row.label for row in ROWS])
def test_a_bad_input_is_refused_by_name_before_anything_is_created(row: Row, group_answers):
    group = group_answers(row.target)
    answer = group.results[row.label]
    assert answer["failed"], f"{row.label}: accepted: {answer}"
    for fragment in row.expected:
        assert fragment in answer["msg"], f"{row.label}: {fragment!r} not in {answer['msg']!r}"
    assert group.created == {"A": {}, "B": {}}, f"{row.label} (run with the other rows of {row.target}): created {group.created}"
    assert group.banks_unchanged, f"{row.label} (run with the other rows of {row.target}): a bank changed"
    shown = [line for line in answer["msg"].splitlines() if any(fragment in line for fragment in row.expected)] or [answer["msg"]]
    print(f"\nBAD-INPUT | {row.label} | {row.target} | {shown[0].strip()[:300]}")


# -- the playbooks' summaries and a restored volume's image metadata -------------------------------

def test_playbooks_print_labelled_summaries_and_a_restore_drops_openstacksdk_image_properties(context: Context, site_b, tmp_path):
    seed_metadata = context.seed.volume_image_metadata or {}
    assert any(key.startswith("owner_specified.openstack.") for key in seed_metadata), seed_metadata
    bank = {"type": "file", "path": str(tmp_path / "playbook-bank"), "create": True}
    backed_up = run_playbook(str(REPO / "playbooks" / "backup.yml"),
                             {"dr_bank": bank, "dr_site_a_cloud": "site-a", "dr_volumes": [context.seed.id], "dr_backup_name_suffix": SUFFIX},
                             context.env)
    assert backed_up.returncode == 0, backed_up.stdout + backed_up.stderr
    name = f"{context.seed.name}-{SUFFIX}"
    assert f"Backup {name} of volume {context.seed.name}: size {1024 * MIB} bytes, stored " in backed_up.stdout, backed_up.stdout
    assert "made by this run" in backed_up.stdout and "size/stored bytes" not in backed_up.stdout

    restore_name = f"e2e-bad-playbook-restored-{SUFFIX}"
    try:
        restored = run_playbook(str(REPO / "playbooks" / "restore.yml"),
                                {"dr_bank": dict(bank, create=False), "dr_site_b_cloud": "site-b",
                                 "dr_restore": [{"backup": name, "restore_name": restore_name}]}, context.env)
        assert restored.returncode == 0, restored.stdout + restored.stderr
        (volume,) = [v for v in site_b.block_storage.volumes() if v.name == restore_name]
        assert f"Volume {restore_name} (id {volume.id}) restored from backup {name}: volume type " in restored.stdout, restored.stdout
        # The module's volume_type_reason, labelled, after the type.
        assert re.search(rf"volume type {re.escape(str(volume.volume_type))} \((?!no reason given)[^\n]+\), restored by this run",
                         restored.stdout), restored.stdout
        image_metadata = site_b.block_storage.get_volume(volume.id).volume_image_metadata or {}
        assert image_metadata.get("os_distro") == "debian", image_metadata
        assert not [key for key in image_metadata if key.startswith("owner_specified.openstack.")], image_metadata
    finally:
        for leftover in site_b.block_storage.volumes():
            if leftover.name == restore_name:
                site_b.block_storage.delete_volume(leftover.id)
                wait_for_gone(lambda v=leftover: site_b.block_storage.get_volume(v.id), STEP_TIMEOUT, "restored volume")
