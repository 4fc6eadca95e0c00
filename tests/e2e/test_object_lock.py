# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Immutable banks on real S3 servers: the Ceph Object Gateway and moto, both with S3 Object Lock.

What a backup writes is locked until its date, a reused chunk's lock is extended, a protected backup is
not deleted, and the protected site's write-only credentials (an RGW user that a bucket policy lets
put, get, list and extend locks, never delete) back up, resume and list, but cannot destroy: every
attempt through boto3 fails or is undone by the versions Object Lock keeps, and the backups still
restore byte for byte. moto does not enforce bucket policies, so the write-only proof is RGW's alone.
Needs `make bank-up` and `make devcloud-up` (Ceph); fails, never skips, when they are not up.
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import time
import typing as t

import boto3
import botocore.config
import botocore.exceptions
import pytest

from ansible_collections.openstack_dr.bank.plugins.module_utils._bank import open_bank
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine import writer as writer_module
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.documents import parse_utc, utc_timestamp
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.layout import chunk_key, manifest_key
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.store import BackupStore

from bank_fixtures import load_bank_servers, unique_name  # pylint: disable=wrong-import-order
from module_runner import COLLECTIONS, run_module  # pylint: disable=wrong-import-order

MIB = 1024 * 1024
SOURCE = {"volume": {"id": "vol-object-lock", "name": "db"}}
# Site A may write and extend locks; it may never delete, bypass governance, or change the bucket.
SITE_A_DENIED = ["s3:DeleteObject", "s3:DeleteObjectVersion", "s3:BypassGovernanceRetention", "s3:DeleteBucket",
                 "s3:PutBucketPolicy", "s3:DeleteBucketPolicy", "s3:PutBucketObjectLockConfiguration",
                 "s3:PutBucketVersioning", "s3:PutLifecycleConfiguration"]
SITE_A_ALLOWED = ["s3:PutObject", "s3:PutObjectAcl", "s3:GetObject", "s3:GetObjectVersion", "s3:ListBucket", "s3:ListBucketVersions",
                  "s3:PutObjectRetention", "s3:GetObjectRetention", "s3:GetBucketObjectLockConfiguration"]


def servers() -> dict[str, dict[str, t.Any]]:
    configs = load_bank_servers()
    missing = [name for name in ("rgw_s3", "rgw_s3_site_a") if name not in configs]
    if missing:
        pytest.fail(f"bank.yml has no {', '.join(missing)}: `make devcloud-up` starts Ceph, then the bank server lists its gateway",
                    pytrace=False)
    return configs


def client(config: dict[str, t.Any]) -> t.Any:
    return boto3.client("s3", endpoint_url=config["endpoint_url"], aws_access_key_id=config["access_key"],
                        aws_secret_access_key=config["secret_key"], region_name=config["region"],
                        config=botocore.config.Config(retries={"max_attempts": 2}, s3={"addressing_style": "path"}))


def site_a_policy(bucket: str) -> str:
    principal = {"AWS": ["arn:aws:iam:::user/devcloud-site-a"]}
    resources = [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "SiteAWrites", "Effect": "Allow", "Principal": principal, "Action": SITE_A_ALLOWED, "Resource": resources},
        {"Sid": "SiteANeverDestroys", "Effect": "Deny", "Principal": principal, "Action": SITE_A_DENIED, "Resource": resources},
    ]})


@pytest.fixture(name="locked_bucket", params=["rgw", "moto"])
def fixture_locked_bucket(request: pytest.FixtureRequest) -> t.Iterator[dict[str, t.Any]]:
    """A fresh bucket with Object Lock, made by its owner: {'owner': config, 'site_a': config or None, 'server': name}."""
    configs = servers() if request.param == "rgw" else load_bank_servers()
    owner = dict(configs["rgw_s3" if request.param == "rgw" else "moto"], bucket=unique_name("object-lock"))
    s3 = client(owner)
    s3.create_bucket(Bucket=owner["bucket"], ObjectLockEnabledForBucket=True)
    site_a = None
    if request.param == "rgw":
        s3.put_bucket_policy(Bucket=owner["bucket"], Policy=site_a_policy(owner["bucket"]))
        site_a = dict(configs["rgw_s3_site_a"], bucket=owner["bucket"])
    yield {"owner": owner, "site_a": site_a, "server": request.param}
    # Governance locks yield to their owner's bypass; compliance ones stay until they end (small objects).
    listing = s3.list_object_versions(Bucket=owner["bucket"])
    for version in (listing.get("Versions") or []) + (listing.get("DeleteMarkers") or []):
        try:
            s3.delete_object(Bucket=owner["bucket"], Key=version["Key"], VersionId=version["VersionId"],
                             BypassGovernanceRetention=True)
        except botocore.exceptions.ClientError:
            pass


