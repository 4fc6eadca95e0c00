# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backups and restores the way the flows make them, for the engine's unit tests."""

from __future__ import annotations

import typing as t

import pytest

from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.store import BackupStore
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.units import MIB
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.writer import BackupWriter
from ansible_collections.openstack_dr.bank.plugins.module_utils._manifest import Manifest


def pieces_of(data: bytes, sizes: tuple[int, ...] = (1, 7, 4096, 65537, MIB + 3)) -> t.Iterator[bytes]:
    """``data`` in pieces of awkward sizes, as a download delivers it."""
    offset = 0
    index = 0
    while offset < len(data):
        size = sizes[index % len(sizes)]
        yield data[offset:offset + size]
        offset += size
        index += 1


def backup(store: BackupStore, name: str, data: bytes, expected_hash: tuple[str, str] | None = None,
           **options: t.Any) -> tuple[BackupWriter, Manifest]:
    """The production path: open the writer, ``write_chunks()``, then ``commit()``."""
    options.setdefault("chunk_size", MIB)
    writer = store.backup_writer(name, **options)
    writer.write_chunks(pieces_of(data), expected_size=len(data), expected_hash=expected_hash)
    return writer, writer.commit()


def restore(store: BackupStore, name: str, read_size: int = 100_003) -> bytes:
    with store.open_backup(name) as reader:
        parts = []
        while True:
            part = reader.read(read_size)
            if not part:
                break
            parts.append(part)
    return b"".join(parts)


def failed_backup(store: BackupStore, name: str, data: bytes, fail_after: int) -> None:
    """A backup whose source breaks after ``fail_after`` bytes: some chunks stored, no manifest."""
    def source() -> t.Iterator[bytes]:
        yield data[:fail_after]
        raise ConnectionResetError("the image download was cut")
    writer = store.backup_writer(name, chunk_size=MIB)
    with pytest.raises(ConnectionResetError):
        writer.write_chunks(source(), expected_size=len(data))


def stored_chunks(bank) -> set[str]:
    return {key for key in bank.objects if key.startswith("chunks/")}


def lock_objects(bank) -> list[str]:
    return [key for key in bank.objects if key.startswith("locks/")]
