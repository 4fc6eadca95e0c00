# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every bank backend against a real store: a directory, Swift (Swift API), the same Swift (S3 API), moto.

Needs `make bank-up`; fails (never skips) when the servers are down.
"""

from __future__ import annotations

import concurrent.futures
import os
import random
import socket
import time
import typing as t

import pytest
from bank_fixtures import BACKENDS, SERVER_BACKENDS, endpoint_of, with_endpoint
from fault_proxy import FaultProxy

from ansible_collections.openstack_dr.bank.plugins.module_utils._bank import Bank, BankObject, open_bank
from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import BankError, BankObjectNotFoundError, InvalidInputError

MANY = 10_050  # past Swift's 10,000-name listing page and ten S3 pages of 1,000


@pytest.fixture(name="backend", params=BACKENDS)
def fixture_backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(name="bank")
def fixture_bank(backend: str, make_bank_config: t.Callable[..., dict]) -> t.Iterator[Bank]:
    with open_bank(make_bank_config(backend, "banks")) as bank:
        yield bank


def put_many(bank: Bank, keys: t.Sequence[str], data: t.Callable[[str], bytes] = lambda key: key.encode()) -> None:
    # Sixteen threads share the one bank object, as the chunk engine does.
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        for future in [pool.submit(bank.put, key, data(key)) for key in keys]:
            future.result()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- data round trips -------------------------------------------------------------------------------


def test_round_trip_keeps_every_byte(bank: Bank) -> None:
    rng = random.Random(7)
    objects = {
        "empty": b"",
        "one-byte": b"\x00",
        "not-utf8": b"\xff\xfe\x80\x81\xc3\x28\x00\r\n\x1a" * 100,
        "dir/sub/random": rng.randbytes(5 * 1024 * 1024 + 3),
        "unicode-\u00e9\u4e2d": "\u00e9".encode("latin-1"),
    }
    for key, data in objects.items():
        bank.put(key, data)
    for key, data in objects.items():
        got = bank.get(key)
        assert isinstance(got, bytes)
        assert got == data, key


def test_put_accepts_bytearray_and_memoryview_and_replaces(bank: Bank) -> None:
    bank.put("k", bytearray(b"first"))
    bank.put("k", memoryview(b"second \xff"))
    assert bank.get("k") == b"second \xff"
    assert list(bank.list("k")) == [BankObject("k", 8)]


def test_exists_tells_present_from_absent(bank: Bank) -> None:
    bank.put("present/key", b"x")
    assert bank.exists("present/key")
    assert not bank.exists("present/other")
    assert not bank.exists("absent")


def test_get_of_absent_key_raises_not_found_naming_bank_and_key(bank: Bank) -> None:
    with pytest.raises(BankObjectNotFoundError) as info:
        bank.get("chunks/absent")
    assert bank.description in str(info.value)
    assert "chunks/absent" in str(info.value)


@pytest.mark.parametrize("key", ["../escape", "a/../../b", "/absolute", "a\\b", "nul\x00", "a//b", "", ".", "a/./b", "new\nline"])
def test_keys_that_could_escape_the_root_are_rejected(bank: Bank, key: str) -> None:
    with pytest.raises(InvalidInputError):
        bank.put(key, b"x")
    with pytest.raises(InvalidInputError):
        bank.get(key)


# --- listing -------------------------------------------------------------------------------------


def test_list_by_prefix_in_key_order(bank: Bank) -> None:
    keys = ["a/b", "a-c", "a0", "a/a/z", "b", "a/\u00e9", "ab", "chunks/00/x", "chunks/01/y"]
    put_many(bank, keys, lambda key: key.encode() * 2)
    everything = list(bank.list())
    assert [o.key for o in everything] == sorted(keys, key=lambda k: k.encode("utf-8"))
    assert all(o.size == 2 * len(o.key.encode()) for o in everything)
    assert [o.key for o in bank.list("a/")] == ["a/a/z", "a/b", "a/\u00e9"]
    assert [o.key for o in bank.list("a")] == ["a-c", "a/a/z", "a/b", "a/\u00e9", "a0", "ab"]
    assert [o.key for o in bank.list("chunks/0")] == ["chunks/00/x", "chunks/01/y"]
    assert not list(bank.list("zzz"))


def test_bank_prefix_keeps_banks_apart(backend: str, make_bank_config: t.Callable[..., dict]) -> None:
    base = make_bank_config(backend, "prefixed")
    with open_bank({**base, "prefix": "one"}) as one, open_bank({**base, "prefix": "two/"}) as two:
        one.put("k", b"1")
        two.put("k", b"2")
        assert one.get("k") == b"1" and two.get("k") == b"2"
        assert list(one.list()) == [BankObject("k", 1)]
        one.delete_many(["k"])
        assert two.exists("k") and not one.exists("k")


@pytest.mark.parametrize("backend", ["file", "swift", "moto"])
def test_list_pages_past_10000_keys(backend: str, make_bank_config: t.Callable[..., dict], request: pytest.FixtureRequest) -> None:
    """Once per server: Swift is listed through both its APIs, so swift_s3 needs no second 10,050 writes."""
    config = make_bank_config(backend, "many")
    keys = [f"chunks/{i:05d}" for i in range(MANY)]
    with open_bank(config) as bank:
        start = time.monotonic()
        put_many(bank, keys + ["other/1", "chunkz"])
        print(f"{backend}: {MANY} puts in {time.monotonic() - start:.1f} s")
    if backend == "file":
        with open_bank(config) as bank:
            assert [o.key for o in bank.list("chunks/")] == keys
        return
    views = [config]
    if backend == "swift":
        # The same container seen as a bucket through Swift's s3api.
        views.append({**request.getfixturevalue("bank_servers")["swift_s3"], "bucket": config["container"]})
    for view in views:
        # Listing through a proxy that counts requests proves several pages were fetched and joined.
        with FaultProxy(endpoint_of(view)) as proxy, open_bank(with_endpoint(view, proxy.url)) as bank:
            start = time.monotonic()
            listed = list(bank.list("chunks/"))
            print(f"{bank.description}: listed {len(listed)} keys in {time.monotonic() - start:.1f} s")
            pages = proxy.count(method="GET", path_contains="/" + (view.get("bucket") or view.get("container")))
        assert [o.key for o in listed] == keys
        assert all(o.size == len(o.key) for o in listed)
        assert pages >= (11 if view["type"] == "s3" else 2)


# --- deleting ------------------------------------------------------------------------------------


def test_delete_many_over_1000_keys_including_absent_ones(backend: str, make_bank_config: t.Callable[..., dict]) -> None:
    config = make_bank_config(backend, "delete")
    present = [f"d/{i:04d}" for i in range(1_200)]
    absent = [f"d/absent-{i}" for i in range(50)]
    with open_bank(config) as bank:
        put_many(bank, present + ["keep"])
    proxy = FaultProxy(endpoint_of(config)) if backend != "file" else None
    with proxy or _nothing(), open_bank(with_endpoint(config, proxy.url) if proxy else config) as bank:
        assert bank.delete_many(iter(present + absent)) == len(present) + len(absent)
        assert [o.key for o in bank.list()] == ["keep"]
        assert bank.delete_many([]) == 0
    if proxy is not None:
        # Bulk: S3 DeleteObjects takes 1,000 keys per request, Swift's bulk middleware 10,000.
        bulk_requests = proxy.count(method="POST")
        assert bulk_requests == (2 if config["type"] == "s3" else 1)
        assert proxy.count(method="DELETE") == 0


class _nothing:  # pylint: disable=invalid-name
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc_info: object) -> None:
        return None


# --- failures ------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["swift", "swift_s3"])
def test_wrong_credentials_fail_naming_the_bank(backend: str, make_bank_config: t.Callable[..., dict]) -> None:
    config = make_bank_config(backend, "creds", max_attempts=2)
    if config["type"] == "s3":
        config["secret_key"] = "wrong-secret-value"
    else:
        config["cloud"] = {**config["cloud"], "auth": {**config["cloud"]["auth"], "password": "wrong-secret-value"}}
    with pytest.raises(BankError) as info:
        with open_bank(config) as bank:
            bank.put("k", b"x")
    message = str(info.value)
    assert config.get("bucket", config.get("container")) in message
    assert ("s3 bank" if config["type"] == "s3" else "swift bank") in message
    assert "wrong-secret-value" not in message
    assert "401" in message or "403" in message or "SignatureDoesNotMatch" in message or "AccessDenied" in message


@pytest.mark.parametrize("backend", SERVER_BACKENDS)
def test_unreachable_endpoint_fails_quickly(backend: str, make_bank_config: t.Callable[..., dict]) -> None:
    config = with_endpoint(make_bank_config(backend, "unreachable", max_attempts=3, connect_timeout=2), f"http://127.0.0.1:{closed_port()}")
    start = time.monotonic()
    with pytest.raises(BankError) as info:
        open_bank(config)
    elapsed = time.monotonic() - start
    assert elapsed < 10, elapsed
    assert "bank" in str(info.value) and "after 3 attempts" in str(info.value)


@pytest.mark.parametrize("backend", SERVER_BACKENDS)
def test_missing_bucket_or_container_without_create_fails(backend: str, make_bank_config: t.Callable[..., dict]) -> None:
    config = make_bank_config(backend, "missing", create=False)
    with pytest.raises(BankError, match="does not exist"):
        open_bank(config)


def test_missing_directory_without_create_fails(make_bank_config: t.Callable[..., dict]) -> None:
    with pytest.raises(BankError, match="does not exist"):
        open_bank(make_bank_config("file", "missing", create=False))


@pytest.mark.parametrize("backend", SERVER_BACKENDS)
def test_injected_503s_and_resets_are_retried_and_data_round_trips(backend: str, make_bank_config: t.Callable[..., dict]) -> None:
    config = make_bank_config(backend, "transient", max_attempts=6)
    data = {f"k/{i}": os.urandom(1000 + i) for i in range(6)}
    with FaultProxy(endpoint_of(config)) as proxy, open_bank(with_endpoint(config, proxy.url)) as bank:
        proxy.fail_next(2, "503", method="PUT")
        proxy.fail_next(2, "reset", method="PUT")
        put_many(bank, list(data))  # warm-up keys first: faults hit whichever PUTs come next
        for key, value in data.items():
            bank.put(key, value)
        proxy.fail_next(2, "503", method="GET")
        proxy.fail_next(1, "reset", method="GET")
        proxy.fail_next(1, "truncate", method="GET")
        proxy.fail_next(1, "503", method="HEAD")
        for key, value in data.items():
            assert bank.get(key) == value
        assert bank.exists("k/0")
        proxy.fail_next(1, "reset", method="GET", path_contains="/")
        assert [o.key for o in bank.list("k/")] == sorted(data)
        proxy.fail_next(1, "503", method="POST")
        assert bank.delete_many(list(data)) == len(data)
        assert not list(bank.list("k/"))
        assert proxy.injected("503") == 6
        assert proxy.injected("reset") == 4
        assert proxy.injected("truncate") == 1


@pytest.mark.parametrize("fault", ["503", "reset"])
@pytest.mark.parametrize("backend", SERVER_BACKENDS)
def test_persistent_errors_fail_with_bank_error_within_the_bound(backend: str, fault: str, make_bank_config: t.Callable[..., dict]) -> None:
    config = make_bank_config(backend, "persistent", max_attempts=3)
    with FaultProxy(endpoint_of(config)) as proxy, open_bank(with_endpoint(config, proxy.url)) as bank:
        bank.put("warm", b"up")  # authenticated and connected before the faults start
        proxy.reset_log()
        proxy.fail_always(fault, method="PUT")
        start = time.monotonic()
        with pytest.raises(BankError) as info:
            bank.put("chunks/x", b"data")
        elapsed = time.monotonic() - start
        assert proxy.count(method="PUT") == 3
        proxy.clear()
        assert not bank.exists("chunks/x")
    message = str(info.value)
    assert bank.description in message and "chunks/x" in message and "after 3 attempts" in message
    assert elapsed < 10, elapsed


def test_bucket_created_outside_us_east_1_gets_its_location(make_bank_config: t.Callable[..., dict]) -> None:
    # moto enforces AWS's rule: CreateBucket outside us-east-1 needs a LocationConstraint.
    config = make_bank_config("moto", "region", region="eu-west-1")
    with open_bank(config) as bank:
        bank.put("k", b"v")
        location = bank.client.get_bucket_location(Bucket=config["bucket"])  # type: ignore[attr-defined]
        assert location["LocationConstraint"] == "eu-west-1"
        assert bank.get("k") == b"v"
