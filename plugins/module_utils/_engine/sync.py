# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Replicating a bank into another: the complete backups, verified on the way, resumable.

The target becomes the same bank: its configuration object (``bank.json``, with the wrapped keys)
is the source's, byte for byte, so it opens with the same passphrase and every chunk and manifest
stays valid unchanged. Then, newest backup first, under a shared lock on the target (a prune there
must not remove a chunk that was found present): each chunk the target lacks is read from the
source, verified with the bank's codec (authenticated, decompressed, hashed) and stored as the same
bytes, by a bounded pool; the backup's manifest, byte for byte, is written once all its chunks are
stored. A chunk that fails verification is reported and not stored, and its backup's manifest is
not written. A rerun finds what an interrupted run stored and copies only the rest.

The replica's manifests state the replica's own locks, never the source's. Into a target with
``object_lock_days`` (S3 Object Lock) every chunk and manifest copied is locked, and every chunk
already there that the backup reuses is extended when short (one HEAD each), by the same ``LockPlan``
a backup uses: the backup must stay locked until the later of the source manifest's
``protected_until`` and its own ``created_at`` plus the target's ``object_lock_days``; the manifest,
written last, records the target's ``protected_until`` and ``object_lock``. A backup the target holds
locked for less than that (the target's days grew, or the source's lock did) is copied again, which
extends its chunks' locks and writes its manifest anew. Into a target without
Object Lock the manifest is copied without those two fields (re-sealed): the replica claims no
protection it lacks, so its verification checks no locks and its backups can be deleted. A manifest
with neither field is copied byte for byte.

Memory: 32 bytes per chunk already in the target (one listing) and per distinct chunk of the
backups copied in one run (packed id sets), one manifest at a time (into a locked target, with a set
of its distinct chunk ids) and at most twice ``parallelism`` chunk objects in flight. The source is only read, so read-only credentials for it are enough.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import time
import typing as t

from ansible_collections.openstack_dr.bank.plugins.module_utils._engine import retention
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.chunking import DEFAULT_PARALLELISM, validate_parallelism
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.codec import ChunkCodec
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.documents import parse_utc
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.immutability import LockPlan
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.known_chunks import PackedIdSet
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.layout import (
    BACKUPS_PREFIX,
    BANK_CONFIG_KEY,
    MANIFEST_NAME,
    chunk_key,
    manifest_key,
)
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.locks import (
    DEFAULT_LOCK_WAIT_TIMEOUT,
    EXCLUSIVE,
    SHARED,
    BankLock,
)
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.malloc_arenas import limit_malloc_arenas
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.store import BackupStore
from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import (
    BankObjectNotFoundError,
    IntegrityError,
    InvalidInputError,
)
from ansible_collections.openstack_dr.bank.plugins.module_utils._manifest import Manifest

CONFIG_COPIED = "copied"
CONFIG_PRESENT = "present"
MISSING_FROM_SOURCE = "missing from the source bank"
# What a manifest says of its bank's Object Lock: a replica states its own.
LOCK_FIELDS = ("protected_until", "object_lock")


@dataclasses.dataclass(frozen=True)
class BackupEntry:
    """One complete backup of a bank, as the sync needs it: never its chunk list."""

    backup_id: str
    backup_name: str
    created_at: str
    source: dict
    manifest_key: str


@dataclasses.dataclass(frozen=True)
class BadChunk:
    chunk: str  # hex id
    error: str


@dataclasses.dataclass
class FailedBackup:
    """A source backup that was not copied because some of its chunks are damaged or missing."""

    entry: BackupEntry
    chunks: list[BadChunk]


@dataclasses.dataclass
class SyncReport:
    """What a sync did, or in check mode would do."""

    bank_config: str = CONFIG_PRESENT
    selected: list[BackupEntry] = dataclasses.field(default_factory=list)  # complete source backups chosen, newest first
    present: list[BackupEntry] = dataclasses.field(default_factory=list)  # already in the target, identical
    copied: list[BackupEntry] = dataclasses.field(default_factory=list)
    failed: list[FailedBackup] = dataclasses.field(default_factory=list)
    vanished: list[BackupEntry] = dataclasses.field(default_factory=list)  # deleted or replaced in the source meanwhile
    target_only: list[BackupEntry] = dataclasses.field(default_factory=list)  # chosen, in the target, not in the source
    deleted: list[retention.DeletionPlan] = dataclasses.field(default_factory=list)
    protected: list[retention.DeletionPlan] = dataclasses.field(default_factory=list)  # kept: locked in the target
    pruned: retention.PrunePlan | None = None
    chunks_copied: int = 0
    chunks_skipped: int = 0
    bad_chunks: set[bytes] = dataclasses.field(default_factory=set)
    bytes_copied: int = 0
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        return bool(self.bank_config == CONFIG_COPIED or self.copied or self.chunks_copied or self.deleted
                    or (self.pruned is not None and self.pruned.objects))

    @property
    def in_target(self) -> list[BackupEntry]:
        """The chosen complete backups the target holds once the sync is done."""
        deleted = {plan.backup_id for plan in self.deleted}
        kept = [entry for entry in self.target_only if entry.backup_id not in deleted]
        return self.present + self.copied + kept


