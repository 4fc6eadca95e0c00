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
"""

from __future__ import annotations

import dataclasses
import time
import typing as t

from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.layout import (
    BACKUPS_PREFIX,
    MANIFEST_NAME,
    PROGRESS_NAME,
    backup_prefix,
)
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.locks import (
    DEFAULT_LOCK_WAIT_TIMEOUT,
    EXCLUSIVE,
    BankLock,
)
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.documents import parse_utc
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.known_chunks import PackedIdSet
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
