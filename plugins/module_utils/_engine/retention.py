# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Removing backups from a bank: one backup with the chunks no other uses, or a prune of leftovers.

Each operation first plans (what it would remove, in the order it removes it), then removes under
the exclusive bank lock, so no running backup can lose a chunk it has just found in the bank.
"""

from __future__ import annotations

import dataclasses
import typing as t

from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.layout import (
    BACKUPS_PREFIX,
    MANIFEST_NAME,
    PROGRESS_NAME,
    backup_prefix,
    chunk_key,
    manifest_key,
)
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.locks import (
    DEFAULT_LOCK_WAIT_TIMEOUT,
    EXCLUSIVE,
    BankLock,
)
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.store import BackupStore
from ansible_collections.openstack_dr.bank.plugins.module_utils._manifest import Manifest


@dataclasses.dataclass
class DeletionPlan:
    """What deleting one backup removes: its own objects (manifest first), then the chunks no other backup uses."""

    backup_id: str
    manifest: Manifest | None  # None for a backup that never completed
    objects: list[str] = dataclasses.field(default_factory=list)
    chunks: int = 0
    object_bytes: int = 0
    deleted: bool = False

    @property
    def exists(self) -> bool:
        return bool(self.objects)

    @property
    def backup_name(self) -> str | None:
        return self.manifest.backup_name if self.manifest is not None else None


@dataclasses.dataclass
class PrunePlan:
    """What a prune removes: chunks no complete backup references (first), then every progress object."""

    objects: list[str] = dataclasses.field(default_factory=list)
    chunks: int = 0
    progress_objects: int = 0
    object_bytes: int = 0
    pruned: bool = False


def plan_deletion(store: BackupStore, backup: str) -> DeletionPlan:
    """What deleting ``backup`` removes: its manifest and progress, and the chunks no other backup uses."""
    backup_id = store.backup_id_for(backup)
    own_objects = {entry.key: entry.size for entry in store.bank.list(backup_prefix(backup_id))}
    if not own_objects:
        return DeletionPlan(backup_id, manifest=None)
    # Reading the bank configuration first refuses a wrong passphrase before anything is planned.
    manifest = store.load_manifest(backup_id) if store.check_access() else None
    doomed = _chunks_only_in(store, manifest) if manifest is not None else set()
    stored = {digest: entry.size for digest, entry in store.stored_chunks()} if doomed else {}
    doomed_keys = {chunk_key(digest): stored[digest] for digest in doomed if digest in stored}
    # The manifest goes first: an interrupted deletion never leaves a complete-looking backup.
    ordered = sorted(own_objects, key=lambda key: not key.endswith("/" + MANIFEST_NAME))
    return DeletionPlan(backup_id, manifest, objects=ordered + sorted(doomed_keys), chunks=len(doomed_keys),
                        object_bytes=sum(own_objects.values()) + sum(doomed_keys.values()))


def _chunks_only_in(store: BackupStore, manifest: Manifest) -> set[bytes]:
    """The chunks of ``manifest`` that no other complete backup references."""
    doomed = manifest.chunk_map.unique_data_digests()
    own_key = manifest_key(manifest.backup_id)
    for entry in store.bank.list(BACKUPS_PREFIX):
        if not doomed:
            break
        if entry.key.endswith("/" + MANIFEST_NAME) and entry.key != own_key:
            doomed -= store.manifest_at(entry.key).chunk_map.unique_data_digests()
    return doomed


def delete_backup(store: BackupStore, backup: str, *, check_mode: bool = False,
                  lock_wait_timeout: float = DEFAULT_LOCK_WAIT_TIMEOUT) -> DeletionPlan:
    """Delete what ``plan_deletion`` names, holding the bank exclusively; in check mode only plan."""
    if check_mode:
        return plan_deletion(store, backup)
    with BankLock(store.bank, EXCLUSIVE, f"delete {backup}", wait_timeout=lock_wait_timeout):
        plan = plan_deletion(store, backup)
        if plan.exists:
            store.bank.delete_many(plan.objects[:1])  # the manifest, alone and first
            store.bank.delete_many(plan.objects[1:])
            plan.deleted = True
    return plan


def plan_prune(store: BackupStore, excluding: t.Collection[str] = ()) -> PrunePlan:
    """What a prune removes: every chunk no complete backup references, and every progress object.

    Keys in ``excluding`` are left out: a check-mode deletion run just before names them already.

    Chunks that no manifest names were uploaded by backups that failed and were not resumed (or by
    a backup deleted while it was incomplete). Run under the exclusive lock, no backup is running,
    so every progress object is a leftover too. A manifest that cannot be read stops the prune:
    its chunks cannot be told apart from garbage.
    """
    referenced: set[bytes] = set()
    progress_objects: dict[str, int] = {}
    for entry in store.bank.list(BACKUPS_PREFIX):
        if entry.key.endswith("/" + MANIFEST_NAME):
            referenced |= store.manifest_at(entry.key).chunk_map.unique_data_digests()
        elif entry.key.endswith("/" + PROGRESS_NAME) and entry.key not in excluding:
            progress_objects[entry.key] = entry.size
    unreferenced = {entry.key: entry.size for digest, entry in store.stored_chunks()
                    if digest not in referenced and entry.key not in excluding}
    return PrunePlan(
        # Chunks first: an interrupted prune still shows which backups failed.
        objects=sorted(unreferenced) + sorted(progress_objects),
        chunks=len(unreferenced),
        progress_objects=len(progress_objects),
        object_bytes=sum(unreferenced.values()) + sum(progress_objects.values()),
    )


def prune(store: BackupStore, *, check_mode: bool = False, lock_wait_timeout: float = DEFAULT_LOCK_WAIT_TIMEOUT,
          excluding: t.Collection[str] = ()) -> PrunePlan:
    """Remove what ``plan_prune`` names, holding the bank exclusively (running backups are waited for)."""
    if check_mode:
        return plan_prune(store, excluding)
    with BankLock(store.bank, EXCLUSIVE, "prune", wait_timeout=lock_wait_timeout):
        plan = plan_prune(store)
        if plan.objects:
            store.bank.delete_many(plan.objects)
            plan.pruned = True
    return plan