def stored_chunk_ids(store: BackupStore) -> PackedIdSet:
    """The ids of every chunk the bank holds, from one listing."""
    held = PackedIdSet(bucket_bits=16)
    held.update(digest for digest, dummy in store.stored_chunks())
    return held


@dataclasses.dataclass(frozen=True)
class _ChunkCopy:
    digest: bytes
    stored_bytes: int = 0
    error: str | None = None
    # "present": in the target before the run (its lock made long enough); "again": handled earlier in the run.
    found: str | None = None


def _without_lock_fields(manifest: Manifest) -> tuple:
    """What two versions of one backup's manifest must share, whatever each says of its bank's locks."""
    document = {key: value for key, value in manifest.document.items() if key not in LOCK_FIELDS}
    zero_clusters = manifest.zero_clusters.to_json() if manifest.zero_clusters is not None else None
    return document, manifest.chunk_map.to_json(), zero_clusters


def _manifest_objects(store: BackupStore) -> dict[str, int]:
    """Backup id -> size of its manifest object, for every complete backup (listing only)."""
    found = {}
    for entry in store.bank.list(BACKUPS_PREFIX):
        parts = entry.key[len(BACKUPS_PREFIX):].split("/")
        if len(parts) == 2 and parts[1] == MANIFEST_NAME:
            found[parts[0]] = entry.size
    return found


def _read_entry(store: BackupStore, backup_id: str) -> tuple[BackupEntry, bytes] | None:
    """A complete backup's entry and its manifest's bytes; None when it was deleted meanwhile."""
    key = manifest_key(backup_id)
    try:
        data = store.bank.get(key)
    except BankObjectNotFoundError:
        return None
    manifest = store.manifest_at(key, data)
    return BackupEntry(manifest.backup_id, manifest.backup_name, manifest.created_at, manifest.source, key), data