def locked(config: dict[str, t.Any], **options: t.Any) -> dict[str, t.Any]:
    return {**config, "object_lock_days": 1, "object_lock_extension_days": 0, "object_lock_mode": "governance", **options}


def backup(config: dict[str, t.Any], name: str, data: bytes) -> t.Any:
    writer = BackupStore(open_bank(config)).backup_writer(name, source=SOURCE, chunk_size=MIB)
    return writer, writer.write([data])


def cut_backup(config: dict[str, t.Any], name: str, data: bytes) -> None:
    """A backup whose image download breaks after its first chunk: chunks and progress stored, no manifest."""
    def cut() -> t.Iterator[bytes]:
        yield data[:MIB + 1]
        raise ConnectionResetError("the image download was cut")
    writer = BackupStore(open_bank(config)).backup_writer(name, source=SOURCE, chunk_size=MIB)
    with pytest.raises(ConnectionResetError):
        writer.write_chunks(cut(), expected_size=len(data))


def restore(config: dict[str, t.Any], name: str) -> bytes:
    with BackupStore(open_bank(config)).open_backup(name) as reader:
        return reader.read()


def denied(call: t.Callable[[], t.Any]) -> str:
    """The S3 error code of a refused call; fails the test when the call succeeds."""
    try:
        answer = call()
    except botocore.exceptions.ClientError as exc:
        return exc.response["Error"]["Code"]
    errors = answer.get("Errors") if isinstance(answer, dict) else None
    if errors:
        return errors[0]["Code"]
    pytest.fail(f"the call succeeded: {answer}")


def test_every_object_of_a_backup_is_locked_until_its_protected_date(locked_bucket):
    config = locked(locked_bucket["owner"])
    data = os.urandom(3 * MIB) + bytes(MIB) + os.urandom(MIB)
    writer, manifest = backup(config, "first", data)
    protected = parse_utc(manifest.document["protected_until"])
    s3 = client(config)
    keys = [item["Key"] for item in s3.list_objects_v2(Bucket=config["bucket"])["Contents"]
            if item["Key"].startswith("chunks/")] + [manifest_key(manifest.backup_id)]
    assert len(keys) == 5  # four data chunks, the manifest
    for key in keys:
        head = s3.head_object(Bucket=config["bucket"], Key=key)
        assert head["ObjectLockMode"] == "GOVERNANCE"
        assert head["ObjectLockRetainUntilDate"].timestamp() >= protected
    # The bucket's owner itself cannot remove a locked version without the bypass.
    version = s3.list_object_versions(Bucket=config["bucket"], Prefix=keys[0])["Versions"][0]["VersionId"]
    assert denied(lambda: s3.delete_object(Bucket=config["bucket"], Key=keys[0], VersionId=version)) == "AccessDenied"
    # bank_backup_info shows the date; bank_delete keeps the backup whole and says until when.
    info = run_module("bank_backup_info", {"bank": config, "backup": "first"})
    assert info["backups"][0]["protected_until"] == manifest.document["protected_until"]
    deletion = run_module("bank_delete", {"bank": config, "backup": "first"})
    assert not deletion["changed"] and deletion["deleted"]["protected_until"] == manifest.document["protected_until"]
    assert restore(config, "first") == data


def test_a_reused_chunk_with_a_short_lock_is_extended_and_counted(locked_bucket):
    data = os.urandom(2 * MIB)
    backup(locked(locked_bucket["owner"]), "short", data)
    # A later backup asks for two days more: each reused chunk gets one extension.
    longer = locked(locked_bucket["owner"], object_lock_extension_days=2)
    writer, manifest = backup(longer, "longer", data)
    assert writer.stats.requests["lock"] == 2
    s3 = client(longer)
    for item in s3.list_objects_v2(Bucket=longer["bucket"], Prefix="chunks/")["Contents"]:
        until = s3.head_object(Bucket=longer["bucket"], Key=item["Key"])["ObjectLockRetainUntilDate"]
        assert until.timestamp() >= parse_utc(manifest.document["protected_until"])
    assert parse_utc(manifest.document["protected_until"]) > datetime.datetime.now(datetime.timezone.utc).timestamp() + 2.9 * 86400


