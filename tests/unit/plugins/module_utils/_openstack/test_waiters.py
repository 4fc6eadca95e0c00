# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Waits end: ready, failed on an error status, or DeadlineExceededError naming the resource."""

from __future__ import annotations

import pytest

from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import DeadlineExceededError, OpenStackError
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack import waiters
from ansible_collections.openstack_dr.bank.tests.unit.plugins.module_utils._openstack.fakes import FakeConnection, resource


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_wait_returns_when_status_reached():
    statuses = iter(["creating", "creating", "available"])
    clock = FakeClock()
    found = waiters.wait_for(
        "volume", "v1", lambda: resource(id="v1", status=next(statuses)), ready=lambda r: r.status == "available",
        failed=lambda r: waiters.is_error_status(r.status), timeout=60, what="become available", clock=clock, sleep=clock.sleep,
    )
    assert found.status == "available"


def test_wait_fails_at_once_on_error_status_naming_the_resource():
    clock = FakeClock()
    with pytest.raises(OpenStackError) as caught:
        waiters.wait_for(
            "snapshot", "s1", lambda: resource(id="s1", status="error"), ready=lambda r: r.status == "available",
            failed=lambda r: waiters.is_error_status(r.status), timeout=600, what="become available", clock=clock, sleep=clock.sleep,
        )
    assert not isinstance(caught.value, DeadlineExceededError)
    assert "s1" in str(caught.value) and "'error'" in str(caught.value)
    assert clock.now == 0.0


def test_wait_times_out_with_resource_id_and_last_status():
    clock = FakeClock()
    with pytest.raises(DeadlineExceededError) as caught:
        waiters.wait_for(
            "image", "i1", lambda: resource(id="i1", status="saving"), ready=lambda r: r.status == "active",
            failed=lambda r: False, timeout=30, what="become active", clock=clock, sleep=clock.sleep,
        )
    assert "i1" in str(caught.value) and "'saving'" in str(caught.value)
    assert caught.value.details["status"] == "saving"
    assert clock.now == pytest.approx(30)


def test_wait_fails_when_resource_disappears():
    clock = FakeClock()
    with pytest.raises(OpenStackError, match="disappeared"):
        waiters.wait_for("volume", "v9", lambda: None, ready=lambda r: r is not None, failed=lambda r: False,
                         timeout=10, what="become available", clock=clock, sleep=clock.sleep)


@pytest.mark.parametrize("status", ["error", "error_deleting", "error_restoring", "error_backing-up", "error_extending"])
def test_every_error_status_is_a_failure(status):
    assert waiters.is_error_status(status)


def test_wait_image_active_fails_on_killed_image():
    conn = FakeConnection()
    conn.image.add("image", resource(id="i2", status="killed"))
    with pytest.raises(OpenStackError, match="i2.*killed"):
        waiters.wait_image_active(conn, "i2", timeout=5)


def test_wait_gone_accepts_not_found():
    conn = FakeConnection()
    waiters.wait_gone("volume", "nope", conn.block_storage.get_volume, timeout=1)
