# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Deadline-bound polling of Cinder and Glance resources.

Every wait ends: with the wanted status, with an immediate failure on an error status, or with
DeadlineExceededError naming the resource and the last status seen. Karbor and Freezer polled forever.
"""

from __future__ import annotations

import time
import typing as t

from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import DeadlineExceededError, OpenStackError
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack._sdk import api_errors, is_not_found

# Glance reports failed uploads as `killed`; a deleted image will never become active.
IMAGE_FAILED_STATUSES = frozenset({"killed", "deleted", "pending_delete", "deactivated"})
# Statuses from which Cinder accepts a non-admin delete of a volume or a snapshot.
VOLUME_DELETABLE_STATUSES = frozenset({"available", "error", "error_restoring", "error_extending", "error_managing"})
SNAPSHOT_DELETABLE_STATUSES = frozenset({"available", "error"})

FIRST_POLL_INTERVAL = 1.0
MAX_POLL_INTERVAL = 10.0


def is_error_status(status: str | None) -> bool:
    """Cinder's failure statuses: error, error_deleting, error_restoring, error_backing-up..."""
    return bool(status) and str(status).lower().startswith("error")


def _intervals() -> t.Iterator[float]:
    # Short first polls keep small volumes fast; longer ones spare the API during hour-long copies.
    interval = FIRST_POLL_INTERVAL
    while True:
        yield interval
        interval = min(interval * 1.5, MAX_POLL_INTERVAL)


def wait_for(
    kind: str,
    resource_id: str,
    fetch: t.Callable[[], t.Any],
    ready: t.Callable[[t.Any], bool],
    failed: t.Callable[[t.Any], bool],
    timeout: float,
    what: str,
    clock: t.Callable[[], float] = time.monotonic,
    sleep: t.Callable[[float], None] = time.sleep,
) -> t.Any:
    """Poll `fetch()` until `ready(resource)`; raise OpenStackError on `failed`, DeadlineExceededError on timeout.

    `fetch` returning None means the resource is gone, which `ready` may accept (deletions).
    Transient API errors while polling are retried until the deadline.
    """
    deadline = clock() + max(0.0, float(timeout))
    last_status: t.Any = "unknown"
    last_error: BaseException | None = None
    for interval in _intervals():
        try:
            resource = fetch()
            last_error = None
        except api_errors() as error:
            resource = None
            last_error = error
        if last_error is None:
            last_status = "gone" if resource is None else getattr(resource, "status", None)
            if ready(resource):
                return resource
            if resource is None:
                raise OpenStackError(f"{kind} {resource_id} disappeared while waiting to {what}", resource_type=kind, resource_id=resource_id)
            if failed(resource):
                raise OpenStackError(
                    f"{kind} {resource_id} went to status {last_status!r} while waiting to {what}",
                    resource_type=kind, resource_id=resource_id, status=last_status,
                )
        remaining = deadline - clock()
        if remaining <= 0:
            message = f"Timed out after {timeout:g} s waiting for {kind} {resource_id} to {what}; last status {last_status!r}"
            if last_error is not None:
                message += f"; last API error: {last_error}"
            raise DeadlineExceededError(message, resource_type=kind, resource_id=resource_id, status=last_status, timeout=timeout)
        sleep(min(interval, remaining))
    raise AssertionError("unreachable")  # pragma: no cover


def _getter(get: t.Callable[[str], t.Any], resource_id: str) -> t.Callable[[], t.Any]:
    def fetch() -> t.Any:
        try:
            return get(resource_id)
        except api_errors() as error:
            if is_not_found(error):
                return None
            raise
    return fetch


def wait_volume_status(conn: t.Any, volume_id: str, statuses: t.Iterable[str], timeout: float, what: str | None = None) -> t.Any:
    wanted = frozenset(statuses)
    return wait_for(
        "volume", volume_id, _getter(conn.block_storage.get_volume, volume_id),
        ready=lambda v: v is not None and v.status in wanted,
        failed=lambda v: is_error_status(v.status) and v.status not in wanted,
        timeout=timeout, what=what or "become " + "/".join(sorted(wanted)),
    )


def wait_snapshot_status(conn: t.Any, snapshot_id: str, statuses: t.Iterable[str], timeout: float, what: str | None = None) -> t.Any:
    wanted = frozenset(statuses)
    return wait_for(
        "snapshot", snapshot_id, _getter(conn.block_storage.get_snapshot, snapshot_id),
        ready=lambda s: s is not None and s.status in wanted,
        failed=lambda s: is_error_status(s.status) and s.status not in wanted,
        timeout=timeout, what=what or "become " + "/".join(sorted(wanted)),
    )


def wait_image_active(conn: t.Any, image_id: str, timeout: float) -> t.Any:
    return wait_for(
        "image", image_id, _getter(conn.image.get_image, image_id),
        ready=lambda i: i is not None and i.status == "active",
        failed=lambda i: i.status in IMAGE_FAILED_STATUSES or is_error_status(i.status),
        timeout=timeout, what="become active",
    )


def wait_gone(kind: str, resource_id: str, get: t.Callable[[str], t.Any], timeout: float) -> None:
    """Wait until `get` answers 404 (or the resource reports deleted)."""
    wait_for(
        kind, resource_id, _getter(get, resource_id),
        ready=lambda r: r is None or getattr(r, "status", None) == "deleted",
        failed=lambda r: getattr(r, "status", None) == "error_deleting",
        timeout=timeout, what="be deleted",
    )
