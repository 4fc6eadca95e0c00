# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backups in a bank: find, write, read, list, verify and delete them.

This is the chunk engine's front door. It knows banks, manifests and chunks,
and nothing of OpenStack: the source of a backup is an opaque dict.
"""

from __future__ import annotations

import calendar
import json
import random
import time
import typing as t

from ansible_collections.openstack_dr.bank.plugins.module_utils._bank.base import Bank, BankObject
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine import keys as bank_keys
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.codec import ChunkCodec
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.layout import (
    BACKUPS_PREFIX,
    CHUNKS_PREFIX,
    MANIFEST_NAME,
    PROGRESS_NAME,
    backup_id_for_name,
    backup_prefix,
    chunk_key,
    digest_from_chunk_key,
    looks_like_backup_id,
    manifest_key,
    progress_key,
)
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.locks import DEFAULT_STALE_AFTER, EXCLUSIVE, BankLock
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.reader import BackupReader
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.writer import BackupWriter
from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import (
    BankObjectNotFoundError,
    IntegrityError,
    InvalidInputError,
)
from ansible_collections.openstack_dr.bank.plugins.module_utils._manifest import Manifest


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

    def _open_codec(self, initialise: bool) -> ChunkCodec | None:
        if self._codec is None:
            if initialise:
                found = bank_keys.open_or_initialise_bank(self.bank, self.passphrase)
            else:
                found = bank_keys.read_bank_keys(self.bank, self.passphrase)
                if found is None:
                    return None
            self._codec = ChunkCodec(self.compression_level, found.encryption_key, found.identity_key)
        return self._codec

    def check_access(self) -> bool:
        """Read the bank configuration (proving credentials and passphrase); False if the bank is empty."""
        return self._open_codec(initialise=False) is not None

    # -- finding backups ---------------------------------------------------------------------------

    @staticmethod
    def backup_id_for(backup: str) -> str:
        """A backup is named by its id or by its name; names map to ids deterministically."""
        return backup if looks_like_backup_id(backup) else backup_id_for_name(backup)

    def load_manifest(self, backup: str) -> Manifest | None:
        """The complete backup named ``backup`` (name or id), or None when there is none."""
        backup_id = self.backup_id_for(backup)
        key = manifest_key(backup_id)
        try:
            data = self.bank.get(key)
        except BankObjectNotFoundError:
            return None
        return self._parse_manifest(key, data)

    def _parse_manifest(self, key: str, data: bytes | None = None) -> Manifest:
        """The manifest stored at ``key`` (read from the bank unless ``data`` is given)."""
        return Manifest.from_bytes(self.bank.get(key) if data is None else data, f"{self.bank.description}/{key}")

    def load_progress(self, backup: str) -> dict | None:
        key = progress_key(self.backup_id_for(backup))
        try:
            return json.loads(self.bank.get(key).decode("utf-8"))
        except BankObjectNotFoundError:
            return None
        except (UnicodeDecodeError, ValueError):
            return {"status": "unreadable"}

    def list_backups(self, name: str | None = None, source_volume: str | None = None) -> list[dict]:
        """Every backup, complete or in progress, newest first; filters match exactly."""
        found: dict[str, set[str]] = {}
        for entry in self.bank.list(BACKUPS_PREFIX):
            parts = entry.key[len(BACKUPS_PREFIX):].split("/")
            if len(parts) == 2 and parts[1] in (MANIFEST_NAME, PROGRESS_NAME):
                found.setdefault(parts[0], set()).add(parts[1])
        backups = []
        for backup_id, names in found.items():
            if MANIFEST_NAME in names:
                manifest = self.load_manifest(backup_id)
                if manifest is None:
                    continue  # deleted while we listed
                entry = manifest.summary()
                entry["status"] = "complete"
            else:
                progress = self.load_progress(backup_id)
                if progress is None:
                    continue
                entry = dict(progress)
                entry.setdefault("backup_id", backup_id)
                entry["status"] = progress.get("status", "in_progress")
                if entry["status"] == "in_progress" and _seconds_since(entry.get("updated_at")) > DEFAULT_STALE_AFTER:
                    # A running backup updates its progress every progress_interval (30 s by default).
                    entry["status"] = "stalled"
            if name is not None and entry.get("backup_name") != name:
                continue
            if source_volume is not None and source_volume not in _volume_identities(entry.get("source") or {}):
                continue
            backups.append(entry)
        backups.sort(key=lambda entry: entry.get("created_at") or entry.get("started_at") or "", reverse=True)
        return backups

    # -- writing and reading -----------------------------------------------------------------------

    def backup_writer(self, backup_name: str, **options: t.Any) -> BackupWriter:
        if not backup_name:
            raise InvalidInputError("backup_name must not be empty")
        codec = self._open_codec(initialise=True)
        return BackupWriter(self.bank, codec, backup_id=backup_id_for_name(backup_name),
                            backup_name=backup_name, **options)

    def open_backup(self, backup: str, parallelism: int = 4) -> BackupReader:
        codec = self._open_codec(initialise=False)
        manifest = self.load_manifest(backup) if codec is not None else None
        if manifest is None:
            raise InvalidInputError(f"No complete backup {backup!r} in the bank {self.bank.description}")
        return BackupReader(self.bank, codec, manifest, parallelism)

    # -- verification ----------------------------------------------------------------------------

    def verify_backup(self, backup: str, mode: str = "presence", percent: float = 100.0) -> dict:
        """``presence``: every chunk exists. ``data``: read and check every chunk (or a random share)."""
        manifest = self.load_manifest(backup)
        if manifest is None:
            raise InvalidInputError(f"No complete backup {backup!r} in the bank {self.bank.description}")
        # Presence needs no key; reading the data back does.
        codec = self._open_codec(initialise=False) if mode == "data" else None
        digests = manifest.chunk_map.unique_data_digests()
        present = {digest for digest in self._stored_chunk_sizes() if digest in digests}
        missing = sorted(digest.hex() for digest in digests - present)
        result = {"mode": mode, "chunks": len(digests), "missing_chunks": missing, "damaged_chunks": [],
                  "checked_chunks": 0}
        if mode == "data":
            lengths = {}
            for index, digest in enumerate(manifest.chunk_map):
                if digest is not None:
                    lengths[digest] = manifest.size - index * manifest.chunk_size if index == manifest.chunk_map.chunk_count - 1 \
                        else manifest.chunk_size
            candidates = sorted(present)
            if percent < 100:
                candidates = random.sample(candidates, max(1, round(len(candidates) * percent / 100))) if candidates else []
            for digest in candidates:
                key = chunk_key(digest)
                try:
                    codec.decode(digest, self.bank.get(key), lengths[digest], f"{self.bank.description}/{key}")
                except IntegrityError as exc:
                    result["damaged_chunks"].append({"chunk": digest.hex(), "error": str(exc)})
                except BankObjectNotFoundError:
                    missing.append(digest.hex())
                result["checked_chunks"] += 1
        result["ok"] = not result["missing_chunks"] and not result["damaged_chunks"]
        return result

    def _stored_chunks(self) -> t.Iterator[tuple[bytes, BankObject]]:
        """(chunk id, listing entry) of every chunk in the bank."""
        for entry in self.bank.list(CHUNKS_PREFIX):
            digest = digest_from_chunk_key(entry.key)
            if digest is not None:
                yield digest, entry

    def _stored_chunk_sizes(self) -> dict[bytes, int]:
        return {digest: entry.size for digest, entry in self._stored_chunks()}

    # -- deletion --------------------------------------------------------------------------------

    def plan_deletion(self, backup: str) -> dict:
        """What deleting ``backup`` removes: its manifest and progress, and the chunks no other backup uses."""
        backup_id = self.backup_id_for(backup)
        own_objects = {entry.key: entry.size for entry in self.bank.list(backup_prefix(backup_id))}
        plan = {"backup_id": backup_id, "exists": bool(own_objects), "objects": [], "chunks": 0, "bytes": 0}
        if not own_objects:
            return plan
        codec = self._open_codec(initialise=False)
        manifest = self.load_manifest(backup_id) if codec is not None else None
        doomed: set[bytes] = manifest.chunk_map.unique_data_digests() if manifest else set()
        if doomed:
            for entry in self.bank.list(BACKUPS_PREFIX):
                if not entry.key.endswith("/" + MANIFEST_NAME) or entry.key == manifest_key(backup_id):
                    continue
                other = self._parse_manifest(entry.key)
                doomed -= other.chunk_map.unique_data_digests()
                if not doomed:
                    break
        stored = self._stored_chunk_sizes() if doomed else {}
        doomed_keys = {chunk_key(digest): stored[digest] for digest in doomed if digest in stored}
        # The manifest goes first: an interrupted deletion never leaves a complete-looking backup.
        ordered = sorted(own_objects, key=lambda key: not key.endswith("/" + MANIFEST_NAME))
        plan["objects"] = ordered + sorted(doomed_keys)
        plan["chunks"] = len(doomed_keys)
        plan["bytes"] = sum(own_objects.values()) + sum(doomed_keys.values())
        if manifest is not None:
            plan["backup_name"] = manifest.backup_name
        return plan

    def delete_backup(self, backup: str, check_mode: bool = False, lock_wait_timeout: float = 600.0) -> dict:
        if check_mode:
            plan = self.plan_deletion(backup)
            plan["deleted"] = False
            return plan
        with BankLock(self.bank, EXCLUSIVE, f"delete {backup}", wait_timeout=lock_wait_timeout):
            plan = self.plan_deletion(backup)
            if plan["exists"]:
                objects = plan["objects"]
                self.bank.delete_many(objects[:1])  # the manifest, alone and first
                self.bank.delete_many(objects[1:])
            plan["deleted"] = plan["exists"]
        return plan

    # -- leftovers of backups that never completed -------------------------------------------------

    def plan_prune(self, excluding: t.Collection[str] = ()) -> dict:
        """What a prune removes: every chunk no complete backup references, and every progress object.

        Keys in ``excluding`` are left out: a check-mode deletion run just before names them already.

        Chunks that no manifest names were uploaded by backups that failed and were not resumed (or by
        a backup deleted while it was incomplete). Run under the exclusive lock, no backup is running,
        so every progress object is a leftover too. A manifest that cannot be read stops the prune:
        its chunks cannot be told apart from garbage.
        """
        referenced: set[bytes] = set()
        progress_objects: dict[str, int] = {}
        for entry in self.bank.list(BACKUPS_PREFIX):
            if entry.key.endswith("/" + MANIFEST_NAME):
                referenced |= self._parse_manifest(entry.key).chunk_map.unique_data_digests()
            elif entry.key.endswith("/" + PROGRESS_NAME) and entry.key not in excluding:
                progress_objects[entry.key] = entry.size
        unreferenced = {entry.key: entry.size for digest, entry in self._stored_chunks()
                        if digest not in referenced and entry.key not in excluding}
        return {
            # Chunks first: an interrupted prune still shows which backups failed.
            "objects": sorted(unreferenced) + sorted(progress_objects),
            "chunks": len(unreferenced),
            "progress_objects": len(progress_objects),
            "bytes": sum(unreferenced.values()) + sum(progress_objects.values()),
        }

    def prune(self, check_mode: bool = False, lock_wait_timeout: float = 600.0, excluding: t.Collection[str] = ()) -> dict:
        """Remove what ``plan_prune`` names, holding the bank exclusively (running backups are waited for)."""
        if check_mode:
            return dict(self.plan_prune(excluding), pruned=False)
        with BankLock(self.bank, EXCLUSIVE, "prune", wait_timeout=lock_wait_timeout):
            plan = self.plan_prune()
            if plan["objects"]:
                self.bank.delete_many(plan["objects"])
        return dict(plan, pruned=bool(plan["objects"]))


def _seconds_since(timestamp: t.Any) -> float:
    """Seconds since a UTC ``YYYY-MM-DDTHH:MM:SSZ`` time; 0 when it cannot be read (never stalled by mistake)."""
    try:
        return time.time() - calendar.timegm(time.strptime(str(timestamp), "%Y-%m-%dT%H:%M:%SZ"))
    except ValueError:
        return 0.0


def _volume_identities(source: dict) -> set[str]:
    volume = source.get("volume") or {}
    return {str(value) for value in (volume.get("id"), volume.get("name")) if value}
