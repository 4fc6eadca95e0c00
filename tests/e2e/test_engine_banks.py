# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The chunk engine on every real bank: the filesystem, Swift (Swift API and S3 API) and moto."""

from __future__ import annotations

import hashlib
import random
import threading

import pytest

from ansible_collections.openstack_dr.bank.plugins.module_utils._bank import open_bank
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine import retention
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.layout import CHUNKS_PREFIX, manifest_key
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.store import BackupStore
from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import (
    BankBusyError,
    BankError,
    EncryptionError,
    IntegrityError,
    ManifestError,
)

from bank_fixtures import BACKENDS, with_endpoint  # pylint: disable=wrong-import-order
from fault_proxy import FaultProxy  # pylint: disable=wrong-import-order

MIB = 1024 * 1024
CHUNK = MIB
TEXT = b"Block of a volume: the quick brown fox jumps over the lazy dog. \xff\xfe\x00 " * 20000


def mixed(size: int, seed: int = 0) -> bytes:
    """Random, compressible text and zero regions, non-UTF-8 throughout."""
    rng = random.Random(seed)
    parts = []
    total = 0
    while total < size:
        kind = rng.randrange(3)
        length = rng.randrange(1, 2 * CHUNK)
        part = rng.randbytes(length) if kind == 0 else TEXT[:length] if kind == 1 else bytes(length)
        parts.append(part)
        total += len(part)
    return b"".join(parts)[:size]


def odd_pieces(data: bytes, seed: int = 1):
    rng = random.Random(seed)
    offset = 0
    while offset < len(data):
        size = rng.choice((1, 3, 4095, 65536, 333333, CHUNK - 1, CHUNK + 1, 3 * CHUNK + 7))
        yield data[offset:offset + size]
        offset += size


def chunk_keys(bank) -> list[str]:
    return [entry.key for entry in bank.list(CHUNKS_PREFIX)]


def read_all(reader, size: int = 65536) -> bytes:
    parts = []
    while True:
        part = reader.read(size)
        if not part:
            return b"".join(parts)
        parts.append(part)


CASES = {
    "empty": b"",
    "one-byte": b"\x80",
    "exactly-one-chunk": random.Random(2).randbytes(CHUNK),
    "one-chunk-minus-one": random.Random(3).randbytes(CHUNK - 1),
    "one-chunk-plus-one": random.Random(4).randbytes(CHUNK + 1),
    "all-zeros": bytes(3 * CHUNK + 5),
    "random-many-chunks": random.Random(5).randbytes(7 * CHUNK + 12345),
    "mixed": mixed(9 * CHUNK + 999),
}


@pytest.mark.parametrize("backend", BACKENDS)
def test_round_trips_are_byte_identical(backend, make_bank_config):
    with open_bank(make_bank_config(backend, "roundtrip")) as bank:
        store = BackupStore(bank)
        for name, data in CASES.items():
            manifest = store.backup_writer(name, chunk_size=CHUNK).write(odd_pieces(data))
            assert manifest.size == len(data)
            assert manifest.hashes["sha256"] == hashlib.sha256(data).hexdigest()
        for name, data in CASES.items():
            with BackupStore(bank).open_backup(name) as reader:
                assert read_all(reader, 77777) == data, name


@pytest.mark.parametrize("backend", BACKENDS)
def test_zero_chunks_cost_no_write_and_second_backup_writes_nothing(backend, make_bank_config):
    with open_bank(make_bank_config(backend, "dedup")) as bank:
        store = BackupStore(bank)
        data = bytes(4 * CHUNK) + random.Random(9).randbytes(2 * CHUNK) + bytes(2 * CHUNK)
        first = store.backup_writer("first", chunk_size=CHUNK)
        first.write(odd_pieces(data))
        assert first.stats.chunks_written == 2
        assert len(chunk_keys(bank)) == 2
        second = store.backup_writer("second", chunk_size=CHUNK)
        second.write(odd_pieces(data))
        assert second.stats.chunks_written == 0
        assert second.stats.bytes_written == 0
        assert len(chunk_keys(bank)) == 2


