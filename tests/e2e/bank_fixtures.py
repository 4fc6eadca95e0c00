# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bank configs for tests on real servers: the file bank, Swift (Swift and S3 APIs), moto and the Ceph
Object Gateway (RGW, S3 and Swift APIs; started by `make devcloud-up`, so only checked when a test uses it).

`make bank-up` writes .devcloud/bank.yml; these fixtures read it and FAIL (never skip) when the
servers are not up. ``make_bank_config(backend, name)`` returns a fresh `bank` option dict with its
own bucket, container or directory and ``create: true``; buckets and containers made through the
factory are emptied and deleted at teardown (best effort).
"""

from __future__ import annotations

import os
import re
import sys
import typing as t
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
# BANK_DEVCLOUD_DIR points at another set of servers (see tests/servers/bank_servers.py).
BANK_YML = Path(os.environ.get("BANK_DEVCLOUD_DIR") or ROOT / ".devcloud") / "bank.yml"
BACKENDS = ("file", "swift", "swift_s3", "moto")
SERVER_BACKENDS = ("swift", "swift_s3", "moto")
# The Ceph Object Gateway, for the tests that name it (tests/e2e/test_ceph.py covers it as a bank).
RGW_BACKENDS = ("rgw_s3", "rgw_swift")

# tests/servers holds fault_proxy, which tests of banks and of the chunk engine share.
sys.path.insert(0, str(ROOT / "tests" / "servers"))


def load_bank_servers() -> dict[str, dict[str, t.Any]]:
    """The parsed .devcloud/bank.yml, after checking each server answers; pytest.fail otherwise."""
    if not BANK_YML.exists():
        pytest.fail(f"{BANK_YML} does not exist: start the bank servers with `make bank-up`", pytrace=False)
    configs = yaml.safe_load(BANK_YML.read_text())
    for name in SERVER_BACKENDS:
        url = endpoint_of(configs[name])
        try:
            with urllib.request.urlopen(url, timeout=5):
                pass
        except urllib.error.HTTPError:
            pass  # any HTTP answer means the server is up
        except (urllib.error.URLError, OSError) as exc:
            pytest.fail(f"bank server {name} at {url} does not answer ({exc}): start it with `make bank-up`", pytrace=False)
    return configs


def endpoint_of(config: dict[str, t.Any]) -> str:
    """The base URL a server-backed config talks to (S3 endpoint or Swift auth URL)."""
    if config["type"] == "s3":
        return config["endpoint_url"]
    return config["cloud"]["auth"]["auth_url"]


def with_endpoint(config: dict[str, t.Any], url: str) -> dict[str, t.Any]:
    """A copy of ``config`` talking to ``url`` (scheme://host:port) instead, e.g. a FaultProxy's."""
    config = {**config}
    if config["type"] == "s3":
        config["endpoint_url"] = url
    elif config["type"] == "swift":
        auth = dict(config["cloud"]["auth"])
        path = urllib.parse.urlsplit(auth["auth_url"]).path
        auth["auth_url"] = url.rstrip("/") + path
        config["cloud"] = {**config["cloud"], "auth": auth}
    return config


def unique_name(name: str) -> str:
    """A bucket/container name valid on S3 and Swift: lowercase, 3-63 chars, unique per call."""
    base = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:40] or "bank"
    return f"{base}-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session", name="bank_servers")
def fixture_bank_servers() -> dict[str, dict[str, t.Any]]:
    """The `bank` option dicts of .devcloud/bank.yml (no bucket/container); fails when servers are down."""
    return load_bank_servers()


@pytest.fixture(name="make_bank_config")
def fixture_make_bank_config(request: pytest.FixtureRequest, tmp_path: Path) -> t.Iterator[t.Callable[..., dict[str, t.Any]]]:
    """A factory: make_bank_config(backend, name) -> a fresh `bank` config dict with create: true."""
    made: list[dict[str, t.Any]] = []

    def make(backend: str, name: str = "bank", **overrides: t.Any) -> dict[str, t.Any]:
        if backend not in BACKENDS + RGW_BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS + RGW_BACKENDS}, not {backend!r}")
        unique = unique_name(name)
        if backend == "file":
            config: dict[str, t.Any] = {"type": "file", "path": str(tmp_path / unique)}
        else:
            servers = request.getfixturevalue("bank_servers")
            if backend not in servers:
                pytest.fail(f"{BANK_YML} has no {backend}: `make devcloud-up` starts Ceph, then the bank servers list its "
                            "gateway", pytrace=False)
            config = dict(servers[backend])
            config["bucket" if config["type"] == "s3" else "container"] = unique
        config["create"] = True
        config.update(overrides)
        made.append(config)
        return config

    yield make
    if os.environ.get("BANK_TESTS_KEEP"):
        return
    for config in made:
        if config["type"] != "file":
            _remove_bucket(config)


# Swift deletes some tens of objects a second on a loaded 2-core machine: big containers stay (on disk).
SWIFT_CLEANUP_LIMIT = 2_000


def _remove_bucket(config: dict[str, t.Any]) -> None:
    # Keeps moto's memory and Swift's disk from growing over a test session; never fails a test.
    from ansible_collections.openstack_dr.bank.plugins.module_utils._bank import open_bank  # pylint: disable=import-outside-toplevel

    try:
        on_swift = config["type"] == "swift" or endpoint_of(config).rstrip("/") == load_bank_servers()["swift_s3"]["endpoint_url"].rstrip("/")
        with open_bank({**config, "create": False, "max_attempts": 2, "prefix": ""}) as bank:
            keys = []
            for obj in bank.list():
                keys.append(obj.key)
                if on_swift and len(keys) > SWIFT_CLEANUP_LIMIT:
                    return
            bank.delete_many(keys)
            if config["type"] == "s3":
                bank.client.delete_bucket(Bucket=config["bucket"])  # type: ignore[attr-defined]
            else:
                bank._request("DELETE", bank._container_url(), (204, 404))  # type: ignore[attr-defined]  # pylint: disable=protected-access
    except (Exception, pytest.fail.Exception):  # pylint: disable=broad-exception-caught
        pass
