# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one retrying call every remote bank backend makes its requests through.

A backend answers only how to read its SDK's exceptions (``BackendErrors``: transient? not
found? what to say); ``RetryingCall`` retries under one ``RetryPolicy`` (jittered exponential
backoff, bounded by attempts and by time) and turns whatever still fails into a ``BankError``
that names the bank, the key and the cause. The model is restic's ``internal/backend/retry``.
Backends disable their SDK's own retries, so S3 and Swift retry alike; the clock, the sleep
and the jitter are injectable, so tests need no real time.
"""

from __future__ import annotations

import dataclasses
import errno
import random
import socket
import time
import typing as t

from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import BankError, BankMissingError

T = t.TypeVar("T")

DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_MAX_TOTAL_SECONDS = 120.0
DEFAULT_BASE_DELAY = 0.25
DEFAULT_MAX_DELAY = 8.0

# 501 (Not Implemented) and 505 are answers, not hiccups: never retried.
_PERMANENT_5XX = frozenset((501, 505))
_TRANSIENT_ERRNOS = frozenset((
    errno.ECONNRESET, errno.ECONNREFUSED, errno.ECONNABORTED, errno.EPIPE, errno.ETIMEDOUT,
    errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ENETRESET,
))


def is_transient_status(status: int | None) -> bool:
    """HTTP statuses worth another attempt: throttling, request timeout and server errors.

    498 is Swift's ratelimit middleware ("Rate Limited"), its 429.
    """
    if status is None:
        return False
    return status in (408, 429, 498) or (500 <= status <= 599 and status not in _PERMANENT_5XX)


def is_transient_os_error(exc: BaseException) -> bool:
    """Connection resets, refusals and timeouts raised by the standard library."""
    if isinstance(exc, (TimeoutError, socket.timeout, ConnectionError)):
        return True
    return isinstance(exc, OSError) and exc.errno in _TRANSIENT_ERRNOS


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """Bounded, jittered exponential backoff ("full jitter").

    The delay before attempt ``n + 1`` is uniform in ``[0, min(max_delay, base_delay * 2**(n-1))]``.
    Retrying stops after ``max_attempts`` attempts, or earlier when the next
    delay would end after ``max_total`` seconds since the first attempt.
    ``clock``, ``sleep`` and ``rand`` are injectable so tests need no real time.
    """

    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    max_total: float = DEFAULT_MAX_TOTAL_SECONDS
    base_delay: float = DEFAULT_BASE_DELAY
    max_delay: float = DEFAULT_MAX_DELAY
    clock: t.Callable[[], float] = time.monotonic
    sleep: t.Callable[[float], None] = time.sleep
    # random.random is thread-safe; jitter needs no cryptographic quality.
    rand: t.Callable[[], float] = random.random

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.max_total < 0 or self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("retry delays and bounds must not be negative")

    def delay(self, attempt: int) -> float:
        """The pause after failed attempt number ``attempt`` (1-based)."""
        ceiling = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return ceiling * self.rand()

    def call(
        self,
        func: t.Callable[[], T],
        is_transient: t.Callable[[BaseException], bool],
        on_retry: t.Callable[[int, BaseException, float], None] | None = None,
    ) -> T:
        """Run ``func`` until it succeeds, raises a non-transient error, or the bounds are hit.

        The last exception is re-raised unchanged, carrying the number of attempts (``attempts_of``).
        """
        start = self.clock()
        attempt = 0
        while True:
            attempt += 1
            try:
                return func()
            except Exception as exc:  # pylint: disable=broad-exception-caught
                pause = self.delay(attempt)
                if not is_transient(exc) or attempt >= self.max_attempts or self.clock() - start + pause > self.max_total:
                    _note_attempts(exc, attempt)
                    raise
                if on_retry is not None:
                    on_retry(attempt, exc, pause)
                self.sleep(pause)


def _note_attempts(exc: BaseException, attempts: int) -> None:
    # Lets the message say "after 5 attempts" without another exception type.
    try:
        exc.bank_attempts = attempts  # type: ignore[attr-defined]
    except AttributeError:
        pass


def attempts_of(exc: BaseException) -> int:
    """How many attempts ``RetryPolicy.call`` made before giving up with ``exc`` (1 if unknown)."""
    return getattr(exc, "bank_attempts", 1)


class BackendErrors(t.NamedTuple):
    """All a backend tells the retrying call: how to read its SDK's exceptions."""

    #: Worth another attempt (throttling, 5xx, resets, timeouts); everything else is permanent.
    is_transient: t.Callable[[BaseException], bool]
    #: The object, bucket or container asked for does not exist.
    is_not_found: t.Callable[[BaseException], bool]
    #: The cause in a few words for the message, never a secret.
    cause: t.Callable[[BaseException], str]


class RetryingCall:
    """A backend's remote calls, retried under one policy, failing as ``BankError``.

    ``description`` names the bank in every message (``Bank.description``).
    """

    def __init__(self, description: str, errors: BackendErrors, policy: RetryPolicy | None = None) -> None:
        self.description = description
        self.errors = errors
        self.policy = policy or RetryPolicy()

    def __call__(
        self, key: str, what: str, func: t.Callable[[], T], not_found: t.Callable[[], T] | BankError | None = None,
    ) -> T:
        """Run ``func`` (the request for ``key``, to ``what``) under the policy.

        A not-found failure means what ``not_found`` says: the answer of a callable, or an error to
        raise. Any other failure becomes a ``BankError`` saying "cannot <what> [after N attempts]:
        <cause>". A ``BankError`` from ``func`` passes unchanged.
        """
        try:
            return self.policy.call(func, self.errors.is_transient)
        except BankError:
            raise
        except Exception as exc:  # pylint: disable=broad-exception-caught
            if not_found is not None and self.errors.is_not_found(exc):
                if isinstance(not_found, BankError):
                    raise not_found from exc
                return not_found()
            attempts = attempts_of(exc)
            after = f" after {attempts} attempts" if attempts > 1 else ""
            where = f", key {key!r}" if key else ""
            message = f"{self.description}{where}: cannot {what}{after}: {self.errors.cause(exc)}"
            raise BankError(message, bank=self.description, key=key) from exc

    def reach_or_create(self, what: str, reach: t.Callable[[], t.Any], make: t.Callable[[], t.Any], create: bool) -> None:
        """Check the bank's bucket or container (``what``) with one request; make it when absent if ``create``."""
        def missing() -> None:
            if not create:
                raise BankMissingError(self.description, what)
            self("", f"create the {what}", make)

        self("", f"reach the {what}", reach, not_found=missing)
