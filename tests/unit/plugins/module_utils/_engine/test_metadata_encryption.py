# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""An encrypted bank hides its metadata too: manifests and progress objects are sealed, bound to their key.

Proven on the file bank, whose objects are plain files a test can read byte for byte.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import pathlib
import random

import pytest

from ansible_collections.openstack_dr.bank.plugins.module_utils._bank import open_bank
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine import retention
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.layout import backup_id_for_name, manifest_key
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.store import BackupStore
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.units import MIB
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.verify import DATA, verify_backup
from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import EncryptionError, ManifestError

from .engine_helpers import backup, pieces_of, restore

PASSPHRASE = "correct horse battery staple"
NAME = "payroll-db-2026-12-01"
SOURCE = {"volume": {"id": "5d9c3a1e-volume-id", "name": "payroll-database", "description": "the payroll ledger",
                     "metadata": {"owner": "finance-team-zeta", "cost_center": "CC-7781"}, "volume_type": "gold-a"},
          "image": {"os_hash_algo": "sha512", "os_hash_value": "not-shown-either"}}


def image() -> bytes:
    rng = random.Random(5)
    return rng.randbytes(MIB + 5) + bytes(MIB) + b"ledger text " * 90000


def needles(data: bytes) -> dict[str, bytes]:
    """Everything that names or fingerprints the backup, in every form it could be stored."""
    found = {"backup name": NAME.encode(), "description": b"nightly payroll backup"}
    volume = SOURCE["volume"]
    found.update({f"volume {key}": str(volume[key]).encode() for key in ("id", "name", "description")})
    found.update({f"metadata {key}": value.encode() for key, value in volume["metadata"].items()})
    found["glance hash"] = SOURCE["image"]["os_hash_value"].encode()
    for algorithm in ("sha256", "sha512"):
        digest = hashlib.new(algorithm, data).digest()
        found[f"{algorithm} hex"] = digest.hex().encode()
        found[f"{algorithm} HEX"] = digest.hex().upper().encode()
        found[f"{algorithm} raw"] = digest
        found[f"{algorithm} base64"] = base64.b64encode(digest)
    return found


def hits(root: pathlib.Path, wanted: dict[str, bytes]) -> dict[str, list[str]]:
    """Which needle is in which object (file) of the bank, or in an object's name."""
    found: dict[str, list[str]] = {}
    for path in root.rglob("*"):
        if path.is_file():
            blob = path.read_bytes() + str(path.relative_to(root)).encode()
            for what, needle in wanted.items():
                if needle in blob:
                    found.setdefault(what, []).append(str(path.relative_to(root)))
    return found


@pytest.fixture(name="bank_dir")
def fixture_bank_dir(tmp_path):
    return tmp_path / "bank"


def file_store(bank_dir, passphrase=PASSPHRASE) -> BackupStore:
    return BackupStore(open_bank({"type": "file", "path": str(bank_dir), "create": True}), passphrase)


def test_no_object_of_an_encrypted_bank_shows_names_metadata_or_image_hashes(bank_dir):
    data = image()
    store = file_store(bank_dir)
    wanted = needles(data)
    # A backup still running: its progress object and its lock are in the bank.
    writer = store.backup_writer(NAME, description="nightly payroll backup", source=SOURCE, chunk_size=MIB,
                                 progress_interval=0)
    writer.write_chunks(pieces_of(data), expected_size=len(data), expected_hash=("sha512", hashlib.sha512(data).hexdigest()))
    assert {path.parent.name for path in bank_dir.rglob("*.json")} >= {"locks", backup_id_for_name(NAME)}
    assert hits(bank_dir, wanted) == {}
    manifest = writer.commit()
    assert manifest.hashes["sha256"] == hashlib.sha256(data).hexdigest()

    # A backup that failed: its progress object stays, with the error.
    def cut_source():
        yield data[:MIB]
        raise ConnectionResetError("the image download was cut")

    with pytest.raises(ConnectionResetError):
        store.backup_writer(NAME + "-failed", source=SOURCE, chunk_size=MIB).write_chunks(cut_source(), expected_size=len(data))
    assert hits(bank_dir, wanted) == {}
    sealed = json.loads((bank_dir / manifest_key(manifest.backup_id)).read_text())
    assert sorted(sealed) == ["format", "format_version", "sealed"] and sealed["format_version"] == 2

    # With the passphrase everything reads as before, through every reader.
    reopened = file_store(bank_dir)
    listed = {entry.backup_name: entry for entry in reopened.list_backups()}
    assert listed[NAME].status == "complete" and listed[NAME].manifest.hashes == manifest.hashes
    assert listed[NAME].source == SOURCE and listed[NAME].manifest.document["description"] == "nightly payroll backup"
    assert listed[NAME + "-failed"].status == "failed" and listed[NAME + "-failed"].progress.source == SOURCE
    assert reopened.list_backups(source_volume="payroll-database")
    assert restore(reopened, NAME) == data
    assert verify_backup(reopened, NAME, DATA).ok
    plan = retention.prune(reopened)
    assert plan.progress_objects == 1 and restore(file_store(bank_dir), NAME) == data


