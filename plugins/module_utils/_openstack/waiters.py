# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Deadline-bound polling of Cinder and Glance resources.

Every wait ends: with the wanted status, with an immediate failure on an error status, or with
DeadlineExceededError naming the resource and the last status seen. Karbor and Freezer polled forever.
A wait polls at an interval proportional to the time it has waited so far (5 %, between 0.5 s
and 10 s): a step is noticed within 5 % of its duration, and a 3-hour copy costs about 1,150
status calls, not 10,000.
"""

from __future__ import annotations

import time
import typing as t

from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import DeadlineExceededError, InvalidInputError, OpenStackError
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack._sdk import api_errors, is_not_found

# Glance reports failed uploads as `killed`; a deleted image will never become active.
IMAGE_FAILED_STATUSES = frozenset({"killed", "deleted", "pending_delete", "deactivated"})
# Statuses from which Cinder accepts a non-admin delete of a volume or a snapshot.
VOLUME_DELETABLE_STATUSES = frozenset({"available", "error", "error_restoring", "error_extending", "error_managing"})
SNAPSHOT_DELETABLE_STATUSES = frozenset({"available", "error"})

MIN_POLL_INTERVAL = 0.5
MAX_POLL_INTERVAL = 10.0
POLL_FRACTION = 0.05


class Deadline:
    """A point in time a step must finish by; one object is passed down to every wait of a step."""

    def __init__(self, seconds: float, clock: t.Callable[[], float] = time.monotonic) -> None:
        if seconds is None or seconds <= 0:
            raise InvalidInputError(f"a deadline must be a positive number of seconds, got {seconds!r}")
        self.seconds = float(seconds)
        self.clock = clock
        self.started = clock()
        self.ends = self.started + self.seconds

    def remaining(self) -> float:
        return max(0.0, self.ends - self.clock())


def poll_interval(waited: float) -> float:
    """Seconds until the next status call after `waited` seconds of waiting."""
    return min(MAX_POLL_INTERVAL, max(MIN_POLL_INTERVAL, waited * POLL_FRACTION))


def is_error_status(status: str | None) -> bool:
    """Cinder's failure statuses: error, error_deleting, error_restoring, error_backing-up..."""
    return bool(status) and str(status).lower().startswith("error")


def wait_for(
    kind: str,
    resource_id: str,
    fetch: t.Callable[[], t.Any],
    ready: t.Callable[[t.Any], bool],
    failed: t.Callable[[t.Any], bool],
    deadline: Deadline,
    what: str,
    sleep: t.Callable[[float], None] | None = None,
) -> t.Any:
    """Poll `fetch()` until `ready(resource)`; raise OpenStackError on `failed`, DeadlineExceededError at the deadline.

    `fetch` returning None means the resource is gone, which `ready` may accept (deletions).
    Transient API errors while polling are retried until the deadline.
    """
    sleep = sleep or time.sleep
    started = deadline.clock()
    last_status: t.Any = "unknown"
    last_error: BaseException | None = None
    while True:
        try:
            resource, last_error = fetch(), None
        except api_errors() as error:
            resource, last_error = None, error
        if last_error is None:
            last_status = "gone" if resource is None else getattr(resource, "status", None)
            if ready(resource):
                return resource
            _raise_if_failed(kind, resource_id, resource, failed, what, last_status)
        remaining = deadline.remaining()
        if remaining <= 0:
            message = f"Timed out after {deadline.seconds:g} s waiting for {kind} {resource_id} to {what}; last status {last_status!r}"
            if last_error is not None:
                message += f"; last API error: {last_error}"
            raise DeadlineExceededError(message, resource_type=kind, resource_id=resource_id, status=last_status, timeout=deadline.seconds)
        sleep(min(poll_interval(deadline.clock() - started), remaining))


def _raise_if_failed(kind: str, resource_id: str, resource: t.Any, failed: t.Callable[[t.Any], bool], what: str, status: t.Any) -> None:
    if resource is None:
        raise OpenStackError(f"{kind} {resource_id} disappeared while waiting to {what}", resource_type=kind, resource_id=resource_id)
    if failed(resource):
        raise OpenStackError(
            f"{kind} {resource_id} went to status {status!r} while waiting to {what}",
            resource_type=kind, resource_id=resource_id, status=status,
        )


def getter(get: t.Callable[[str], t.Any], resource_id: str) -> t.Callable[[], t.Any]:
    """`get(resource_id)`, None when the resource is gone (404)."""
    def fetch() -> t.Any:
        try:
            return get(resource_id)
        except api_errors() as error:
            if is_not_found(error):
                return None
            raise
    return fetch


def _wait_status(kind: str, get: t.Callable[[str], t.Any], resource_id: str, statuses: t.Iterable[str], deadline: Deadline,
                 what: str | None) -> t.Any:
    wanted = frozenset(statuses)
    return wait_for(
        kind, resource_id, getter(get, resource_id),
        ready=lambda r: r is not None and r.status in wanted,
        failed=lambda r: is_error_status(r.status) and r.status not in wanted,
        deadline=deadline, what=what or "become " + "/".join(sorted(wanted)),
    )


def wait_volume_status(conn: t.Any, volume_id: str, statuses: t.Iterable[str], deadline: Deadline, what: str | None = None) -> t.Any:
    return _wait_status("volume", conn.block_storage.get_volume, volume_id, statuses, deadline, what)


def wait_snapshot_status(conn: t.Any, snapshot_id: str, statuses: t.Iterable[str], deadline: Deadline, what: str | None = None) -> t.Any:
    return _wait_status("snapshot", conn.block_storage.get_snapshot, snapshot_id, statuses, deadline, what)


def wait_image_active(conn: t.Any, image_id: str, deadline: Deadline) -> t.Any:
    return wait_for(
        "image", image_id, getter(conn.image.get_image, image_id),
        ready=lambda i: i is not None and i.status == "active",
        failed=lambda i: i.status in IMAGE_FAILED_STATUSES or is_error_status(i.status),
        deadline=deadline, what="become active",
    )


def wait_gone(kind: str, resource_id: str, get: t.Callable[[str], t.Any], deadline: Deadline) -> None:
    """Wait until `get` answers 404 (or the resource reports deleted)."""
    wait_for(
        kind, resource_id, getter(get, resource_id),
        ready=lambda r: r is None or getattr(r, "status", None) == "deleted",
        failed=lambda r: getattr(r, "status", None) == "error_deleting",
        deadline=deadline, what="be deleted",
    )


def wait_deletable(kind: str, resource_id: str, get: t.Callable[[str], t.Any], statuses: frozenset, deadline: Deadline) -> bool:
    """Wait until Cinder accepts a delete (not creating/uploading...); False when already gone."""
    found = wait_for(
        kind, resource_id, getter(get, resource_id),
        ready=lambda r: r is None or r.status in statuses or is_error_status(r.status),
        failed=lambda r: False,
        deadline=deadline, what="reach a status that allows deletion",
    )
    return found is not None
