# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Deduplication without listing the bank, deletion that leaves chunks to one prune, and prunes that
stop anywhere: on every real bank (the filesystem, Swift through both APIs, moto)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ansible_collections.openstack_dr.bank.plugins.module_utils._bank import open_bank
from ansible_collections.openstack_dr.bank.plugins.module_utils._bank.base import Bank
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine import known_chunks, retention
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.layout import CHUNKS_PREFIX
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.store import BackupStore
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.verify import verify_backup
from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import BankError

from bank_fixtures import BACKENDS  # pylint: disable=wrong-import-order

MIB = 1024 * 1024
CHUNK = MIB
ROOT = Path(__file__).resolve().parents[2]


def chunk_keys(bank: Bank) -> set[str]:
    return {entry.key for entry in bank.list(CHUNKS_PREFIX)}


def restored(store: BackupStore, name: str) -> bytes:
    parts = []
    with store.open_backup(name) as reader:
        while True:
            part = reader.read(300_001)
            if not part:
                return b"".join(parts)
            parts.append(part)


def write(store: BackupStore, name: str, data: bytes, volume: str):
    writer = store.backup_writer(name, chunk_size=CHUNK, source={"volume": {"id": volume, "name": volume}})
    writer.write([data[offset:offset + 3 * MIB + 1] for offset in range(0, len(data), 3 * MIB + 1)])
    return writer


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("listing_budget", [0, known_chunks.LISTING_BUDGET], ids=["bank-too-big-to-list", "small-bank-listed"])
def test_a_backup_of_another_volume_with_identical_chunks_uploads_none(backend, listing_budget, make_bank_config, monkeypatch):
    monkeypatch.setattr(known_chunks, "LISTING_BUDGET", listing_budget)
    with open_bank(make_bank_config(backend, "clones")) as bank:
        store = BackupStore(bank, passphrase="clone secret")
        image = random.Random(5).randbytes(5 * CHUNK) + bytes(2 * CHUNK)
        write(store, "clone-a", image, "volume-a")
        keys = chunk_keys(bank)
        assert len(keys) == 5
        clone = write(store, "clone-b", image, "volume-b")
        requests = clone.stats.as_dict()["requests"]
        assert clone.stats.chunks_written == 0 and clone.stats.duplicate_chunks == 5
        # Without a listing, one HEAD per data chunk; with one, none.
        assert (clone.stats.chunks_checked, requests["head"]) == ((5, 5) if listing_budget == 0 else (0, 0))
        assert chunk_keys(bank) == keys
        assert restored(store, "clone-b") == image
        # Its next backup starts from its own manifest: nothing asked per chunk.
        again = write(store, "clone-b-2", image, "volume-b")
        assert again.stats.chunks_written == 0 and again.stats.as_dict()["requests"]["head"] == 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_delete_then_one_prune_leaves_the_other_backups_restorable_byte_exact(backend, make_bank_config):
    with open_bank(make_bank_config(backend, "delete-prune")) as bank:
        store = BackupStore(bank)
        shared = random.Random(7).randbytes(2 * CHUNK)
        datas = {f"day{day}": shared + random.Random(day).randbytes(CHUNK) for day in range(4)}
        for name, data in datas.items():
            write(store, name, data, "volume")
        keys = chunk_keys(bank)
        for name in ("day0", "day1"):
            deletion = retention.delete_backup(store, name)
            assert deletion.deleted and deletion.chunks == 0 and deletion.chunks_referenced == 3
        assert chunk_keys(bank) == keys  # chunks wait for the prune
        predicted = retention.prune(store, check_mode=True)
        pruned = retention.prune(store)
        assert pruned.chunks == predicted.chunks == 2 and pruned.keys == predicted.keys
        assert len(chunk_keys(bank)) == 4
        for name in ("day2", "day3"):
            assert restored(store, name) == datas[name] and verify_backup(store, name).ok
        assert store.load_manifest("day0") is None


