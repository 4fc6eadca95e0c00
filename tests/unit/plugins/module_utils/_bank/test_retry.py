# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one retrying call, driven by a fake clock: what is retried, how long it waits, when it stops, what it says."""

from __future__ import annotations

import errno

import pytest

from ansible_collections.openstack_dr.bank.plugins.module_utils._bank import retry
from ansible_collections.openstack_dr.bank.plugins.module_utils._bank.retry import BackendErrors, RetryingCall, RetryPolicy, attempts_of
from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import BankError


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Transient(Exception):
    pass


class Permanent(Exception):
    pass


def flaky(failures: list[BaseException], result: str = "ok"):
    calls = []

    def func() -> str:
        calls.append(1)
        if failures:
            raise failures.pop(0)
        return result

    return func, calls


def policy(clock: FakeClock, rand: float = 1.0, **kwargs) -> RetryPolicy:
    return RetryPolicy(clock=clock, sleep=clock.sleep, rand=lambda: rand, **kwargs)


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, Transient)


def test_transient_errors_are_retried_until_success() -> None:
    clock = FakeClock()
    func, calls = flaky([Transient(), Transient()])
    assert policy(clock).call(func, is_transient) == "ok"
    assert len(calls) == 3


def test_backoff_doubles_up_to_the_cap() -> None:
    clock = FakeClock()
    func, _calls = flaky([Transient()] * 6)
    policy(clock, base_delay=0.5, max_delay=3.0, max_attempts=10).call(func, is_transient)
    assert clock.sleeps == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]


def test_jitter_scales_each_delay() -> None:
    clock = FakeClock()
    func, _calls = flaky([Transient()] * 2)
    policy(clock, rand=0.25, base_delay=1.0).call(func, is_transient)
    assert clock.sleeps == [0.25, 0.5]


def test_default_jitter_stays_within_the_ceiling() -> None:
    retry = RetryPolicy(base_delay=1.0, max_delay=4.0)
    for attempt in range(1, 8):
        assert 0 <= retry.delay(attempt) <= min(4.0, 2 ** (attempt - 1))


def test_permanent_errors_are_raised_at_once() -> None:
    clock = FakeClock()
    func, calls = flaky([Permanent("no")])
    with pytest.raises(Permanent) as info:
        policy(clock).call(func, is_transient)
    assert len(calls) == 1 and not clock.sleeps
    assert attempts_of(info.value) == 1


def test_attempts_are_bounded_and_the_last_error_is_raised() -> None:
    clock = FakeClock()
    errors = [Transient(str(i)) for i in range(10)]
    func, calls = flaky(errors)
    with pytest.raises(Transient, match="^3$") as info:
        policy(clock, max_attempts=4).call(func, is_transient)
    assert len(calls) == 4 and len(clock.sleeps) == 3
    assert attempts_of(info.value) == 4


def test_total_time_is_bounded_before_sleeping_past_it() -> None:
    clock = FakeClock()
    func, calls = flaky([Transient()] * 100)
    with pytest.raises(Transient):
        policy(clock, max_attempts=100, base_delay=1.0, max_delay=1.0, max_total=3.5).call(func, is_transient)
    assert sum(clock.sleeps) <= 3.5
    assert len(calls) == 4


def test_one_attempt_means_no_retry() -> None:
    clock = FakeClock()
    func, calls = flaky([Transient()])
    with pytest.raises(Transient):
        policy(clock, max_attempts=1).call(func, is_transient)
    assert len(calls) == 1


def test_on_retry_sees_each_retry() -> None:
    clock = FakeClock()
    seen = []
    func, _calls = flaky([Transient("a"), Transient("b")])
    policy(clock, base_delay=1.0).call(func, is_transient, on_retry=lambda n, exc, pause: seen.append((n, str(exc), pause)))
    assert seen == [(1, "a", 1.0), (2, "b", 2.0)]


@pytest.mark.parametrize("bad", [dict(max_attempts=0), dict(max_total=-1), dict(base_delay=-0.1)])
def test_rejects_nonsense_bounds(bad: dict) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**bad)


