# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Temporary snapshots, volumes and images: tagged at birth, recorded at once, always removed.

A temporary is recorded the moment its create call returns, even if it later goes to error, and
carries a name prefix plus metadata (Cinder) or properties (Glance) naming the run, the backup and
the source volume, so a crashed run's leftovers can be found later by find_orphaned_temporaries().
"""

from __future__ import annotations

import datetime
import signal
import threading
import time
import typing as t
import uuid

from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import DrBankError, OpenStackError
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack._sdk import api_errors, call, is_not_found, status_code
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack.waiters import (
    SNAPSHOT_DELETABLE_STATUSES,
    VOLUME_DELETABLE_STATUSES,
    wait_for,
    wait_gone,
)

DEFAULT_PREFIX = "dr-bank-tmp-"
TAG_RUN = "openstack_dr_bank_run"
TAG_BACKUP = "openstack_dr_bank_backup"
TAG_SOURCE_VOLUME = "openstack_dr_bank_source_volume"
TAG_TEMPORARY = "openstack_dr_bank_temporary"
TAG_KEYS = (TAG_RUN, TAG_BACKUP, TAG_SOURCE_VOLUME, TAG_TEMPORARY)
# An image depends on the volume it is uploaded from, a volume on the snapshot it was cloned from
# (Ceph refuses to delete a snapshot with clones): remove in this order.
REMOVAL_ORDER = ("image", "volume", "snapshot")
DEFAULT_REMOVAL_TIMEOUT = 900
# Cinder metadata and Glance property values are limited to 255 characters.
_MAX_VALUE = 255


def new_run_id() -> str:
    return uuid.uuid4().hex


def temporary_tags(run_id: str, backup: str | None, source_volume_id: str | None) -> dict[str, str]:
    """The metadata/properties every temporary carries."""
    tags = {TAG_TEMPORARY: "true", TAG_RUN: run_id}
    if backup:
        tags[TAG_BACKUP] = str(backup)[:_MAX_VALUE]
    if source_volume_id:
        tags[TAG_SOURCE_VOLUME] = str(source_volume_id)
    return tags


def is_temporary(tags: t.Mapping[str, t.Any] | None, run_id: str | None = None) -> bool:
    """True when metadata/properties mark a temporary (of `run_id` when given)."""
    if not tags or str(tags.get(TAG_TEMPORARY, "")).lower() != "true":
        return False
    return run_id is None or tags.get(TAG_RUN) == run_id


def image_properties(image: t.Any) -> dict[str, t.Any]:
    """Custom properties of an SDK image (they land in `.properties`; plain dicts also accepted)."""
    if isinstance(image, dict):
        props = dict(image.get("properties") or {})
        props.update({k: v for k, v in image.items() if k.startswith("openstack_dr_bank_")})
        return props
    return dict(getattr(image, "properties", None) or {})


class TemporaryResources:
    """Tracks a run's temporaries and removes them, in dependency order, whatever happens.

    As a context manager it runs cleanup() on success, failure, timeout and SIGTERM (a handler
    that raises in the main thread is installed on enter, the previous one restored on exit).
    The cleanup report is kept in `.report`; on failure it is also added to the exception's details.
    """

    def __init__(
        self,
        conn: t.Any,
        backup: str | None = None,
        source_volume_id: str | None = None,
        run_id: str | None = None,
        prefix: str = DEFAULT_PREFIX,
        removal_timeout: float = DEFAULT_REMOVAL_TIMEOUT,
        handle_sigterm: bool = True,
    ) -> None:
        self.conn = conn
        self.backup = backup
        self.source_volume_id = source_volume_id
        self.run_id = run_id or new_run_id()
        self.prefix = prefix if prefix is not None else DEFAULT_PREFIX
        self.removal_timeout = removal_timeout
        self.handle_sigterm = handle_sigterm
        self.created: list[dict[str, str | None]] = []
        self.report: dict[str, list[t.Any]] = {"removed": [], "left_behind": []}
        self._old_handler: t.Any = None
        self._handler_installed = False
        self._cleaning = False
        self._interrupted_during_cleanup = False

    # --- naming and tagging -------------------------------------------------------------------
    @property
    def tags(self) -> dict[str, str]:
        return temporary_tags(self.run_id, self.backup, self.source_volume_id)

    def name(self, kind: str) -> str:
        """`<prefix><backup>-<kind>-<run id start>`: readable, and unique per run."""
        base = f"{self.backup}-" if self.backup else ""
        return f"{self.prefix}{base}{kind}-{self.run_id[:8]}"[:_MAX_VALUE]

    # --- bookkeeping --------------------------------------------------------------------------
    def record(self, kind: str, resource_id: str, name: str | None = None) -> None:
        """Call right after the create call returns, before waiting on the new resource."""
        if kind not in REMOVAL_ORDER:
            raise ValueError(f"unknown temporary kind {kind!r}")
        if not any(c["type"] == kind and c["id"] == resource_id for c in self.created):
            self.created.append({"type": kind, "id": resource_id, "name": name})

    def forget(self, kind: str, resource_id: str) -> None:
        self.created = [c for c in self.created if not (c["type"] == kind and c["id"] == resource_id)]

    def remove(self, kind: str, resource_id: str) -> None:
        """Remove one temporary now (a normal step, e.g. the restore image): raises on failure."""
        remove_temporary(self.conn, kind, resource_id, self.removal_timeout)
        entry = next((c for c in self.created if c["type"] == kind and c["id"] == resource_id), None)
        self.forget(kind, resource_id)
        self.report["removed"].append({"type": kind, "id": resource_id, "name": entry["name"] if entry else None})

    def cleanup(self) -> dict[str, list[t.Any]]:
        """Remove every recorded temporary; never raises. Returns {"removed": [...], "left_behind": [...]}."""
        self._cleaning = True
        try:
            result = remove_temporaries(self.conn, self.created, self.removal_timeout)
        finally:
            self._cleaning = False
        self.created = [c for c in self.created if any(c["id"] == lb["id"] and c["type"] == lb["type"] for lb in result["left_behind"])]
        self.report["removed"].extend(result["removed"])
        self.report["left_behind"] = result["left_behind"]
        return self.report

    # --- context manager and SIGTERM ----------------------------------------------------------
    def _on_sigterm(self, signum: int, frame: t.Any) -> None:
        if self._cleaning:
            # Finish removing what we made; the interruption is raised once cleanup is over.
            self._interrupted_during_cleanup = True
            return
        raise DrBankError("Interrupted by SIGTERM; temporaries removed during cleanup", signal="SIGTERM")

    def __enter__(self) -> TemporaryResources:
        if self.handle_sigterm and threading.current_thread() is threading.main_thread():
            self._old_handler = signal.signal(signal.SIGTERM, self._on_sigterm)
            self._handler_installed = True
        return self

    def __exit__(self, exc_type: t.Any, exc: BaseException | None, tb: t.Any) -> None:
        try:
            report = self.cleanup()
        finally:
            if self._handler_installed:
                signal.signal(signal.SIGTERM, self._old_handler)
                self._handler_installed = False
        if isinstance(exc, DrBankError):
            exc.details.setdefault("temporaries", report)
        if exc is None and self._interrupted_during_cleanup:
            raise DrBankError("Interrupted by SIGTERM; temporaries removed during cleanup", signal="SIGTERM", temporaries=report)


def _wait_deletable(conn: t.Any, kind: str, resource_id: str, timeout: float) -> bool:
    """Wait until Cinder accepts a delete (not creating/uploading...); False when already gone."""
    if kind == "volume":
        get, allowed = conn.block_storage.get_volume, VOLUME_DELETABLE_STATUSES
    else:
        get, allowed = conn.block_storage.get_snapshot, SNAPSHOT_DELETABLE_STATUSES

    def fetch() -> t.Any:
        try:
            return get(resource_id)
        except api_errors() as error:
            if is_not_found(error):
                return None
            raise

    found = wait_for(
        kind, resource_id, fetch,
        ready=lambda r: r is None or r.status in allowed or str(r.status).startswith("error"),
        failed=lambda r: False,
        timeout=timeout, what="reach a status that allows deletion",
    )
    return found is not None


def _delete(kind: str, resource_id: str, delete: t.Callable[..., t.Any], timeout: float) -> None:
    """Send the delete, retrying a 409 or 5xx until the deadline.

    An aborted image upload can still hold Glance's row for a moment (a 500 on SQLite, a 409
    elsewhere): the removal must not give up on the first refusal.
    """
    deadline = time.monotonic() + timeout
    delay = 1.0
    while True:
        try:
            delete(resource_id, ignore_missing=True)
            return
        except api_errors() as error:
            code = status_code(error)
            transient = code == 409 or (code is not None and code >= 500)
            if not transient or time.monotonic() + delay > deadline:
                raise OpenStackError(f"Failed to delete {kind} {resource_id}: {error}", resource_type=kind, resource_id=resource_id) from error
        time.sleep(delay)
        delay = min(delay * 2, 10.0)


def remove_temporary(conn: t.Any, kind: str, resource_id: str, timeout: float) -> None:
    """Delete one image, volume or snapshot and wait until it is gone; raises OpenStackError."""
    if kind == "image":
        _delete("image", resource_id, conn.image.delete_image, timeout)
        wait_gone("image", resource_id, conn.image.get_image, timeout)
    elif kind == "volume":
        if _wait_deletable(conn, "volume", resource_id, timeout):
            _delete("volume", resource_id, conn.block_storage.delete_volume, timeout)
            wait_gone("volume", resource_id, conn.block_storage.get_volume, timeout)
    elif kind == "snapshot":
        if _wait_deletable(conn, "snapshot", resource_id, timeout):
            _delete("snapshot", resource_id, conn.block_storage.delete_snapshot, timeout)
            wait_gone("snapshot", resource_id, conn.block_storage.get_snapshot, timeout)
    else:
        raise ValueError(f"unknown temporary kind {kind!r}")


def remove_temporaries(conn: t.Any, items: t.Iterable[t.Mapping[str, t.Any]], timeout: float) -> dict[str, list[t.Any]]:
    """Remove items ({"type","id","name"}) images first, then volumes, then snapshots; never raises."""
    removed: list[dict[str, t.Any]] = []
    left_behind: list[dict[str, t.Any]] = []
    pending = list(items)
    for kind in REMOVAL_ORDER:
        for item in [i for i in pending if i["type"] == kind]:
            entry = {"type": kind, "id": item["id"], "name": item.get("name")}
            try:
                remove_temporary(conn, kind, item["id"], timeout)
            except Exception as error:  # pylint: disable=broad-exception-caught
                # One failed removal must not stop the others: report it with its id.
                left_behind.append(dict(entry, error=str(error)))
            else:
                removed.append(entry)
    return {"removed": removed, "left_behind": left_behind}


def _created_before(resource: t.Any, cutoff: datetime.datetime | None) -> bool:
    if cutoff is None:
        return True
    created = getattr(resource, "created_at", None)
    if not created:
        return True
    try:
        when = datetime.datetime.fromisoformat(str(created).replace("Z", "+00:00"))
    except ValueError:
        return True
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return when < cutoff


def find_orphaned_temporaries(
    conn: t.Any, run_id: str | None = None, older_than: float | None = None
) -> list[dict[str, t.Any]]:
    """Tagged temporaries still present at this site (of one run when `run_id` is given).

    `older_than` (seconds) skips younger ones, so a cleanup never races a run in progress.
    Returns [{"type","id","name","status","run","backup","source_volume"}] in removal order.
    """
    cutoff = None
    if older_than is not None:
        cutoff = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=older_than)
    found: list[dict[str, t.Any]] = []

    def add(kind: str, resource: t.Any, tags: t.Mapping[str, t.Any]) -> None:
        if is_temporary(tags, run_id) and _created_before(resource, cutoff):
            found.append({
                "type": kind, "id": resource.id, "name": resource.name, "status": getattr(resource, "status", None),
                "run": tags.get(TAG_RUN), "backup": tags.get(TAG_BACKUP), "source_volume": tags.get(TAG_SOURCE_VOLUME),
            })

    for image in call("list images", lambda: list(conn.image.images())):
        add("image", image, image_properties(image))
    for volume in call("list volumes", lambda: list(conn.block_storage.volumes(details=True))):
        add("volume", volume, volume.metadata or {})
    for snapshot in call("list snapshots", lambda: list(conn.block_storage.snapshots(details=True))):
        add("snapshot", snapshot, snapshot.metadata or {})
    return found


def remove_orphaned_temporaries(
    conn: t.Any, run_id: str | None = None, older_than: float | None = None, timeout: float = DEFAULT_REMOVAL_TIMEOUT
) -> dict[str, list[t.Any]]:
    """Find and remove tagged temporaries; returns {"removed": [...], "left_behind": [...]}, never raises on one failure."""
    orphans = find_orphaned_temporaries(conn, run_id=run_id, older_than=older_than)
    return remove_temporaries(conn, orphans, timeout)


__all__ = [
    "DEFAULT_PREFIX", "REMOVAL_ORDER", "TAG_BACKUP", "TAG_KEYS", "TAG_RUN", "TAG_SOURCE_VOLUME", "TAG_TEMPORARY",
    "TemporaryResources", "find_orphaned_temporaries", "image_properties", "is_temporary",
    "new_run_id", "remove_orphaned_temporaries", "remove_temporaries", "remove_temporary", "temporary_tags",
]
