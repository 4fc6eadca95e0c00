# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which chunks a bank holds, learnt at the cost of one volume rather than of the whole bank.

A backup starts from the chunk ids of the latest complete backups of the same source volume
(found through a small per-volume index object, ``sources/<id>.json``), or, when there is none,
from a listing of ``chunks/`` that is abandoned past ``LISTING_BUDGET`` keys. Whatever is still
unknown is asked per chunk (a HEAD, in the upload threads). All of it is an upload hint: a
manifest never depends on another manifest, and an index object that is stale, missing or
unreadable only costs requests. ``PackedIdSet`` also holds prune's referenced ids.
"""

from __future__ import annotations

import typing as t

from ansible_collections.openstack_dr.bank.plugins.module_utils._bank.base import Bank
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.documents import DocumentFormat, DocumentSealer, parse_utc
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.layout import (
    CHUNKS_PREFIX,
    digest_from_chunk_key,
    manifest_key,
)
from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import BankObjectNotFoundError, IntegrityError
from ansible_collections.openstack_dr.bank.plugins.module_utils._manifest import DIGEST_SIZE, Manifest

SOURCES_PREFIX = "sources/"
# Sealed in an encrypted bank, like manifests: which backups belong to one volume shows nothing there.
SOURCE_INDEX_FORMAT = DocumentFormat("openstack_dr.bank/source-backups", 1, "source index", sealable=True)
# How many recent backups of a volume the index names, newest first; a backup reads them all.
PARENTS_KEPT = 2
# A backup with no parent lists chunks/ only up to this many keys (10 S3 pages, 1 Swift page,
# 320 KB of ids): below it a listing is cheaper than a HEAD per chunk, above it a first backup
# pays at most these 10 requests for trying. See docs/bank-format.md, "Deduplication".
LISTING_BUDGET = 10_000


class PackedIdSet:
    """Fixed-width ids packed in ``2**bucket_bits`` bytearrays by their leading bits.

    32 bytes per id (plus about 90 bytes per bucket) instead of about 100 per id for a set of bytes:
    2.6 million ids (10 TiB of 4 MiB chunks) fit in about 90 MiB at 16 bucket bits. Lookups search
    one bucket (a few dozen ids) with ``bytearray.find``, keeping only matches at id boundaries.
    """

    def __init__(self, bucket_bits: int = 8, width: int = DIGEST_SIZE) -> None:
        if not 0 <= bucket_bits <= 16:
            raise ValueError("bucket_bits must be between 0 and 16")
        self._shift = 16 - bucket_bits
        self._width = width
        self._buckets = [bytearray() for dummy in range(1 << bucket_bits)]
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def _bucket(self, digest: bytes) -> bytearray:
        return self._buckets[int.from_bytes(digest[:2], "big") >> self._shift]

    def _find(self, bucket: bytearray, digest: bytes) -> bool:
        start = 0
        while True:
            found = bucket.find(digest, start)
            if found < 0:
                return False
            if found % self._width == 0:
                return True
            start = found + 1  # a match across two ids: keep looking

    def __contains__(self, digest: bytes) -> bool:
        return len(digest) == self._width and self._find(self._bucket(digest), digest)

    def add(self, digest: bytes) -> bool:
        """Add ``digest``; False when it was there already."""
        if len(digest) != self._width:
            raise ValueError(f"ids are {self._width} bytes, got {len(digest)}")
        bucket = self._bucket(digest)
        if self._find(bucket, digest):
            return False
        bucket += digest
        self._count += 1
        return True

    def update(self, digests: t.Iterable[bytes]) -> None:
        for digest in digests:
            self.add(digest)

    def memory_bytes(self) -> int:
        """The packed ids and their buckets, as allocated."""
        return sum(bucket.__sizeof__() for bucket in self._buckets) + self._buckets.__sizeof__()


def source_volume_id(source: dict) -> str | None:
    volume = source.get("volume") if isinstance(source, dict) else None
    value = volume.get("id") if isinstance(volume, dict) else None
    return str(value) if value else None


def source_index_key(identity: t.Callable[[bytes], bytes], volume_id: str) -> str:
    """``sources/<32 hex>.json``: keyed like chunk ids, so an encrypted bank does not show volume ids."""
    return f"{SOURCES_PREFIX}{identity(b'openstack_dr.bank source ' + volume_id.encode('utf-8')).hex()[:32]}.json"


def read_source_index(bank: Bank, key: str, sealer: DocumentSealer | None = None) -> list[str]:
    """The backup ids the index names, newest first; nothing when it is absent, unreadable or tampered with."""
    try:
        document = SOURCE_INDEX_FORMAT.load(bank.get(key), f"{bank.description}/{key}", sealer, key)
    except (BankObjectNotFoundError, IntegrityError):
        return []
    backups = document.get("backups")
    return [value for value in backups if isinstance(value, str)] if isinstance(backups, list) else []


def source_index_bytes(backup_id: str, previous: t.Sequence[str], sealer: DocumentSealer | None = None,
                       key: str | None = None) -> bytes:
    backups = [backup_id] + [value for value in previous if value != backup_id]
    return SOURCE_INDEX_FORMAT.dumps({"backups": backups[:PARENTS_KEPT]}, indent=None, sealer=sealer, key=key)


class KnownChunks:
    """What one backup knows the bank holds before asking: ``known`` ids, and whether to HEAD the rest."""

    def __init__(self, known: PackedIdSet, check_each: bool, parents: list[str], listed: bool,
                 protected_until: float | None = None) -> None:
        self.known = known
        # The earliest Object Lock date the parents' manifests record (None: unknown or unlocked).
        self.protected_until = protected_until
        self.check_each = check_each
        self.parents = parents  # ids of the parent backups whose manifests were read
        self.listed = listed  # the whole of chunks/ was listed (a tiny bank)

    @classmethod
    def gather(cls, bank: Bank, parent_ids: t.Iterable[str], own_id: str, listing_budget: int | None = None,
               sealer: DocumentSealer | None = None) -> KnownChunks:
        """Read the parents' manifests; without any, list ``chunks/`` within ``listing_budget`` keys.

        Called under the shared lock: no deletion or prune runs, so every chunk a complete parent
        manifest names, and every listed chunk, stays in the bank until the backup ends.
        """
        known = PackedIdSet()
        parents = []
        locked_until: list[float | None] = []
        for backup_id in parent_ids:
            if backup_id == own_id:
                continue
            key = manifest_key(backup_id)
            try:
                manifest = Manifest.from_bytes(bank.get(key), f"{bank.description}/{key}", sealer, key)
            except (BankObjectNotFoundError, IntegrityError):
                continue  # deleted since (or damaged): the HEADs cover it
            known.update(manifest.chunk_map.data_digests())
            parents.append(backup_id)
            locked_until.append(parse_utc(manifest.document.get("protected_until")))
        if parents:
            earliest = None if None in locked_until else min(t.cast("list[float]", locked_until))
            return cls(known, check_each=True, parents=parents, listed=False, protected_until=earliest)
        listed = 0
        budget = LISTING_BUDGET if listing_budget is None else listing_budget
        for entry in bank.list(CHUNKS_PREFIX):
            digest = digest_from_chunk_key(entry.key)
            if digest is None:
                continue
            listed += 1
            if listed > budget:
                return cls(PackedIdSet(), check_each=True, parents=[], listed=False)
            known.add(digest)
        return cls(known, check_each=False, parents=[], listed=True)
