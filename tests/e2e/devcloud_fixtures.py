"""Shared helpers and fixtures for tests against the two-site devcloud (`make devcloud-up`).

The devcloud writes `.devcloud/sites.yml` (ports, clouds, quotas, volume types) and
`.devcloud/clouds.yaml` (clouds site-a, site-b: member of project dr; site-a-admin, site-b-admin).
Tests that use these fixtures FAIL (never skip) when the devcloud is not up.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import openstack
import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
DEVCLOUD_DIR = REPO_ROOT / ".devcloud"
SITES_YML = DEVCLOUD_DIR / "sites.yml"
SITE_NAMES = ("site-a", "site-b")


class DevcloudNotUp(AssertionError):
    """The devcloud's files are missing: `make devcloud-up` was not run or failed."""


def load_sites() -> dict[str, Any]:
    """The content of .devcloud/sites.yml; raises DevcloudNotUp when the devcloud is not up."""
    if not SITES_YML.exists():
        raise DevcloudNotUp(f"{SITES_YML} does not exist: run `make devcloud-up` first")
    with SITES_YML.open() as handle:
        info = yaml.safe_load(handle)
    if not Path(info["clouds_yaml"]).exists():
        raise DevcloudNotUp(f"{info['clouds_yaml']} does not exist: run `make devcloud-up` first")
    return info


def connect(cloud: str, sites: dict[str, Any] | None = None) -> openstack.connection.Connection:
    """A connection to one of the clouds of .devcloud/clouds.yaml (e.g. 'site-a', 'site-b-admin')."""
    sites = sites or load_sites()
    config = openstack.config.OpenStackConfig(config_files=[sites["clouds_yaml"]], load_envvars=False)
    return openstack.connection.Connection(config=config.get_one(cloud=cloud))


def wait_for(predicate: Callable[[], Any], timeout: float, what: str = "condition", interval: float = 1.0) -> Any:
    """Calls predicate until it returns a truthy value and returns that; fails after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def wait_for_status(get: Callable[[], Any], status: str, timeout: float, what: str,
                    failures: tuple[str, ...] = ("error",)) -> Any:
    """Polls get() (a resource fetcher) until its status is `status`; fails fast on a failure status."""
    def check() -> Any:
        resource = get()
        current = (resource.status or "").lower()
        if current in failures:
            raise AssertionError(f"{what} went to status {current!r}")
        return resource if current == status else None

    return wait_for(check, timeout, f"{what} to become {status!r}")


def wait_for_gone(get: Callable[[], Any], timeout: float, what: str) -> None:
    """Polls get() until it raises NotFoundException (or returns None)."""
    def gone() -> bool:
        try:
            resource = get()
        except openstack.exceptions.NotFoundException:
            return True
        if resource is not None and (getattr(resource, "status", "") or "").lower() in ("error_deleting",):
            raise AssertionError(f"{what} went to status error_deleting")
        return resource is None or (getattr(resource, "status", "") or "").lower() == "deleted"

    wait_for(gone, timeout, f"{what} to be deleted")


@pytest.fixture(scope="session", name="devcloud_sites")
def fixture_devcloud_sites() -> dict[str, Any]:
    """The parsed .devcloud/sites.yml; fails the test when the devcloud is not up."""
    return load_sites()


@pytest.fixture(name="devcloud_connect")
def fixture_devcloud_connect(devcloud_sites: dict[str, Any]):
    """A factory: devcloud_connect('site-a') -> openstack Connection; all closed at teardown."""
    opened: list[openstack.connection.Connection] = []

    def factory(cloud: str) -> openstack.connection.Connection:
        conn = connect(cloud, devcloud_sites)
        opened.append(conn)
        return conn

    yield factory
    for conn in opened:
        conn.close()


@pytest.fixture(scope="module", name="site_a")
def fixture_site_a(devcloud_sites: dict[str, Any]):
    """The member user's connection to site A, for a whole test module."""
    conn = connect("site-a", devcloud_sites)
    yield conn
    conn.close()


@pytest.fixture(scope="module", name="site_b")
def fixture_site_b(devcloud_sites: dict[str, Any]):
    """The member user's connection to site B, for a whole test module."""
    conn = connect("site-b", devcloud_sites)
    yield conn
    conn.close()