def test_the_protected_site_backs_up_and_resumes_but_cannot_destroy(locked_bucket):
    if locked_bucket["site_a"] is None:
        assert locked_bucket["server"] == "moto"  # moto does not enforce bucket policies: nothing to prove there
        return
    site_a = locked(locked_bucket["site_a"], write_only=True)
    data = os.urandom(3 * MIB)
    # A backup cut after its first chunk, then resumed: neither run sends a delete.
    cut_backup(site_a, "nightly", data)
    writer, manifest = backup(site_a, "nightly", data)
    assert writer.stats.requests["delete"] == 0
    listed = run_module("bank_backup_info", {"bank": site_a})
    assert [(b["name"], b["status"]) for b in listed["backups"]] == [("nightly", "complete")]
    refused = run_module("bank_delete", {"bank": site_a, "backup": "nightly"})
    assert refused.failed and refused["option"] == "bank.write_only" and "privileged credentials" in refused["msg"]

    attacker = client(site_a)
    bucket = site_a["bucket"]
    chunk = attacker.list_objects_v2(Bucket=bucket, Prefix="chunks/")["Contents"][0]["Key"]
    manifest_at = manifest_key(manifest.backup_id)
    version = attacker.list_object_versions(Bucket=bucket, Prefix=chunk)["Versions"][0]["VersionId"]
    until = attacker.head_object(Bucket=bucket, Key=chunk)["ObjectLockRetainUntilDate"]
    attempts = {
        "delete a chunk": lambda: attacker.delete_object(Bucket=bucket, Key=chunk),
        "delete the manifest": lambda: attacker.delete_object(Bucket=bucket, Key=manifest_at),
        "delete a chunk's version": lambda: attacker.delete_object(Bucket=bucket, Key=chunk, VersionId=version),
        "bypass governance": lambda: attacker.delete_object(Bucket=bucket, Key=chunk, VersionId=version, BypassGovernanceRetention=True),
        "bulk delete": lambda: attacker.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": chunk}, {"Key": manifest_at}]}),
        "shorten the lock": lambda: attacker.put_object_retention(Bucket=bucket, Key=chunk, Retention={
            "Mode": "GOVERNANCE", "RetainUntilDate": until - datetime.timedelta(hours=12)}),
        "delete the bucket": lambda: attacker.delete_bucket(Bucket=bucket),
        "replace the policy": lambda: attacker.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": []})),
        "turn versioning off": lambda: attacker.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"}),
    }
    refusals = {what: denied(call) for what, call in attempts.items()}
    assert all(code in ("AccessDenied", "InvalidRequest", "MethodNotAllowed") for code in refusals.values()), refusals
    # Overwriting is a put, which the site must keep: it makes a newer version, and the restore reads
    # past it to the locked originals (chunk and manifest) that still verify.
    attacker.put_object(Bucket=bucket, Key=chunk, Body=b"ransom note")
    attacker.put_object(Bucket=bucket, Key=manifest_at, Body=b"ransom note")
    assert restore(locked_bucket["owner"], "nightly") == data
    assert client(locked_bucket["owner"]).head_object(Bucket=bucket, Key=chunk, VersionId=version)["ObjectLockMode"] == "GOVERNANCE"


def versions_of(config: dict[str, t.Any]) -> dict[str, list[dict]]:
    """Every version and delete marker of the bucket by key (delete markers carry Marker=True)."""
    s3 = client(config)
    found: dict[str, list[dict]] = {}
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=config["bucket"]):
        for item in page.get("Versions") or []:
            found.setdefault(item["Key"], []).append(item)
        for item in page.get("DeleteMarkers") or []:
            found.setdefault(item["Key"], []).append(dict(item, Marker=True))
    return found


def chunk_keys_of(manifest: t.Any) -> set[str]:
    return {chunk_key(digest) for digest in manifest.chunk_map.unique_data_digests()}


def test_prune_reclaims_versions_keeps_locked_ones_and_names_tampered_keys(locked_bucket):
    owner = locked_bucket["owner"]
    config = locked(owner)
    kept_data, old_data, cut_data = os.urandom(3 * MIB), os.urandom(2 * MIB), os.urandom(2 * MIB)
    dummy, kept = backup(config, "kept", kept_data)
    # A backup written without Object Lock into the same bucket stands for one whose locks have ended.
    dummy, old = backup(owner, "old", old_data)
    deletion = run_module("bank_delete", {"bank": config, "backup": "old"})
    assert deletion["changed"], deletion.result
    cut_backup(config, "cut", cut_data)
    s3 = client(owner)
    bucket = owner["bucket"]
    kept_chunks = sorted(chunk_keys_of(kept))
    # One chunk rewritten with its own bytes (an earlier version of the same ETag, locked), one replaced.
    same = s3.get_object(Bucket=bucket, Key=kept_chunks[0])["Body"].read()
    s3.put_object(Bucket=bucket, Key=kept_chunks[0], Body=same)
    s3.put_object(Bucket=bucket, Key=kept_chunks[1], Body=b"ransom note")
    before = versions_of(owner)
    old_keys = chunk_keys_of(old) | {manifest_key(old.backup_id)}
    # The deletion only hid the manifest behind a delete marker; its version, and the chunks, are still stored.
    assert old_keys <= set(before) and [v.get("Marker", False) for v in before[manifest_key(old.backup_id)]].count(True) == 1

    prune = {"bank": config, "prune": True}
    predicted = run_module("bank_delete", prune, check=True)
    pruned = run_module("bank_delete", prune)
    assert pruned["changed"] and pruned["pruned"] == predicted["pruned"], (predicted.result, pruned.result)
    after = versions_of(owner)
    # Every version and marker of the deleted backup went; the cut backup's locked chunk stayed, its progress went.
    assert not old_keys & set(after), sorted(old_keys & set(after))
    assert not [key for key in after if key.endswith("/progress.json")]
    cut_chunks = [key for key in after if key.startswith("chunks/") and key not in kept_chunks]
    assert cut_chunks and all(len(after[key]) == 1 for key in cut_chunks)
    result = pruned["pruned"]
    assert result["chunks"] == len(chunk_keys_of(old)) and result["old_versions"] >= 2, result
    # Locked and kept: the cut chunk and the locked original under the rewritten chunk.
    assert result["locked_versions"] == len(cut_chunks) + 1 and parse_utc(result["locked_until"]) >= parse_utc(kept.document["protected_until"]), result
    assert len(after[kept_chunks[0]]) == 2
    assert result["suspect_keys"] == [kept_chunks[1]] and len(after[kept_chunks[1]]) == 2, result
    assert restore(config, "kept") == kept_data
    again = run_module("bank_delete", prune)
    assert not again["changed"] and again["pruned"]["objects"] == 0, again.result


