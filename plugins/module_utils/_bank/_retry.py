# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One retry policy for every bank backend: jittered exponential backoff, bounded twice.

Backends disable their SDK's own retries and wrap each remote call in
``RetryPolicy.call`` so that what is retried, how often and for how long is the
same for S3 and Swift, and can be tested with a fake clock.
"""

from __future__ import annotations

import errno
import random
import socket
import time
import typing as t

T = t.TypeVar("T")

DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_MAX_TOTAL_SECONDS = 120.0
DEFAULT_BASE_DELAY = 0.25
DEFAULT_MAX_DELAY = 8.0

# 501 (Not Implemented) and 505 are answers, not hiccups: never retried.
_PERMANENT_5XX = frozenset((501, 505))
TRANSIENT_ERROR_CODES = frozenset((
    "SlowDown", "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottled",
    "TooManyRequestsException", "RequestLimitExceeded", "ProvisionedThroughputExceededException",
    "RequestTimeout", "RequestTimeoutException", "InternalError", "ServiceUnavailable",
    "BandwidthLimitExceeded", "PriorRequestNotComplete",
))
_TRANSIENT_ERRNOS = frozenset((
    errno.ECONNRESET, errno.ECONNREFUSED, errno.ECONNABORTED, errno.EPIPE, errno.ETIMEDOUT,
    errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ENETRESET,
))


def is_transient_status(status: int | None) -> bool:
    """HTTP statuses worth another attempt: throttling, request timeout and server errors."""
    if status is None:
        return False
    return status in (408, 429) or (500 <= status <= 599 and status not in _PERMANENT_5XX)


def is_transient_code(code: str | None) -> bool:
    """S3-style error codes that mean "try again later"."""
    return bool(code) and code in TRANSIENT_ERROR_CODES


def is_transient_os_error(exc: BaseException) -> bool:
    """Connection resets, refusals and timeouts raised by the standard library."""
    if isinstance(exc, (TimeoutError, socket.timeout, ConnectionError)):
        return True
    return isinstance(exc, OSError) and exc.errno in _TRANSIENT_ERRNOS


class RetryPolicy:
    """Bounded, jittered exponential backoff ("full jitter").

    The delay before attempt ``n + 1`` is uniform in ``[0, min(max_delay, base_delay * 2**(n-1))]``.
    Retrying stops after ``max_attempts`` attempts, or earlier when the next
    delay would end after ``max_total`` seconds since the first attempt.
    ``clock``, ``sleep`` and ``rand`` are injectable so tests need no real time.
    """

    def __init__(
        self,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        max_total: float = DEFAULT_MAX_TOTAL_SECONDS,
        base_delay: float = DEFAULT_BASE_DELAY,
        max_delay: float = DEFAULT_MAX_DELAY,
        clock: t.Callable[[], float] = time.monotonic,
        sleep: t.Callable[[float], None] = time.sleep,
        rand: t.Callable[[], float] | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if max_total < 0 or base_delay < 0 or max_delay < 0:
            raise ValueError("retry delays and bounds must not be negative")
        self.max_attempts = max_attempts
        self.max_total = max_total
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.clock = clock
        self.sleep = sleep
        # random.random is thread-safe; jitter needs no cryptographic quality.
        self.rand = rand or random.random

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

        The last exception is re-raised unchanged; the caller turns it into a ``BankError``.
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
    # Lets the backend say "after 5 attempts" in its message without another exception type.
    try:
        exc.bank_attempts = attempts  # type: ignore[attr-defined]
    except AttributeError:
        pass


def attempts_of(exc: BaseException) -> int:
    """How many attempts ``RetryPolicy.call`` made before giving up with ``exc`` (1 if unknown)."""
    return getattr(exc, "bank_attempts", 1)