class FailingDeletes(Bank):
    """A real bank whose chunk deletions fail after ``allowed`` delete requests."""

    def __init__(self, bank: Bank, allowed: int) -> None:
        self.inner = bank
        self.description = bank.description
        self.allowed = allowed

    def put(self, key, data):
        self.inner.put(key, data)

    def get(self, key):
        return self.inner.get(key)

    def exists(self, key):
        return self.inner.exists(key)

    def list(self, prefix=""):
        return self.inner.list(prefix)

    def delete_many(self, keys):
        keys = list(keys)
        if any(key.startswith(CHUNKS_PREFIX) for key in keys):
            if self.allowed <= 0:
                raise BankError("injected failure in the middle of a prune")
            self.allowed -= 1
        return self.inner.delete_many(keys)


def garbage_bank(store: BackupStore) -> dict[str, bytes]:
    """Three complete backups sharing chunks, and six deleted ones whose 12 chunks only a prune removes."""
    shared = random.Random(3).randbytes(CHUNK)
    kept = {f"kept{number}": shared + random.Random(100 + number).randbytes(CHUNK) for number in range(3)}
    for name, data in kept.items():
        write(store, name, data, name)
    for number in range(6):
        write(store, f"old{number}", random.Random(200 + number).randbytes(2 * CHUNK), f"old{number}")
        retention.delete_backup(store, f"old{number}")
    return kept


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_prune_failing_after_some_deletes_leaves_every_complete_backup_restorable(backend, make_bank_config, monkeypatch):
    monkeypatch.setattr(retention, "LISTED_KEYS", 3)  # delete in batches of three
    with open_bank(make_bank_config(backend, "prune-fails")) as bank:
        store = BackupStore(bank)
        kept = garbage_bank(store)
        assert len(chunk_keys(bank)) == 4 + 12
        with pytest.raises(BankError, match="injected"):
            retention.prune(BackupStore(FailingDeletes(bank, allowed=2)))
        assert len(chunk_keys(bank)) == 4 + 12 - 6
        for name, data in kept.items():
            assert restored(store, name) == data and verify_backup(store, name).ok
        assert retention.prune(store).chunks == 6 and len(chunk_keys(bank)) == 4


KILLED_PRUNE = textwrap.dedent("""
    import json, os, signal, sys
    from ansible_collections.openstack_dr.bank.plugins.module_utils._bank import open_bank
    from ansible_collections.openstack_dr.bank.plugins.module_utils._engine import retention
    from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.store import BackupStore
    retention.LISTED_KEYS = 3
    bank = open_bank(json.loads(sys.argv[1]))
    real_delete_many = bank.delete_many
    done = []
    def delete_many(keys):
        keys = list(keys)
        count = real_delete_many(keys)
        if any(key.startswith("chunks/") for key in keys):
            done.append(keys)
            if len(done) == 2:
                os.kill(os.getpid(), signal.SIGKILL)  # killed mid-prune, its exclusive lock left behind
        return count
    bank.delete_many = delete_many
    retention.prune(BackupStore(bank))
""")


@pytest.mark.parametrize("backend", ["file", "swift_s3"])
def test_a_prune_killed_mid_way_leaves_every_complete_backup_restorable(backend, make_bank_config):
    config = make_bank_config(backend, "prune-killed")
    with open_bank(config) as bank:
        store = BackupStore(bank)
        kept = garbage_bank(store)
        env = dict(os.environ, PYTHONPATH=str(ROOT / ".cache" / "collections"))
        child = subprocess.run([sys.executable, "-c", KILLED_PRUNE, json.dumps(config)], env=env, timeout=300, check=False,
                               capture_output=True, text=True)
        assert child.returncode == -signal.SIGKILL, child.stderr
        assert len(chunk_keys(bank)) == 4 + 12 - 6
        for name, data in kept.items():
            assert restored(store, name) == data and verify_backup(store, name).ok
        # The dead prune's lock is broken (its process is gone), and the next prune finishes the job.
        assert retention.prune(store, lock_wait_timeout=60).chunks == 6 and len(chunk_keys(bank)) == 4
