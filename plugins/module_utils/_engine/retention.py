# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Removing backups from a bank: a deletion removes one backup's own objects, a prune every chunk
no complete backup references.

A deletion costs a few requests whatever the bank holds: it removes the manifest first (the backup
stops being complete), then the backup's progress object, and leaves the chunks to the next prune,
which reclaims the chunks of every deleted backup in one pass. A prune reads every manifest into a
packed id set (32 bytes per referenced chunk), then streams the chunk listing and deletes what no
manifest names, in batches; interrupted anywhere, it has removed only unreferenced chunks. Both run
under the exclusive bank lock, so no running backup can lose a chunk it has just found in the bank;
in check mode they only count.

In a versioned bucket (S3 Object Lock needs one) a delete only hides an object behind a delete marker.
There a prune works on versions: it removes every version of what it reclaims, the earlier versions of
what it keeps when they hold the same bytes, and the delete markers left over; it never tries to remove
a version Object Lock still protects, and keeps every version of an object a backup needs whose
current version was replaced by different bytes or hidden, reporting it: someone may have tampered.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
import typing as t

from ansible_collections.openstack_dr.bank.plugins.module_utils._bank.base import ObjectVersion
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.layout import (
    BACKUPS_PREFIX,
    BANK_CONFIG_KEY,
    CHUNKS_PREFIX,
    LOCKS_PREFIX,
    MANIFEST_NAME,
    PROGRESS_NAME,
    backup_prefix,
    digest_from_chunk_key,
)
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.locks import (
    DEFAULT_LOCK_WAIT_TIMEOUT,
    EXCLUSIVE,
    BankLock,
)
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.documents import parse_utc, utc_timestamp
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.known_chunks import SOURCES_PREFIX, PackedIdSet
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.store import BackupStore
from ansible_collections.openstack_dr.bank.plugins.module_utils._manifest import Manifest


# Plans list at most this many keys; their counts cover everything. Also the size of a delete batch.
LISTED_KEYS = 1000


@dataclasses.dataclass
class DeletionPlan:
    """What deleting one backup removes: its own objects, manifest first. Its chunks go at the next prune."""

    backup_id: str
    manifest: Manifest | None  # None for a backup that never completed
    objects: list[str] = dataclasses.field(default_factory=list)
    object_bytes: int = 0
    deleted: bool = False
    # The Object Lock date of a backup that may not be deleted yet (it is then kept whole), or None.
    protected_until: str | None = None

    @property
    def exists(self) -> bool:
        return bool(self.objects)

    @property
    def backup_name(self) -> str | None:
        return self.manifest.backup_name if self.manifest is not None else None

    @property
    def chunks(self) -> int:
        """Chunks the deletion itself removes: none, a prune reclaims them."""
        return 0

    @property
    def chunks_referenced(self) -> int:
        """Distinct chunks the backup referenced: those no other backup uses go at the next prune."""
        return len(self.manifest.chunk_map.unique_data_digests()) if self.manifest is not None else 0


@dataclasses.dataclass
class PrunePlan:
    """What a prune removes (or removed): unreferenced chunks first, then every progress object."""

    objects: int = 0
    keys: list[str] = dataclasses.field(default_factory=list)  # the first LISTED_KEYS, in removal order
    chunks: int = 0
    progress_objects: int = 0
    object_bytes: int = 0
    manifests: int = 0  # complete backups whose chunks were kept
    referenced_chunks: int = 0
    pruned: bool = False
    # Versioned buckets only: earlier versions and delete markers among ``objects``; versions kept
    # because Object Lock still protects them, with the latest such date; keys kept whole as suspect.
    old_versions: int = 0
    locked_versions: int = 0
    locked_until: str | None = None
    suspect_keys: list[str] = dataclasses.field(default_factory=list)

    def note(self, key: str, size: int) -> None:
        self.objects += 1
        self.object_bytes += size
        if len(self.keys) < LISTED_KEYS:
            self.keys.append(key)


def plan_deletion(store: BackupStore, backup: str) -> DeletionPlan:
    """What deleting ``backup`` removes: its manifest and progress object (one listing, two reads)."""
    backup_id = store.backup_id_for(backup)
    own_objects = {entry.key: entry.size for entry in store.bank.list(backup_prefix(backup_id))}
    if not own_objects:
        return DeletionPlan(backup_id, manifest=None)
    # Reading the bank configuration first refuses a wrong passphrase before anything is planned.
    manifest = store.load_manifest(backup_id) if store.check_access() else None
    locked = parse_utc(manifest.document.get("protected_until")) if manifest is not None else None
    if locked is not None and locked > time.time():
        # Its objects are locked: trying would only fail (or leave delete markers over locked versions).
        return DeletionPlan(backup_id, manifest, protected_until=manifest.document["protected_until"])
    # The manifest goes first: an interrupted deletion never leaves a complete-looking backup.
    ordered = sorted(own_objects, key=lambda key: not key.endswith("/" + MANIFEST_NAME))
    return DeletionPlan(backup_id, manifest, objects=ordered, object_bytes=sum(own_objects.values()))


