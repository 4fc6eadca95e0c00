# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where everything lives inside a bank (documented in docs/bank-format.md)."""

from __future__ import annotations

import re
import uuid

BANK_CONFIG_KEY = "bank.json"
CHUNKS_PREFIX = "chunks/"
BACKUPS_PREFIX = "backups/"
LOCKS_PREFIX = "locks/"
MANIFEST_NAME = "manifest.json"
PROGRESS_NAME = "progress.json"

# Backup ids are derived from the backup name, so the same name always maps to
# the same objects: that makes re-runs idempotent and interrupted runs resumable.
_BACKUP_ID_NAMESPACE = uuid.UUID("3c9f5b52-6d0e-4a51-9a4e-5b7d8e0f2a61")
_BACKUP_ID_PATTERN = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def backup_id_for_name(backup_name: str) -> str:
    return str(uuid.uuid5(_BACKUP_ID_NAMESPACE, backup_name))


def looks_like_backup_id(value: str) -> bool:
    return bool(_BACKUP_ID_PATTERN.match(value))


def chunk_key(digest: bytes) -> str:
    hex_digest = digest.hex()
    return f"{CHUNKS_PREFIX}{hex_digest[:2]}/{hex_digest}"


def digest_from_chunk_key(key: str) -> bytes | None:
    name = key.rsplit("/", 1)[-1]
    if len(name) != 64:
        return None
    try:
        return bytes.fromhex(name)
    except ValueError:
        return None


def backup_prefix(backup_id: str) -> str:
    return f"{BACKUPS_PREFIX}{backup_id}/"


def manifest_key(backup_id: str) -> str:
    return backup_prefix(backup_id) + MANIFEST_NAME


def progress_key(backup_id: str) -> str:
    return backup_prefix(backup_id) + PROGRESS_NAME


def lock_key(lock_id: str) -> str:
    return f"{LOCKS_PREFIX}{lock_id}.json"
