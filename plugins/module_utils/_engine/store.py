# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backups in a bank: find, list, write and read them.

This is the chunk engine's front door. It knows banks, manifests and chunks,
and nothing of OpenStack: the source of a backup is an opaque dict. Deleting
and pruning live in ``retention``, checking in ``verify``.
"""

from __future__ import annotations

import dataclasses
import typing as t

from ansible_collections.openstack_dr.bank.plugins.module_utils._bank.base import Bank, BankObject
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine import encryption_keys
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.chunking import DEFAULT_PARALLELISM
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.codec import ChunkCodec
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.documents import (
    DEFAULT_PROGRESS_INTERVAL,
    PROGRESS_STALE_AFTER,
    DocumentSealer,
    Progress,
)
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.layout import (
    BACKUPS_PREFIX,
    CHUNKS_PREFIX,
    MANIFEST_NAME,
    PROGRESS_NAME,
    backup_id_for_name,
    backup_prefix,
    digest_from_chunk_key,
    looks_like_backup_id,
    manifest_key,
    progress_key,
)
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.locks import (
    DEFAULT_LOCK_WAIT_TIMEOUT,
    Holder,
    holder_is_dead,
)
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.reader import BackupReader
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.units import DEFAULT_CHUNK_SIZE
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.writer import BackupWriter
from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import BankError, BankObjectNotFoundError, IntegrityError, InvalidInputError
from ansible_collections.openstack_dr.bank.plugins.module_utils._manifest import Manifest

COMPLETE = "complete"
STALLED = "stalled"


@dataclasses.dataclass(frozen=True)
class ListedBackup:
    """One backup of a listing: complete (with its manifest) or not (with its progress object)."""

    backup_id: str
    status: str  # complete, in_progress, failed, stalled or unreadable
    manifest: Manifest | None = None
    progress: Progress | None = None

    @property
    def backup_name(self) -> str | None:
        return self.manifest.backup_name if self.manifest is not None else self.progress.backup_name

    @property
    def source(self) -> dict:
        return self.manifest.source if self.manifest is not None else (self.progress.source or {})

    @property
    def created_at(self) -> str:
        return (self.manifest.created_at if self.manifest is not None else self.progress.started_at) or ""


class BackupStore:
    """The backups held in one bank, opened with the bank's passphrase (if it is encrypted)."""

    def __init__(self, bank: Bank, passphrase: str | None = None, compression_level: int = 3) -> None:
        if passphrase == "":
            raise InvalidInputError("encryption_passphrase must not be empty")
        self.bank = bank
        self.passphrase = passphrase
        self.compression_level = compression_level
        self._codec: ChunkCodec | None = None

    # -- keys and codec ----------------------------------------------------------------------------

    def open_codec(self, initialise: bool = False) -> ChunkCodec | None:
        """The bank's chunk codec; None when the bank holds no configuration and ``initialise`` is false."""
        if self._codec is None:
            if initialise:
                found = encryption_keys.open_or_initialise_bank(self.bank, self.passphrase)
            else:
                found = encryption_keys.read_bank_keys(self.bank, self.passphrase)
                if found is None:
                    return None
            self._codec = ChunkCodec(self.compression_level, found.encryption_key, found.identity_key)
        return self._codec

    def check_access(self) -> bool:
        """Read the bank configuration (proving credentials and passphrase); False if the bank is empty."""
        return self.open_codec() is not None

    def document_sealer(self) -> DocumentSealer | None:
        """What opens the bank's sealed manifests and progress objects: None in a plain (or empty) bank.

        In an encrypted bank this needs the passphrase: without it, reading any backup fails.
        """
        codec = self.open_codec()
        return codec.document_sealer if codec is not None else None

    # -- finding backups ---------------------------------------------------------------------------

    def backup_id_for(self, backup: str) -> str:
        """A backup is named by its id or by its name; names map to ids deterministically.

        A name wins: a value that looks like an id is read as an id only when no backup has it as its
        name, so a name is never resolved as another backup's id (names like ids are refused since 0.1.0).
        """
        named = backup_id_for_name(backup)
        if not looks_like_backup_id(backup) or any(True for dummy in self.bank.list(backup_prefix(named))):
            return named
        return backup

    def load_manifest(self, backup: str) -> Manifest | None:
        """The complete backup named ``backup`` (name or id), or None when there is none."""
        key = manifest_key(self.backup_id_for(backup))
        try:
            try:
                data = self.bank.get(key)
            except BankObjectNotFoundError:
                return None  # deleted (a delete marker too): never brought back from older versions
            return self.manifest_at(key, data)
        except (BankError, IntegrityError) as damaged:
            # In a versioned (Object Lock) bucket an overwrite leaves the original below: the oldest
            # version that opens is the manifest as its backup wrote it.
            for older in self.bank.older_versions(key):
                try:
                    return self.manifest_at(key, older)
                except IntegrityError:
                    continue
            raise damaged

    def manifest_at(self, key: str, data: bytes | None = None) -> Manifest:
        """The manifest stored at ``key`` (read from the bank unless ``data`` is given): every reader of
        manifests comes here, so a sealed one is opened the same way everywhere."""
        sealer = self.document_sealer()
        return Manifest.from_bytes(self.bank.get(key) if data is None else data, f"{self.bank.description}/{key}",
                                   sealer, key)

    def load_progress(self, backup: str) -> Progress | None:
        """The progress object of an incomplete backup, or None when there is none."""
        backup_id = self.backup_id_for(backup)
        key = progress_key(backup_id)
        try:
            data = self.bank.get(key)
        except BankObjectNotFoundError:
            return None
        return Progress.from_bytes(data, backup_id, f"{self.bank.description}/{key}", self.document_sealer(), key)

    def list_backups(self, name: str | None = None, source_volume: str | None = None) -> list[ListedBackup]:
        """Every backup, complete or in progress, newest first; filters match exactly."""
        self.document_sealer()  # an encrypted bank shows nothing without its passphrase, not even an empty list
        found: dict[str, set[str]] = {}
        for entry in self.bank.list(BACKUPS_PREFIX):
            parts = entry.key[len(BACKUPS_PREFIX):].split("/")
            if len(parts) == 2 and parts[1] in (MANIFEST_NAME, PROGRESS_NAME):
                found.setdefault(parts[0], set()).add(parts[1])
        backups = []
        for backup_id, names in found.items():
            listed = self._listed_backup(backup_id, complete=MANIFEST_NAME in names)
            if listed is None:
                continue  # deleted or completed while we listed
            if name is not None and listed.backup_name != name:
                continue
            if source_volume is not None and source_volume not in _volume_identities(listed.source):
                continue
            backups.append(listed)
        backups.sort(key=lambda listed: listed.created_at, reverse=True)
        return backups

    def _listed_backup(self, backup_id: str, complete: bool) -> ListedBackup | None:
        if complete:
            manifest = self.load_manifest(backup_id)
            return ListedBackup(backup_id, COMPLETE, manifest=manifest) if manifest is not None else None
        progress = self.load_progress(backup_id)
        if progress is None:
            return None
        # A running backup updates its progress every progress_interval (30 s by default); one whose
        # process is gone from this host is stalled at once.
        stalled = progress.stalled(PROGRESS_STALE_AFTER) or (
            progress.status == "in_progress" and holder_is_dead(Holder.from_dict(progress.holder)))
        status = STALLED if stalled else progress.status
        return ListedBackup(backup_id, status, progress=progress)

    def stored_chunks(self) -> t.Iterator[tuple[bytes, BankObject]]:
        """(chunk id, listing entry) of every chunk in the bank."""
        for entry in self.bank.list(CHUNKS_PREFIX):
            digest = digest_from_chunk_key(entry.key)
            if digest is not None:
                yield digest, entry

    # -- writing and reading -----------------------------------------------------------------------

    def backup_writer(self, backup_name: str, *, description: str = "", source: dict | None = None,
                      chunk_size: int = DEFAULT_CHUNK_SIZE, parallelism: int = DEFAULT_PARALLELISM,
                      progress_interval: float = DEFAULT_PROGRESS_INTERVAL,
                      lock_wait_timeout: float = DEFAULT_LOCK_WAIT_TIMEOUT) -> BackupWriter:
        """A writer for the backup ``backup_name``; opening it initialises an empty bank."""
        if not backup_name:
            raise InvalidInputError("backup_name must not be empty")
        codec = self.open_codec(initialise=True)
        return BackupWriter(
            self.bank, codec, backup_id=backup_id_for_name(backup_name), backup_name=backup_name,
            description=description, source=source or {}, chunk_size=chunk_size, parallelism=parallelism,
            progress_interval=progress_interval, lock_wait_timeout=lock_wait_timeout)

    def open_backup(self, backup: str, parallelism: int = DEFAULT_PARALLELISM) -> BackupReader:
        codec = self.open_codec()
        manifest = self.load_manifest(backup) if codec is not None else None
        if manifest is None:
            raise InvalidInputError(f"No complete backup {backup!r} in the bank {self.bank.description}")
        return BackupReader(self.bank, codec, manifest, parallelism)


def _volume_identities(source: dict) -> set[str]:
    volume = source.get("volume") or {}
    return {str(value) for value in (volume.get("id"), volume.get("name")) if value}