class BankSync:
    """One sync from ``source`` to ``target``; ``run()`` does it, or in check mode predicts it."""

    def __init__(self, source: BackupStore, target: BackupStore, *, select: t.Callable[[BackupEntry], bool] | None = None,
                 follow_deletions: bool = False, parallelism: int = DEFAULT_PARALLELISM,
                 lock_wait_timeout: float = DEFAULT_LOCK_WAIT_TIMEOUT, check_mode: bool = False) -> None:
        if source.bank.description == target.bank.description:
            raise InvalidInputError(f"The source and the target are the same bank ({source.bank.description})")
        self.source = source
        self.target = target
        self.select = select or (lambda entry: True)
        self.follow_deletions = follow_deletions
        self.parallelism = validate_parallelism(parallelism)
        self.lock_wait_timeout = lock_wait_timeout
        self.check_mode = check_mode
        self.report = SyncReport()
        self._codec: ChunkCodec | None = None
        self._to_copy: list[BackupEntry] = []
        self._target_chunks = PackedIdSet()
        self._handled = PackedIdSet(bucket_bits=16)  # every chunk this run copied, found present or found bad
        # Chunks found bad for a backup that then vanished from the source: handled, yet never stored.
        # Another backup that uses one copies it afresh (a packed set cannot forget a member).
        self._not_stored: set[bytes] = set()
        # Into a locked target: every chunk handled for an earlier backup of this run is locked at least this long.
        self._handled_locked_until: float | None = None
        self._lock: BankLock | None = None

    def run(self) -> SyncReport:
        started = time.monotonic()
        self.replicate_config()
        self.plan()
        if self.check_mode:
            self.predict_copies()
        elif self._to_copy:
            with BankLock(self.target.bank, SHARED, f"sync from {self.source.bank.description}",
                          wait_timeout=self.lock_wait_timeout) as lock:
                self._lock = lock
                # Listed under the shared lock: no prune can remove a chunk found here until we are done.
                self._target_chunks = stored_chunk_ids(self.target)
                self.copy_backups()
        if self.follow_deletions:
            self.follow_source_deletions()
        self.report.seconds = time.monotonic() - started
        return self.report

    # -- the bank configuration -----------------------------------------------------------------

    def replicate_config(self) -> None:
        """The target's bank.json becomes the source's; a target that is another bank is refused."""
        self._codec = self.source.open_codec()  # proves the passphrase before anything is read
        if self._codec is None:
            raise InvalidInputError(
                f"The source bank {self.source.bank.description} holds no bank configuration ({BANK_CONFIG_KEY}): "
                "it is empty or the source_bank option points elsewhere. Nothing was copied.")
        config = self.source.bank.get(BANK_CONFIG_KEY)
        if self._target_config_matches(config):
            return
        self.report.bank_config = CONFIG_COPIED
        if self.check_mode:
            return
        with BankLock(self.target.bank, EXCLUSIVE, "initialise the replica", wait_timeout=self.lock_wait_timeout):
            if not self._target_config_matches(config):  # still missing once the lock is held
                self.target.bank.put(BANK_CONFIG_KEY, config)

    def _target_config_matches(self, config: bytes) -> bool:
        """True when the target holds this configuration, False when it holds none; another one is refused."""
        try:
            existing = self.target.bank.get(BANK_CONFIG_KEY)
        except BankObjectNotFoundError:
            return False
        if existing != config:
            raise InvalidInputError(
                f"The target {self.target.bank.description} holds another bank (its {BANK_CONFIG_KEY} differs from "
                f"that of {self.source.bank.description}): a replica must be empty or a replica of the same bank. "
                "Nothing was copied.")
        return True

    # -- what to copy ---------------------------------------------------------------------------

    def plan(self) -> None:
        """Which chosen complete source backups the target lacks (or holds in another version)."""
        target_manifests = _manifest_objects(self.target)
        for backup_id in _manifest_objects(self.source):
            found = _read_entry(self.source, backup_id)
            if found is None:
                continue  # deleted while we listed
            entry, data = found
            if not self.select(entry):
                continue
            self.report.selected.append(entry)
            if backup_id in target_manifests and self._target_holds(entry.manifest_key, data, target_manifests[backup_id]):
                self.report.present.append(entry)
            else:
                self._to_copy.append(entry)
        source_ids = {entry.backup_id for entry in self.report.selected}
        for backup_id in sorted(set(target_manifests) - source_ids):
            found = _read_entry(self.target, backup_id)
            if found is not None and self.select(found[0]):
                self.report.target_only.append(found[0])
        # Newest first: after an interruption, the most recent backups are the ones already there.
        for entries in (self.report.selected, self.report.present, self._to_copy, self.report.target_only):
            entries.sort(key=lambda entry: entry.created_at, reverse=True)

    def _target_holds(self, key: str, data: bytes, size: int) -> bool:
        """Whether the target holds this backup: the same bytes, or (when the sync rewrites the manifest's lock
        fields) the same manifest but for them."""
        source_manifest = self.source.manifest_at(key, data)
        rewritten = self.target.bank.object_lock is not None or any(field in source_manifest.document for field in LOCK_FIELDS)
        if not rewritten and size != len(data):
            return False
        try:
            held = self.target.bank.get(key)
        except BankObjectNotFoundError:
            return False
        if not rewritten:
            return held == data
        try:
            replica = self.target.manifest_at(key, held)
        except IntegrityError:
            return False  # damaged in the target: copied again
        if self.target.bank.object_lock is not None:
            if "protected_until" not in replica.document:
                return False  # copied before the target locked: copied again, which locks it
            plan = self._lock_plan(source_manifest)
            if plan is not None and not plan.covers(parse_utc(replica.document["protected_until"])):
                # Locked for less than it must be now (the target's object_lock_days grew, or the source's lock
                # did): copied again, which extends the lock of every chunk it holds and writes the manifest anew.
                return False
        return _without_lock_fields(replica) == _without_lock_fields(source_manifest)

    def _replica_manifest(self, manifest: Manifest, data: bytes, plan: LockPlan | None) -> bytes:
        """The manifest as the target stores it: the source's bytes, unless either bank locks (see the module doc)."""
        if plan is None and not any(field in manifest.document for field in LOCK_FIELDS):
            return data
        for field in LOCK_FIELDS:
            manifest.document.pop(field, None)
        if plan is not None:
            manifest.document.update(plan.manifest_fields())
        return manifest.to_bytes(self._codec.document_sealer, manifest_key(manifest.backup_id))

    def _lock_plan(self, manifest: Manifest) -> LockPlan | None:
        return LockPlan.for_replica(self.target.bank, time.time(), parse_utc(manifest.created_at),
                                    parse_utc(manifest.document.get("protected_until")))

    # -- copying --------------------------------------------------------------------------------

    def copy_backups(self) -> None:
        limit_malloc_arenas()  # before the pool's threads exist
        with concurrent.futures.ThreadPoolExecutor(max_workers=self.parallelism, thread_name_prefix="sync") as pool:
            try:
                for entry in self._to_copy:
                    self._copy_backup(entry, pool)
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise

    def _copy_backup(self, entry: BackupEntry, pool: concurrent.futures.Executor) -> None:
        try:
            data = self.source.bank.get(entry.manifest_key)
        except BankObjectNotFoundError:
            self.report.vanished.append(entry)
            return
        manifest = self.source.manifest_at(entry.manifest_key, data)
        plan = self._lock_plan(manifest)
        # With a lock plan, the chunks this backup met already (ids repeat within a volume).
        met: set[bytes] = set()
        bad: list[BadChunk] = []
        window: collections.deque = collections.deque()
        for index, digest in enumerate(manifest.chunk_map):
            if digest is None:
                continue
            if digest in self.report.bad_chunks:
                bad.append(BadChunk(digest.hex(), "found damaged or missing earlier in this run"))
                continue
            if plan is not None:
                if digest in met:
                    continue
                met.add(digest)
            if digest in self._not_stored:
                self._not_stored.discard(digest)
                window.append(pool.submit(self._copy_chunk, digest, manifest.chunk_length(index), plan))
            elif not self._handled.add(digest):
                if plan is None:
                    continue
                if self._handled_locked_until is not None and plan.covers(self._handled_locked_until):
                    plan.note(self._handled_locked_until)
                    continue
                # Handled for a backup locked for less: its lock is extended like any chunk found present.
                window.append(pool.submit(self._protect_chunk, digest, manifest.chunk_length(index), plan, False))
            elif digest in self._target_chunks:
                if plan is None:
                    self.report.chunks_skipped += 1
                    continue
                window.append(pool.submit(self._protect_chunk, digest, manifest.chunk_length(index), plan, True))
            else:
                window.append(pool.submit(self._copy_chunk, digest, manifest.chunk_length(index), plan))
            # Twice the workers keeps every thread busy while bounding memory to a few chunks.
            while len(window) > 2 * self.parallelism:
                self._settle(window.popleft().result(), bad)
        while window:
            self._settle(window.popleft().result(), bad)
        if plan is not None:
            # Every chunk this backup met is locked until its required date now, whether or not it is copied.
            self._handled_locked_until = min(plan.required, self._handled_locked_until or plan.required)
        if bad:
            if self._unchanged_in_source(entry, data):
                self.report.failed.append(FailedBackup(entry, bad))
            else:
                self.report.vanished.append(entry)
                unstored = {bytes.fromhex(item.chunk) for item in bad}
                self.report.bad_chunks.difference_update(unstored)
                self._not_stored.update(unstored)
            return
        self._lock.assert_still_held()
        # Written last: the target never holds a complete-looking backup with a chunk missing (or unlocked).
        replica = self._replica_manifest(manifest, data, plan)
        if plan is not None:
            self.target.bank.put_locked(entry.manifest_key, replica, plan.retain_until_date)
        else:
            self.target.bank.put(entry.manifest_key, replica)
        self.report.copied.append(entry)

    def _copy_chunk(self, digest: bytes, length: int, plan: LockPlan | None) -> _ChunkCopy:
        """In a pool thread: read one chunk object from the source, verify it, store the same bytes in the target."""
        key = chunk_key(digest)
        try:
            blob = self.source.bank.get(key)
        except BankObjectNotFoundError:
            return _ChunkCopy(digest, error=MISSING_FROM_SOURCE)
        try:
            self._codec.decode(digest, blob, length, f"{self.source.bank.description}/{key}")
        except IntegrityError as exc:
            return _ChunkCopy(digest, error=str(exc))
        if plan is not None:
            self.target.bank.put_locked(key, blob, plan.retain_until_date)
        else:
            self.target.bank.put(key, blob)
        return _ChunkCopy(digest, stored_bytes=len(blob))

    def _protect_chunk(self, digest: bytes, length: int, plan: LockPlan, counted: bool) -> _ChunkCopy:
        """In a pool thread: a chunk the locked target holds is locked long enough, or copied when it is gone."""
        if plan.protect_existing(self.target.bank, chunk_key(digest)):
            return _ChunkCopy(digest, found="present" if counted else "again")
        return self._copy_chunk(digest, length, plan)

    def _settle(self, outcome: _ChunkCopy, bad: list[BadChunk]) -> None:
        if outcome.error is not None:
            self.report.bad_chunks.add(outcome.digest)
            bad.append(BadChunk(outcome.digest.hex(), outcome.error))
            return
        if outcome.found is not None:
            self.report.chunks_skipped += outcome.found == "present"
            return
        self.report.chunks_copied += 1
        self.report.bytes_copied += outcome.stored_bytes

    def _unchanged_in_source(self, entry: BackupEntry, data: bytes) -> bool:
        """A missing chunk of a backup deleted or replaced meanwhile is not damage: the deletion removed it."""
        try:
            return self.source.bank.get(entry.manifest_key) == data
        except BankObjectNotFoundError:
            return False

    # -- check mode -----------------------------------------------------------------------------

    def predict_copies(self) -> None:
        """What ``copy_backups`` would do, from listings and manifests: no chunk is read."""
        if not self._to_copy:
            return
        self._target_chunks = stored_chunk_ids(self.target)
        needed: set[bytes] = set()
        for entry in self._to_copy:
            for digest in self._source_digests(entry):
                if not self._handled.add(digest):
                    continue
                if digest in self._target_chunks:
                    self.report.chunks_skipped += 1
                else:
                    needed.add(digest)
        found: set[bytes] = set()
        for digest, listed in self.source.stored_chunks():
            if digest in needed:
                found.add(digest)
                self.report.bytes_copied += listed.size
        self.report.chunks_copied = len(found)
        self.report.bad_chunks = needed - found
        for entry in self._to_copy:
            missing = self._source_digests(entry) & self.report.bad_chunks if self.report.bad_chunks else set()
            if missing:
                self.report.failed.append(FailedBackup(entry, [BadChunk(digest.hex(), MISSING_FROM_SOURCE) for digest in sorted(missing)]))
            else:
                self.report.copied.append(entry)

    def _source_digests(self, entry: BackupEntry) -> set[bytes]:
        try:
            data = self.source.bank.get(entry.manifest_key)
        except BankObjectNotFoundError:
            return set()  # deleted since it was listed: nothing of it would be copied
        return self.source.manifest_at(entry.manifest_key, data).chunk_map.unique_data_digests()

    # -- deletions ------------------------------------------------------------------------------

    def follow_source_deletions(self) -> None:
        """Delete the chosen target backups the source no longer holds, then prune the target."""
        deleted_keys: set[str] = set()
        for entry in self.report.target_only:
            plan = retention.delete_backup(self.target, entry.backup_id, check_mode=self.check_mode,
                                           lock_wait_timeout=self.lock_wait_timeout)
            if plan.exists:
                self.report.deleted.append(plan)
                deleted_keys.update(plan.objects)
            elif plan.protected_until is not None:
                self.report.protected.append(plan)  # locked in the target: deleted by the first run after the date
        self.report.pruned = retention.prune(self.target, check_mode=self.check_mode, lock_wait_timeout=self.lock_wait_timeout,
                                             excluding=deleted_keys)
        if self.check_mode:
            self._keep_predicted_references(self.report.pruned, deleted_keys)

    def _keep_predicted_references(self, plan: retention.PrunePlan, deleted_keys: set[str]) -> None:
        """Take out of a predicted prune the chunks already in the target that the predicted copies reference
        (left by an interrupted sync): the real run's prune comes after the copies and keeps them."""
        if not plan.chunks or not self.report.chunks_skipped:
            return
        referenced = retention.referenced_chunks(self.target, deleted_keys)[0]
        for digest, listed in self.target.stored_chunks():
            if digest in self._handled and digest not in referenced:
                plan.objects -= 1
                plan.chunks -= 1
                plan.object_bytes -= listed.size
                if listed.key in plan.keys:
                    plan.keys.remove(listed.key)
