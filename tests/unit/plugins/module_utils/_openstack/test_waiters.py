# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Waits end: ready, failed on an error status, or DeadlineExceededError naming the resource; they notice soon."""

from __future__ import annotations

import pytest

from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import DeadlineExceededError, InvalidInputError, OpenStackError
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack import waiters
from ansible_collections.openstack_dr.bank.tests.unit.plugins.module_utils._openstack.fakes import FakeConnection, resource


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def wait(clock, fetch, timeout, ready=lambda r: r.status == "available", failed=lambda r: waiters.is_error_status(r.status)):
    return waiters.wait_for("volume", "v1", fetch, ready=ready, failed=failed, deadline=waiters.Deadline(timeout, clock),
                            what="become available", sleep=clock.sleep)


def test_wait_returns_when_status_reached():
    statuses = iter(["creating", "creating", "available"])
    found = wait(FakeClock(), lambda: resource(id="v1", status=next(statuses)), 60)
    assert found.status == "available"


def test_wait_fails_at_once_on_error_status_naming_the_resource():
    clock = FakeClock()
    with pytest.raises(OpenStackError) as caught:
        wait(clock, lambda: resource(id="v1", status="error"), 600)
    assert not isinstance(caught.value, DeadlineExceededError)
    assert "v1" in str(caught.value) and "'error'" in str(caught.value)
    assert clock.now == 0.0


def test_wait_times_out_with_resource_id_and_last_status():
    clock = FakeClock()
    with pytest.raises(DeadlineExceededError) as caught:
        wait(clock, lambda: resource(id="v1", status="saving"), 30, failed=lambda r: False)
    assert "v1" in str(caught.value) and "'saving'" in str(caught.value) and "30 s" in str(caught.value)
    assert caught.value.details["status"] == "saving"
    assert clock.now == pytest.approx(30)


def test_wait_fails_when_resource_disappears():
    with pytest.raises(OpenStackError, match="disappeared"):
        wait(FakeClock(), lambda: None, 10, ready=lambda r: r is not None)


@pytest.mark.parametrize("seconds", [0, -1, None])
def test_a_deadline_must_be_positive(seconds):
    with pytest.raises(InvalidInputError, match="positive"):
        waiters.Deadline(seconds)


def test_a_step_is_noticed_within_five_percent_of_its_duration_and_never_later_than_a_second_for_short_ones():
    for finishes_at in (0.3, 3.7, 16.0, 21.5, 27.2, 31.0, 600.0, 3600.0):
        clock = FakeClock()
        wait(clock, lambda at=finishes_at, c=clock: resource(id="v1", status="available" if c.now >= at else "creating"), 20000)
        late = clock.now - finishes_at
        assert late <= max(0.5, 0.05 * finishes_at + 1e-9), (finishes_at, late)
        if finishes_at <= 30:
            assert late <= 1.5, (finishes_at, late)


def test_a_three_hour_step_costs_about_a_thousand_status_calls():
    clock = FakeClock()
    calls = []

    def fetch():
        calls.append(clock.now)
        return resource(id="v1", status="available" if clock.now >= 3 * 3600 else "creating")

    wait(clock, fetch, 20000)
    assert 1000 <= len(calls) <= 1250, len(calls)
    assert max(clock.sleeps) == waiters.MAX_POLL_INTERVAL


@pytest.mark.parametrize("status", ["error", "error_deleting", "error_restoring", "error_backing-up", "error_extending"])
def test_every_error_status_is_a_failure(status):
    assert waiters.is_error_status(status)


def test_wait_image_active_fails_on_killed_image():
    conn = FakeConnection()
    conn.image.add("image", resource(id="i2", status="killed"))
    with pytest.raises(OpenStackError, match="i2.*killed"):
        waiters.wait_image_active(conn, "i2", waiters.Deadline(5))


def test_wait_gone_accepts_not_found():
    conn = FakeConnection()
    waiters.wait_gone("volume", "nope", conn.block_storage.get_volume, waiters.Deadline(1))