def delete_backup(store: BackupStore, backup: str, *, check_mode: bool = False,
                  lock_wait_timeout: float = DEFAULT_LOCK_WAIT_TIMEOUT) -> DeletionPlan:
    """Delete what ``plan_deletion`` names, holding the bank exclusively; in check mode only plan."""
    if check_mode:
        return plan_deletion(store, backup)
    # Locks are read without the passphrase: an encrypted bank's lock names the backup by id only.
    label = store.backup_id_for(backup) if store.document_sealer() is not None else backup
    with BankLock(store.bank, EXCLUSIVE, f"delete {label}", wait_timeout=lock_wait_timeout):
        plan = plan_deletion(store, backup)
        if plan.exists:
            store.bank.delete_many(plan.objects[:1])  # the manifest, alone and first
            store.bank.delete_many(plan.objects[1:])
            plan.deleted = True
    return plan


def referenced_chunks(store: BackupStore, excluding: t.Collection[str] = ()) -> tuple[PackedIdSet, int, list]:
    """The ids every complete manifest references (manifests in ``excluding`` count as deleted), how many
    manifests were read, and the (key, size) of every progress object not in ``excluding``.

    A manifest that cannot be read raises: its chunks cannot be told apart from garbage.
    """
    referenced = PackedIdSet(bucket_bits=16)
    manifests = 0
    progress_objects = []
    for entry in store.bank.list(BACKUPS_PREFIX):
        if entry.key in excluding:
            continue
        if entry.key.endswith("/" + MANIFEST_NAME):
            referenced.update(store.manifest_at(entry.key).chunk_map.data_digests())
            manifests += 1
        elif entry.key.endswith("/" + PROGRESS_NAME):
            progress_objects.append((entry.key, entry.size))
    return referenced, manifests, progress_objects


def _prune(store: BackupStore, excluding: t.Collection[str], lock: BankLock | None) -> PrunePlan:
    if store.bank.versioned():
        return _prune_versions(store, excluding, lock)
    referenced, manifests, progress_objects = referenced_chunks(store, excluding)
    plan = PrunePlan(manifests=manifests, referenced_chunks=len(referenced))
    batch: list[str] = []

    def remove(key: str, size: int) -> None:
        plan.note(key, size)
        if lock is not None:
            batch.append(key)
            if len(batch) >= LISTED_KEYS:
                flush_batch()

    def flush_batch() -> None:
        if lock is not None and batch:
            # A lock that went stale may have let a backup in: stop before removing anything more.
            lock.assert_still_held()
            store.bank.delete_many(batch)
            batch.clear()
            plan.pruned = True

    # Chunks first, streamed from the listing: an interrupted prune still shows which backups failed.
    for digest, entry in store.stored_chunks():
        if digest not in referenced:
            plan.chunks += 1
            remove(entry.key, entry.size)
    flush_batch()
    for key, size in progress_objects:
        plan.progress_objects += 1
        remove(key, size)
    flush_batch()
    return plan


# How a prune treats the versions of a key (see _VersionSweep.sweep_key).
GARBAGE = "garbage"  # every version goes
NEEDED = "needed"  # a complete backup (or the bank) needs its current bytes
DOCUMENT = "document"  # kept while visible; deleted (a delete marker on top), it is garbage
COORDINATION = "coordination"  # rewritten on purpose: only its current version is kept


def _key_kind(key: str, referenced: PackedIdSet, excluding: t.Collection[str]) -> str:
    digest = digest_from_chunk_key(key) if key.startswith(CHUNKS_PREFIX) else None
    if digest is not None:
        return NEEDED if digest in referenced else GARBAGE
    if key.endswith("/" + PROGRESS_NAME) and key.startswith(BACKUPS_PREFIX):
        return GARBAGE  # under the exclusive lock, every progress object is a leftover
    if key in excluding:
        return GARBAGE  # a manifest the check-mode deletion just before removes
    if key.startswith((LOCKS_PREFIX, SOURCES_PREFIX)):
        return COORDINATION  # released marks replace holders, each backup rewrites its hint: bytes differ on purpose
    if key == BANK_CONFIG_KEY:
        return NEEDED
    return DOCUMENT