@pytest.mark.parametrize("backend", BACKENDS)
def test_damage_is_reported_before_bad_data(backend, make_bank_config):
    with open_bank(make_bank_config(backend, "damage")) as bank:
        store = BackupStore(bank, passphrase="vault secret")
        data = random.Random(11).randbytes(4 * CHUNK)
        store.backup_writer("victim", chunk_size=CHUNK).write([data])
        keys = chunk_keys(bank)
        # A flipped byte in one stored chunk.
        original = bank.get(keys[0])
        blob = bytearray(original)
        blob[len(blob) // 2] ^= 0x40
        bank.put(keys[0], bytes(blob))
        received = bytearray()
        with pytest.raises(IntegrityError, match="failed authentication|damaged"):
            with store.open_backup("victim") as reader:
                while True:
                    part = reader.read(8192)
                    if not part:
                        break
                    received += part
        assert received == data[:len(received)]
        # A missing chunk.
        bank.put(keys[0], original)
        bank.delete_many([keys[1]])
        with pytest.raises(IntegrityError, match="missing"):
            with store.open_backup("victim") as reader:
                read_all(reader)
        # A truncated manifest.
        key = manifest_key(store.backup_id_for("victim"))
        bank.put(key, bank.get(key)[:200])
        with pytest.raises(ManifestError, match="truncated or corrupt"):
            store.open_backup("victim")
        # A wrong passphrase.
        with pytest.raises(EncryptionError, match="Wrong encryption passphrase"):
            BackupStore(bank, passphrase="guess").open_backup("victim")


@pytest.mark.parametrize("backend", ["swift", "swift_s3", "moto"])
def test_transient_errors_are_retried_and_data_round_trips(backend, make_bank_config):
    config = make_bank_config(backend, "transient")
    data = mixed(6 * CHUNK, seed=21)
    with open_bank(config):
        pass  # creates the bucket or container without faults
    upstream = config.get("endpoint_url") or config["cloud"]["auth"]["auth_url"]
    with FaultProxy(upstream) as proxy:
        proxied = with_endpoint(dict(config, create=False), proxy.url)
        with open_bank(proxied) as bank:
            proxy.fail_next(3, fault="503", method="PUT")
            proxy.fail_next(2, fault="reset")
            store = BackupStore(bank)
            store.backup_writer("retried", chunk_size=CHUNK).write(odd_pieces(data))
            proxy.fail_next(2, fault="503", method="GET")
            proxy.fail_next(1, fault="reset", method="GET")
            with store.open_backup("retried") as reader:
                assert read_all(reader) == data
        assert proxy.injected("503") == 5
        assert proxy.injected("reset") == 3


@pytest.mark.parametrize("backend", ["swift", "swift_s3", "moto"])
def test_persistent_errors_fail_cleanly_without_manifest(backend, make_bank_config):
    config = make_bank_config(backend, "persistent", max_attempts=3)
    with open_bank(config):
        pass
    upstream = config.get("endpoint_url") or config["cloud"]["auth"]["auth_url"]
    with FaultProxy(upstream) as proxy:
        with open_bank(with_endpoint(dict(config, create=False), proxy.url)) as bank:
            store = BackupStore(bank)
            writer = store.backup_writer("doomed", chunk_size=CHUNK)
            proxy.fail_always(fault="503", method="PUT", path_contains="chunks")
            with pytest.raises(BankError) as failure:
                writer.write([random.Random(5).randbytes(3 * CHUNK)])
            assert "chunks/" in str(failure.value)
            proxy.clear()
            assert store.load_manifest("doomed") is None
            assert store.load_progress("doomed").status == "failed"


def start_paused_backup(bank, name: str, data: bytes, pause_at: int):
    """A backup of ``data`` in a thread, paused (holding its shared lock) after ``pause_at`` bytes
    until the returned event is set; returns (thread, release event, errors raised by the backup)."""
    backup_started = threading.Event()
    release_backup = threading.Event()
    errors = []

    def slow_source():
        yield data[:pause_at]  # chunks an earlier backup stored: found in the bank, not uploaded
        backup_started.set()
        assert release_backup.wait(60)
        yield data[pause_at:]

    def run_backup():
        try:
            BackupStore(bank).backup_writer(name, chunk_size=CHUNK).write(slow_source())
        except Exception as exc:  # pylint: disable=broad-exception-caught
            errors.append(exc)

    backup_thread = threading.Thread(target=run_backup)
    backup_thread.start()
    assert backup_started.wait(60)
    return backup_thread, release_backup, errors


@pytest.mark.parametrize("backend", ["file", "swift_s3"])
def test_delete_waits_for_a_running_backup_and_never_breaks_it(backend, make_bank_config):
    """A deletion started while a backup runs waits for it; the backup still restores afterwards."""
    with open_bank(make_bank_config(backend, "concurrent")) as bank:
        store = BackupStore(bank)
        shared = random.Random(31).randbytes(2 * CHUNK)
        store.backup_writer("old", chunk_size=CHUNK).write([shared, random.Random(32).randbytes(CHUNK)])
        new_data = shared + random.Random(33).randbytes(2 * CHUNK)
        backup_thread, release_backup, errors = start_paused_backup(bank, "new", new_data, 2 * CHUNK)
        # While the backup holds its shared lock, a deletion with a short wait gives up, deleting nothing.
        with pytest.raises(BankBusyError, match="in use"):
            retention.delete_backup(BackupStore(bank), "old", lock_wait_timeout=1)
        assert store.load_manifest("old") is not None
        deleter_result = {}
        deleter = threading.Thread(target=lambda: deleter_result.update(
            plan=retention.delete_backup(BackupStore(bank), "old", lock_wait_timeout=120)))
        deleter.start()
        release_backup.set()
        backup_thread.join(120)
        deleter.join(120)
        assert not errors
        assert deleter_result["plan"].deleted
        assert store.load_manifest("old") is None
        with store.open_backup("new") as reader:
            assert read_all(reader) == new_data


@pytest.mark.parametrize("backend", ["file", "swift_s3"])
def test_a_prune_waits_for_a_running_backup_and_never_takes_the_chunks_it_reuses(backend, make_bank_config):
    """The backup reuses chunks of a deleted backup (found in the bank, referenced by no manifest): a
    prune started while it runs waits for it, and then keeps every chunk the new backup references."""
    with open_bank(make_bank_config(backend, "prune-concurrent")) as bank:
        store = BackupStore(bank)
        shared = random.Random(34).randbytes(2 * CHUNK)
        store.backup_writer("old", chunk_size=CHUNK).write([shared, random.Random(35).randbytes(CHUNK)])
        new_data = shared + random.Random(36).randbytes(CHUNK)
        retention.delete_backup(store, "old")  # its manifest only: its chunks wait for a prune
        backup_thread, release_backup, errors = start_paused_backup(bank, "new", new_data, 2 * CHUNK)
        stored = len(chunk_keys(bank))
        with pytest.raises(BankBusyError, match="in use"):
            retention.prune(BackupStore(bank), lock_wait_timeout=1)
        assert len(chunk_keys(bank)) == stored, "a prune that gave up removed chunks"
        pruner_result = {}
        pruner = threading.Thread(target=lambda: pruner_result.update(
            plan=retention.prune(BackupStore(bank), lock_wait_timeout=120)))
        pruner.start()
        release_backup.set()
        backup_thread.join(120)
        pruner.join(120)
        assert not errors
        assert pruner_result["plan"].chunks == 1, "only old's own third chunk is unreferenced"
        with store.open_backup("new") as reader:
            assert read_all(reader) == new_data


@pytest.mark.parametrize("backend", ["file", "swift_s3"])
def test_interrupted_backup_resumes_uploading_only_missing_chunks(backend, make_bank_config):
    with open_bank(make_bank_config(backend, "resume")) as bank:
        store = BackupStore(bank)
        data = random.Random(41).randbytes(8 * CHUNK)

        def interrupted_source():
            yield data[:4 * CHUNK]
            raise ConnectionResetError("the image download was cut")

        with pytest.raises(ConnectionResetError):
            store.backup_writer("resumable", chunk_size=CHUNK).write(interrupted_source())
        assert store.load_manifest("resumable") is None
        assert store.load_progress("resumable").status == "failed"
        stored_before = len(chunk_keys(bank))
        assert 1 <= stored_before <= 4
        resumed = store.backup_writer("resumable", chunk_size=CHUNK)
        resumed.write(odd_pieces(data))
        assert resumed.stats.chunks_written == 8 - stored_before
        assert resumed.stats.duplicate_chunks == stored_before
        assert store.load_progress("resumable") is None
        with store.open_backup("resumable") as reader:
            assert read_all(reader) == data