def test_without_the_passphrase_an_encrypted_bank_shows_nothing(bank_dir):
    backup(file_store(bank_dir), NAME, image(), source=SOURCE)
    with pytest.raises(EncryptionError, match="is encrypted: the option encryption_passphrase is required"):
        file_store(bank_dir, passphrase=None).list_backups()
    with pytest.raises(EncryptionError, match="Wrong encryption passphrase"):
        file_store(bank_dir, passphrase="wrong horse").list_backups()
    with pytest.raises(EncryptionError, match="encryption_passphrase is required"):
        file_store(bank_dir, passphrase=None).load_manifest(NAME)


def test_a_sealed_manifest_moved_to_another_backup_does_not_open(bank_dir):
    store = file_store(bank_dir)
    dummy, first = backup(store, "first", os.urandom(MIB))
    dummy, second = backup(store, "second", os.urandom(MIB))
    (bank_dir / manifest_key(second.backup_id)).write_bytes((bank_dir / manifest_key(first.backup_id)).read_bytes())
    with pytest.raises(ManifestError, match="failed authentication"):
        file_store(bank_dir).load_manifest("second")


def test_a_tampered_sealed_manifest_does_not_open(bank_dir):
    store = file_store(bank_dir)
    dummy, manifest = backup(store, "tampered", os.urandom(MIB))
    path = bank_dir / manifest_key(manifest.backup_id)
    envelope = json.loads(path.read_text())
    ciphertext = bytearray(base64.b64decode(envelope["sealed"]["ciphertext"]))
    ciphertext[10] ^= 1
    envelope["sealed"]["ciphertext"] = base64.b64encode(bytes(ciphertext)).decode()
    path.write_text(json.dumps(envelope))
    with pytest.raises(ManifestError, match="failed authentication"):
        file_store(bank_dir).load_manifest("tampered")


def test_a_version_1_manifest_in_an_encrypted_bank_still_reads_and_restores(bank_dir):
    """Written before manifests were sealed: plain JSON in an encrypted bank."""
    data = image()
    store = file_store(bank_dir)
    dummy, manifest = backup(store, NAME, data, source=SOURCE)
    key = manifest_key(manifest.backup_id)
    (bank_dir / key).write_bytes(manifest.to_bytes())  # no sealer: version 1, as 0.1.0 betas wrote it
    assert json.loads((bank_dir / key).read_text())["format_version"] == 1
    reopened = file_store(bank_dir)
    assert [entry.backup_name for entry in reopened.list_backups()] == [NAME]
    assert restore(reopened, NAME) == data and verify_backup(reopened, NAME, DATA).ok


def test_a_plain_bank_keeps_writing_readable_version_1_documents(bank_dir):
    store = file_store(bank_dir, passphrase=None)
    dummy, manifest = backup(store, NAME, image(), source=SOURCE)
    document = json.loads((bank_dir / manifest_key(manifest.backup_id)).read_text())
    assert document["format_version"] == 1 and document["backup_name"] == NAME and "sealed" not in document


def test_a_sealed_manifest_in_a_plain_bank_is_refused_by_name(bank_dir, tmp_path):
    dummy, manifest = backup(file_store(bank_dir), NAME, os.urandom(MIB))
    plain_dir = tmp_path / "plain"
    plain = file_store(plain_dir, passphrase=None)
    backup(plain, NAME, os.urandom(MIB))
    key = manifest_key(manifest.backup_id)
    (plain_dir / key).write_bytes((bank_dir / key).read_bytes())
    with pytest.raises(ManifestError, match="is encrypted, but the bank is not"):
        file_store(plain_dir, passphrase=None).load_manifest(NAME)


def test_the_scan_finds_what_a_plain_bank_shows(bank_dir):
    """The scan above can fail: in a plain bank the manifest shows the very needles it looks for."""
    data = image()
    backup(file_store(bank_dir, passphrase=None), NAME, data, source=SOURCE, description="nightly payroll backup")
    found = hits(bank_dir, needles(data))
    assert {"backup name", "description", "volume name", "metadata owner", "glance hash", "sha256 hex"} <= set(found)