@pytest.mark.parametrize("status, transient", [
    (500, True), (502, True), (503, True), (504, True), (429, True), (408, True), (498, True),
    (501, False), (505, False), (400, False), (401, False), (403, False), (404, False), (409, False), (None, False),
])
def test_transient_statuses(status: int | None, transient: bool) -> None:
    assert retry.is_transient_status(status) is transient


@pytest.mark.parametrize("exc, transient", [
    (ConnectionResetError(), True), (ConnectionRefusedError(), True), (TimeoutError(), True), (BrokenPipeError(), True),
    (OSError(errno.ECONNRESET, "reset"), True), (OSError(errno.ENOENT, "missing"), False), (ValueError(), False),
])
def test_transient_os_errors(exc: BaseException, transient: bool) -> None:
    assert retry.is_transient_os_error(exc) is transient


class Missing(Exception):
    pass


ERRORS = BackendErrors(
    is_transient=is_transient,
    is_not_found=lambda exc: isinstance(exc, Missing),
    cause=lambda exc: f"{type(exc).__name__} {exc}",
)


def retrying(clock: FakeClock, **kwargs) -> RetryingCall:
    return RetryingCall("test bank", ERRORS, policy(clock, **kwargs))


def test_a_call_that_keeps_failing_names_the_bank_key_attempts_and_cause() -> None:
    clock = FakeClock()
    func, calls = flaky([Transient("busy")] * 5)
    with pytest.raises(BankError) as info:
        retrying(clock, max_attempts=3)("chunks/aa", "store the object", func)
    assert str(info.value) == "test bank, key 'chunks/aa': cannot store the object after 3 attempts: Transient busy"
    assert info.value.details == {"bank": "test bank", "key": "chunks/aa"}
    assert isinstance(info.value.__cause__, Transient) and len(calls) == 3


def test_a_permanent_failure_says_no_attempt_count() -> None:
    func, _calls = flaky([Permanent("denied")])
    with pytest.raises(BankError, match=r"^test bank: cannot list the objects: Permanent denied$"):
        retrying(FakeClock())("", "list the objects", func)


def test_not_found_is_answered_by_the_caller_and_not_retried() -> None:
    clock = FakeClock()
    func, calls = flaky([Missing()])
    assert retrying(clock)("k", "check the object", func, not_found=lambda: "absent") == "absent"
    assert len(calls) == 1 and not clock.sleeps


def test_not_found_without_an_answer_is_a_failure() -> None:
    func, _calls = flaky([Missing("gone")])
    with pytest.raises(BankError, match="cannot store the object: Missing gone"):
        retrying(FakeClock())("k", "store the object", func)


def test_a_bank_error_from_the_request_passes_unchanged() -> None:
    original = BankError("already worded", bank="b")
    func, calls = flaky([original])
    with pytest.raises(BankError) as info:
        retrying(FakeClock())("k", "read the object", func)
    assert info.value is original and len(calls) == 1


def test_a_missing_container_is_created_only_when_asked() -> None:
    made = []
    with pytest.raises(BankError, match=r"^test bank: the container does not exist \(set create: true to create it\)$"):
        retrying(FakeClock()).reach_or_create("container", flaky([Missing()])[0], lambda: made.append(1), create=False)
    assert not made
    retrying(FakeClock()).reach_or_create("container", flaky([Missing()])[0], lambda: made.append(1), create=True)
    assert made == [1]


def test_an_existing_bucket_is_not_created_again() -> None:
    made = []
    retrying(FakeClock()).reach_or_create("bucket", flaky([])[0], lambda: made.append(1), create=True)
    assert not made


def test_a_failed_creation_says_so() -> None:
    def refuse() -> None:
        raise Permanent("quota")

    with pytest.raises(BankError, match="cannot create the bucket: Permanent quota"):
        retrying(FakeClock()).reach_or_create("bucket", flaky([Missing()])[0], refuse, create=True)