class _VersionSweep:
    """Removes versions in batches, delete markers only after every version behind them is gone."""

    def __init__(self, store: BackupStore, plan: PrunePlan, lock: BankLock | None) -> None:
        self.bank = store.bank
        self.plan = plan
        self.lock = lock
        self.now = time.time()
        self.versions: list[tuple[str, str]] = []
        self.markers: list[tuple[str, str]] = []
        self.refused: set[str] = set()
        self.latest_lock: float | None = None

    def locked(self, version: ObjectVersion) -> bool:
        """Whether Object Lock still protects ``version`` (one HEAD in a locked bank; markers never are)."""
        if version.delete_marker or self.bank.object_lock is None:
            return False
        until = self.bank.version_locked_until(version.key, version.version_id)
        if until is None or until.timestamp() <= self.now:
            return False
        self.plan.locked_versions += 1
        self.latest_lock = max(self.latest_lock or 0.0, until.timestamp())
        return True

    def remove(self, version: ObjectVersion, *, marker_last: bool = False) -> None:
        # Lock objects are the bank's own bookkeeping, every locking run leaves one: removed, not reported.
        if not version.key.startswith(LOCKS_PREFIX):
            self.plan.note(version.key, version.size)
            self.plan.old_versions += not version.latest
        if self.lock is None:
            return
        (self.markers if marker_last else self.versions).append((version.key, version.version_id))
        if len(self.versions) + len(self.markers) >= LISTED_KEYS:
            self.flush()

    def sweep_key(self, versions: list[ObjectVersion], kind: str) -> None:
        latest = versions[0] if versions[0].latest else None
        hidden = latest is not None and latest.delete_marker
        if hidden and kind == NEEDED:
            if any(not version.delete_marker for version in versions):
                self.suspect(versions[0].key)  # a backup needs what a delete marker hides: keep it all
            return
        if kind == GARBAGE or hidden:
            self.sweep_garbage(versions, latest)
        elif latest is not None:
            self.sweep_earlier(versions[1:], latest, kind)

    def sweep_garbage(self, versions: list[ObjectVersion], latest: ObjectVersion | None) -> None:
        kept = [version for version in versions if not version.delete_marker and self.locked(version)]
        for version in versions:
            if not version.delete_marker and version not in kept:
                self.remove(version)
        if kept:
            return  # the delete markers stay: removing one would bring a locked version back into view
        if latest is not None and not latest.delete_marker:
            self.plan.chunks += digest_from_chunk_key(latest.key) is not None and latest.key.startswith(CHUNKS_PREFIX)
            self.plan.progress_objects += latest.key.endswith("/" + PROGRESS_NAME)
        for version in versions:
            if version.delete_marker:
                self.remove(version, marker_last=version.latest)

    def sweep_earlier(self, earlier: list[ObjectVersion], latest: ObjectVersion, kind: str) -> None:
        """Remove the earlier versions of a visible object: of the same bytes, or any for coordination."""
        if kind != COORDINATION and any(not version.delete_marker and version.etag != latest.etag for version in earlier):
            self.suspect(latest.key)  # replaced by different bytes: every version stays for a person to judge
            return
        for version in earlier:
            if not self.locked(version):
                self.remove(version)

    def suspect(self, key: str) -> None:
        if len(self.plan.suspect_keys) < LISTED_KEYS:
            self.plan.suspect_keys.append(key)

    def flush(self) -> None:
        if self.lock is None or not (self.versions or self.markers):
            return
        # A lock that went stale may have let a backup in: stop before removing anything more.
        self.lock.assert_still_held()
        if self.versions:
            refused = set(self.bank.delete_versions(self.versions)) - self.refused
            # Locked in a way the HEAD did not show (a bucket's default retention): kept, and so is its marker.
            self.plan.locked_versions += len(refused)
            self.refused |= refused
            self.versions.clear()
        markers = [(key, version) for key, version in self.markers if key not in self.refused]
        self.markers.clear()
        if markers:
            self.bank.delete_versions(markers)
        self.plan.pruned = True

    def finish(self) -> None:
        self.flush()
        if self.latest_lock is not None:
            self.plan.locked_until = utc_timestamp(self.latest_lock)


def _prune_versions(store: BackupStore, excluding: t.Collection[str], lock: BankLock | None) -> PrunePlan:
    referenced, manifests, dummy = referenced_chunks(store, excluding)
    plan = PrunePlan(manifests=manifests, referenced_chunks=len(referenced))
    sweep = _VersionSweep(store, plan, lock)
    for key, versions in itertools.groupby(store.bank.list_versions(""), key=lambda version: version.key):
        sweep.sweep_key(list(versions), _key_kind(key, referenced, excluding))
    sweep.finish()
    return plan


def plan_prune(store: BackupStore, excluding: t.Collection[str] = ()) -> PrunePlan:
    """What a prune removes: every chunk no complete backup references, and every progress object.

    Keys in ``excluding`` count as removed already: a check-mode deletion run just before names
    them, so the chunks only that backup used are predicted too.

    Chunks that no manifest names belong to deleted backups, or were uploaded by backups that failed
    and were not resumed. Run under the exclusive lock, no backup is running, so every progress
    object is a leftover too.
    """
    return _prune(store, excluding, lock=None)


def prune(store: BackupStore, *, check_mode: bool = False, lock_wait_timeout: float = DEFAULT_LOCK_WAIT_TIMEOUT,
          excluding: t.Collection[str] = ()) -> PrunePlan:
    """Remove what ``plan_prune`` names, holding the bank exclusively (running backups are waited for)."""
    if check_mode:
        return plan_prune(store, excluding)
    with BankLock(store.bank, EXCLUSIVE, "prune", wait_timeout=lock_wait_timeout) as lock:
        return _prune(store, (), lock)
