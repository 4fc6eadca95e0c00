# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A prune in a versioned bucket: every version of what it reclaims goes, locked versions and what a
backup needs stay, and a delete marker never goes before the versions behind it.

The bank below keeps versions as a versioned S3 bucket does: a put adds one, a delete adds a delete
marker, only a delete by version id removes anything, and Object Lock refuses that while a version is
locked. The real gateways (RGW, moto) are proven in tests/e2e/test_object_lock.py.
"""

from __future__ import annotations

import datetime
import hashlib
import itertools
import os

from ansible_collections.openstack_dr.bank.plugins.module_utils._bank.base import BankObject, ObjectLock, ObjectVersion
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine import retention
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.layout import manifest_key
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.store import BackupStore
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.units import MIB
from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import BankObjectNotFoundError

from .engine_helpers import backup, failed_backup, restore
from .memory_bank import MemoryBank

DAY = 86400.0
SOURCE = {"volume": {"id": "vol-1", "name": "db"}}


class VersionedBank(MemoryBank):
    """Versions per key, oldest first: [version id, bytes or None for a delete marker, retain-until or None]."""

    def __init__(self, lock: ObjectLock | None = ObjectLock("governance", 1, 0)) -> None:
        super().__init__()
        self.object_lock = lock
        self.versions: dict[str, list[list]] = {}
        self.ids = itertools.count(1)
        self.version_deletes: list[tuple[str, str]] = []  # in the order they were sent
        self.hidden_locks: set[str] = set()  # keys locked by a bucket default the HEAD does not show

    def _add(self, key, data, until=None):
        self.versions.setdefault(key, []).append([f"v{next(self.ids)}", None if data is None else bytes(data), until])

    def _current(self, key):
        history = self.versions.get(key)
        return history[-1] if history and history[-1][1] is not None else None

    def versioned(self):
        return True

    def put(self, key, data):
        self._add(key, data)

    def put_locked(self, key, data, retain_until):
        self._add(key, data, retain_until if self.object_lock else None)

    def get(self, key):
        current = self._current(key)
        if current is None:
            raise BankObjectNotFoundError(f"{key} not found")
        return current[1]

    def exists(self, key):
        return self._current(key) is not None

    def locked_until(self, key):
        current = self._current(key)
        return current is not None, current[2] if current else None

    def older_versions(self, key):
        return iter([version[1] for version in self.versions.get(key, [])[:-1] if version[1] is not None])

    def list(self, prefix=""):
        return iter([BankObject(key, len(self._current(key)[1])) for key in sorted(self.versions)
                     if key.startswith(prefix) and self._current(key) is not None])

    def delete_many(self, keys):
        keys = list(keys)
        for key in keys:
            if key in self.versions:
                self._add(key, None)
        return len(keys)

    def list_versions(self, prefix=""):
        for key in sorted(self.versions):
            if key.startswith(prefix):
                history = self.versions[key]
                for index, (version_id, data, dummy) in reversed(list(enumerate(history))):
                    etag = hashlib.md5(data, usedforsecurity=False).hexdigest() if data is not None else ""
                    yield ObjectVersion(key, version_id, len(data or b""), etag, index == len(history) - 1, data is None)

    def version_locked_until(self, key, version_id):
        return next(version[2] for version in self.versions[key] if version[0] == version_id)

    def delete_versions(self, versions):
        refused = []
        now = datetime.datetime.fromtimestamp(retention.time.time(), datetime.timezone.utc)
        for key, version_id in versions:
            self.version_deletes.append((key, version_id))
            version = next((v for v in self.versions.get(key, []) if v[0] == version_id), None)
            if version is None:
                continue
            if (version[2] is not None and version[2] > now) or (key in self.hidden_locks and version[1] is not None):
                refused.append(key)
                continue
            self.versions[key].remove(version)
            if not self.versions[key]:
                del self.versions[key]
        return refused


def chunk_keys(manifest) -> set[str]:
    return {f"chunks/{digest.hex()[:2]}/{digest.hex()}" for digest in manifest.chunk_map.unique_data_digests()}


def test_a_deleted_backup_leaves_no_version_and_a_second_prune_finds_nothing():
    bank = VersionedBank(lock=None)
    store = BackupStore(bank)
    kept_data = os.urandom(2 * MIB)
    dummy, kept = backup(store, "kept", kept_data, source=SOURCE)
    dummy, gone = backup(store, "gone", os.urandom(2 * MIB), source=SOURCE)
    retention.delete_backup(store, "gone")
    predicted = retention.prune(store, check_mode=True)
    pruned = retention.prune(store)
    assert not (chunk_keys(gone) | {manifest_key(gone.backup_id)}) & set(bank.versions)
    assert (pruned.chunks, pruned.keys, pruned.old_versions) == (predicted.chunks, predicted.keys, predicted.old_versions)
    assert pruned.chunks == 2 and pruned.suspect_keys == [] and pruned.locked_versions == 0
    # The manifest's delete marker went after the version behind it, never before.
    manifest_deletes = [version for key, version in bank.version_deletes if key == manifest_key(gone.backup_id)]
    assert len(manifest_deletes) == 2 and manifest_deletes[-1] > manifest_deletes[0]
    assert retention.prune(store).objects == 0
    assert restore(store, "kept") == kept_data


def test_a_locked_orphan_stays_behind_its_delete_marker_until_its_date():
    bank = VersionedBank()
    store = BackupStore(bank)
    failed_backup(store, "cut", os.urandom(2 * MIB), fail_after=MIB + 1)
    orphan = next(key for key in bank.versions if key.startswith("chunks/"))
    until = bank.versions[orphan][0][2]
    bank.delete_many([orphan])  # hidden, as an older prune left it
    pruned = retention.prune(store)
    assert len(bank.versions[orphan]) == 2 and bank.versions[orphan][-1][1] is None
    assert (pruned.locked_versions, pruned.locked_until, pruned.chunks) == (1, retention.utc_timestamp(until.timestamp()), 0)
    assert not [key for key, dummy in bank.version_deletes if key == orphan]  # never even tried


def test_after_its_date_the_orphan_goes_whole(monkeypatch):
    bank = VersionedBank()
    store = BackupStore(bank)
    failed_backup(store, "cut", os.urandom(2 * MIB), fail_after=MIB + 1)
    orphan = next(key for key in bank.versions if key.startswith("chunks/"))
    later = bank.versions[orphan][0][2].timestamp() + 1
    monkeypatch.setattr(retention.time, "time", lambda: later)
    pruned = retention.prune(store)
    assert orphan not in bank.versions and pruned.chunks == 1 and pruned.locked_versions == 0


def test_a_needed_object_replaced_or_hidden_is_kept_whole_and_named():
    bank = VersionedBank()
    store = BackupStore(bank)
    data = os.urandom(3 * MIB)
    dummy, manifest = backup(store, "kept", data, source=SOURCE)
    replaced, hidden, rewritten = sorted(chunk_keys(manifest))
    bank.put(replaced, b"ransom note")
    bank.delete_many([hidden])
    bank.put(rewritten, bank.get(rewritten))  # its own bytes again, unlocked: the locked original stays
    pruned = retention.prune(store)
    assert sorted(pruned.suspect_keys) == sorted([replaced, hidden])
    assert [len(bank.versions[key]) for key in (replaced, hidden, rewritten)] == [2, 2, 2]
    assert pruned.locked_versions == 1 and all(key.endswith("/progress.json") for key in pruned.keys)
    assert restore(store, "kept") == data


def test_a_refused_version_keeps_the_delete_marker_in_front_of_it():
    bank = VersionedBank(lock=None)
    store = BackupStore(bank)
    dummy, gone = backup(store, "gone", os.urandom(MIB), source=SOURCE)
    retention.delete_backup(store, "gone")
    chunk = next(iter(chunk_keys(gone)))
    bank.hidden_locks.add(chunk)  # a bucket's default retention, which the listing does not show
    bank.delete_many([chunk])
    pruned = retention.prune(store)
    assert [version[1] is None for version in bank.versions[chunk]] == [False, True]
    assert pruned.locked_versions == 1


def test_bookkeeping_keeps_only_its_current_version():
    bank = VersionedBank(lock=None)
    store = BackupStore(bank)
    for day in range(3):
        backup(store, f"day-{day}", os.urandom(MIB), source=SOURCE)
    hints = [key for key in bank.versions if key.startswith("sources/")]
    assert len(hints) == 1 and len(bank.versions[hints[0]]) == 3  # each backup rewrote the volume's hint
    pruned = retention.prune(store)
    assert len(bank.versions[hints[0]]) == 1 and pruned.keys.count(hints[0]) == 2
    # Only the prune's own lock is left, released after its sweep; earlier runs' went unreported.
    assert len([key for key in bank.versions if key.startswith("locks/")]) == 1
    assert not [key for key in pruned.keys if key.startswith("locks/")]