def test_verification_checks_every_object_is_locked_until_the_protected_date(locked_bucket):
    config = locked(locked_bucket["owner"])
    data = os.urandom(3 * MIB)
    dummy, manifest = backup(config, "verified", data)
    args = {"bank": config, "backup": "verified", "verify": "presence"}
    verified = run_module("bank_backup_info", args)["backups"][0]["verification"]
    assert verified["ok"] and verified["checked_locks"] == 4 and verified["short_locks"] == [], verified
    # A current version without a lock (here its own bytes, put again without one) is no longer immutable.
    chunk = sorted(chunk_keys_of(manifest))[0]
    s3 = client(config)
    s3.put_object(Bucket=config["bucket"], Key=chunk, Body=s3.get_object(Bucket=config["bucket"], Key=chunk)["Body"].read())
    verified = run_module("bank_backup_info", args)["backups"][0]["verification"]
    assert not verified["ok"] and verified["short_locks"] == [{"key": chunk, "locked_until": None}], verified


def test_the_retention_role_keeps_protected_backups_and_says_until_when(locked_bucket, tmp_path, monkeypatch):
    owner = locked_bucket["owner"]
    config = locked(owner)
    # Oldest first, one volume: "ancient" is unlocked (its locks have ended), "older" and "newest" are locked.
    # The role orders by created_at, to the second: three backups made within one second need distinct ones.
    now = time.time()
    for age, (bank, name) in zip((3, 2, 1), ((owner, "ancient"), (config, "older"), (config, "newest"))):
        monkeypatch.setattr(writer_module, "utc_now", lambda age=age: utc_timestamp(now - age))
        dummy, made = backup(bank, name, os.urandom(MIB))
        if name == "older":
            older = made
    playbook = tmp_path / "retention.yml"
    playbook.write_text(json.dumps([{
        "hosts": "localhost", "gather_facts": False, "tasks": [
            {"name": "Keep the last backup", "ansible.builtin.include_role": {"name": "openstack_dr.bank.bank_retention"},
             "vars": {"bank_retention_bank": config, "bank_retention_keep_last": 1}},
            {"name": "Write what the role reports", "ansible.builtin.copy": {
                "dest": str(tmp_path / "report.json"), "mode": "0600",
                "content": "{{ {'deleted': bank_retention_deleted, 'protected': bank_retention_protected,"
                           " 'pruned': bank_retention_pruned} | to_json }}"}}]}]))
    playbook.chmod(0o600)
    venv_bin = os.path.dirname(sys.executable)
    completed = subprocess.run(
        [os.path.join(venv_bin, "ansible-playbook"), str(playbook), "-e", f"ansible_python_interpreter={sys.executable}"],
        capture_output=True, text=True, timeout=600, check=False,
        env=dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS), ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="0",
                 ANSIBLE_INVENTORY_UNPARSED_WARNING="0"))
    assert completed.returncode == 0, completed.stdout + completed.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert [entry["name"] for entry in report["deleted"]] == ["ancient"], report
    assert report["protected"] == {"older": older.document["protected_until"]}, report
    assert report["pruned"]["chunks"] == 1 and report["pruned"]["locked_versions"] == 0, report
    listed = run_module("bank_backup_info", {"bank": config})
    assert sorted(entry["name"] for entry in listed["backups"]) == ["newest", "older"]
