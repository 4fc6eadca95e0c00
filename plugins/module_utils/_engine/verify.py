# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checking a complete backup: every chunk present, or every chunk (or a random share) read back and verified.

A backup with a ``protected_until`` date (an Object Lock bank) is also checked to be immutable that long:
one HEAD per object it depends on (its manifest and each chunk) reads the current version's lock.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import random

from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.codec import ChunkCodec
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.documents import parse_utc, utc_timestamp
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.layout import chunk_key, manifest_key
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.store import BackupStore
from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import (
    BankObjectNotFoundError,
    IntegrityError,
    InvalidInputError,
)
from ansible_collections.openstack_dr.bank.plugins.module_utils._manifest import Manifest

PRESENCE = "presence"
DATA = "data"
# Lock checks run in parallel: one small HEAD each.
LOCK_CHECK_THREADS = 8


@dataclasses.dataclass
class DamagedChunk:
    chunk: str  # hex id
    error: str


@dataclasses.dataclass
class ShortLock:
    key: str
    locked_until: str | None  # None: not locked at all


@dataclasses.dataclass
class Verification:
    """What a check of one backup found."""

    mode: str
    chunks: int  # distinct stored chunks the backup references
    missing_chunks: list[str] = dataclasses.field(default_factory=list)  # hex ids
    damaged_chunks: list[DamagedChunk] = dataclasses.field(default_factory=list)
    checked_chunks: int = 0
    # With protected_until: the objects checked for their lock, and those locked for less (or not at all).
    checked_locks: int = 0
    short_locks: list[ShortLock] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing_chunks and not self.damaged_chunks and not self.short_locks

    def as_dict(self) -> dict:
        """The ``verification`` of bank_backup_info's result."""
        return dict(dataclasses.asdict(self), ok=self.ok)


def verify_backup(store: BackupStore, backup: str, mode: str = PRESENCE, percent: float = 100.0) -> Verification:
    """``presence``: every chunk exists. ``data``: read and check every chunk (or ``percent`` of them, at random)."""
    manifest = store.load_manifest(backup)
    if manifest is None:
        raise InvalidInputError(f"No complete backup {backup!r} in the bank {store.bank.description}")
    # Presence reads no chunk; reading the data back decodes each one.
    codec = store.open_codec() if mode == DATA else None
    digests = manifest.chunk_map.unique_data_digests()
    present = {digest for digest, dummy in store.stored_chunks() if digest in digests}
    verification = Verification(mode, chunks=len(digests), missing_chunks=sorted(digest.hex() for digest in digests - present))
    if mode == DATA:
        _read_back(store, codec, manifest, _sample(sorted(present), percent), verification)
    protected_until = parse_utc(manifest.document.get("protected_until"))
    if protected_until is not None:
        keys = [manifest_key(manifest.backup_id)] + [chunk_key(digest) for digest in sorted(present)]
        _check_locks(store, keys, protected_until, verification)
    return verification


def _check_locks(store: BackupStore, keys: list[str], protected_until: float, verification: Verification) -> None:
    """Note every key whose current version is locked for less than ``protected_until``."""
    with concurrent.futures.ThreadPoolExecutor(LOCK_CHECK_THREADS) as pool:
        for key, (exists, until) in zip(keys, pool.map(store.bank.locked_until, keys)):
            verification.checked_locks += 1
            if exists and (until is None or until.timestamp() < protected_until):
                verification.short_locks.append(ShortLock(key, utc_timestamp(until.timestamp()) if until else None))


def _sample(digests: list[bytes], percent: float) -> list[bytes]:
    if percent >= 100 or not digests:
        return digests
    return random.sample(digests, max(1, round(len(digests) * percent / 100)))


def _read_back(store: BackupStore, codec: ChunkCodec, manifest: Manifest, digests: list[bytes],
               verification: Verification) -> None:
    """Fetch, decrypt, decompress and hash each chunk of ``digests``, noting what is missing or damaged."""
    lengths = {digest: manifest.chunk_length(index) for index, digest in enumerate(manifest.chunk_map)
               if digest is not None}
    for digest in digests:
        key = chunk_key(digest)
        try:
            codec.decode(digest, store.bank.get(key), lengths[digest], f"{store.bank.description}/{key}")
        except IntegrityError as exc:
            verification.damaged_chunks.append(DamagedChunk(digest.hex(), str(exc)))
        except BankObjectNotFoundError:
            verification.missing_chunks.append(digest.hex())
        verification.checked_chunks += 1
