# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A run's temporaries: each removal registered at birth, all removed last-in first-out, whatever happens.

A create step registers the removal of what it made right after the create call returns an id,
before any wait (tempest's ``self.cleanup(...)``). Removal runs in reverse order on success,
failure, timeout and SIGTERM: an image before the volume it was uploaded from, a volume before the
snapshot it was cloned from (Ceph refuses to delete a snapshot with clones). Every temporary also
carries the tags of ``tags.py``, so a crashed run's leftovers can be found by
find_orphaned_temporaries().
"""

from __future__ import annotations

import dataclasses
import datetime
import signal
import threading
import typing as t

from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import DrBankError
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack._sdk import call
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack.removal import (
    REMOVER_OF_FOUND_TYPE,
    Remover,
    remove_image,
    remove_snapshot,
    remove_volume,
)
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack.tags import (
    DEFAULT_PREFIX,
    MAX_VALUE_LENGTH,
    PARENT_OF_TAG,
    RESTORE_COMPLETE_TAG,
    TAG_BACKUP,
    TAG_RUN,
    TAG_SOURCE_VOLUME,
    image_properties,
    is_temporary,
    new_run_id,
    temporary_tags,
)
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack.volumes import list_volumes
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack.waiters import Deadline


@dataclasses.dataclass
class Temporary:
    """One registered temporary: what it is, and how to remove it within a deadline."""

    kind: str
    id: str
    name: str | None
    remove: Remover
    made_from: str | None = None  # the temporary this one was cloned from, which cannot go while this one exists

    def describe(self, **extra: t.Any) -> dict[str, t.Any]:
        return dict({"type": self.kind, "id": self.id, "name": self.name}, **extra)


class Temporaries:
    """Registers a run's temporaries as they are born and removes them in reverse order.

    As a context manager it runs cleanup() on success, failure, timeout and SIGTERM (a handler
    that raises in the main thread is installed on enter, the previous one restored on exit).
    The report is kept in `.report`; on failure it is also added to the exception's details.
    Each removal gets one deadline of `removal_timeout` seconds.
    """

    def __init__(self, conn: t.Any, *, removal_timeout: float, backup: str | None = None, source_volume_id: str | None = None,
                 run_id: str | None = None, prefix: str = DEFAULT_PREFIX, handle_sigterm: bool = True) -> None:
        self.conn = conn
        self.removal_timeout = removal_timeout
        self.backup = backup
        self.source_volume_id = source_volume_id
        self.run_id = run_id or new_run_id()
        self.prefix = DEFAULT_PREFIX if prefix is None else prefix
        self.handle_sigterm = handle_sigterm
        self.registered: list[Temporary] = []
        self.report: dict[str, list[dict[str, t.Any]]] = {"removed": [], "left_behind": []}
        self._old_handler: t.Any = None
        self._handler_installed = False
        self._cleaning = False
        self._interrupted_during_cleanup = False

    @property
    def tags(self) -> dict[str, str]:
        return temporary_tags(self.run_id, self.backup, self.source_volume_id)

    def name(self, kind: str) -> str:
        """`<prefix><backup>-<kind>-<run id start>`: readable, and unique per run."""
        base = f"{self.backup}-" if self.backup else ""
        return f"{self.prefix}{base}{kind}-{self.run_id[:8]}"[:MAX_VALUE_LENGTH]

    # --- registration, right after a create call returns --------------------------------------
    def register(self, kind: str, resource_id: str, name: str | None, remove: Remover, made_from: str | None = None) -> Temporary:
        temporary = Temporary(kind, resource_id, name, remove, made_from)
        self.registered.append(temporary)
        return temporary

    def register_snapshot(self, snapshot_id: str, name: str | None) -> Temporary:
        return self.register("snapshot", snapshot_id, name, remove_snapshot)

    def register_volume(self, volume_id: str, name: str | None, made_from: str | None = None) -> Temporary:
        """A volume; `made_from` names the snapshot it was cloned from, which is only removed after it."""
        return self.register("volume", volume_id, name, remove_volume, made_from)

    def register_image(self, image_id: str, name: str | None) -> Temporary:
        return self.register("image", image_id, name, remove_image)

    def keep(self, temporary: Temporary) -> None:
        """It is no longer temporary (a restored volume once complete): never remove it."""
        self.registered.remove(temporary)

    def remove_now(self, temporary: Temporary) -> None:
        """Remove one temporary now, as a normal step (the restore image): raises on failure."""
        temporary.remove(self.conn, temporary.id, Deadline(self.removal_timeout))
        self.registered.remove(temporary)
        self.report["removed"].append(temporary.describe())

    def cleanup(self) -> dict[str, list[dict[str, t.Any]]]:
        """Remove every registered temporary, last first; never raises. Returns the report."""
        self._cleaning = True
        try:
            outcome = remove_all(self.conn, list(reversed(self.registered)), self.removal_timeout)
        finally:
            self._cleaning = False
        # Tried once each: what could not go is reported with its id, not retried at exit.
        self.registered = []
        self.report["removed"].extend(outcome["removed"])
        self.report["left_behind"].extend(outcome["left_behind"])
        return self.report

    # --- context manager and SIGTERM ----------------------------------------------------------
    def _on_sigterm(self, signum: int, frame: t.Any) -> None:
        if self._cleaning:
            # Finish removing what we made; the interruption is raised once cleanup is over.
            self._interrupted_during_cleanup = True
            return
        raise DrBankError("Interrupted by SIGTERM; temporaries removed during cleanup", signal="SIGTERM")

    def __enter__(self) -> Temporaries:
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


def remove_all(conn: t.Any, temporaries: t.Iterable[Temporary], removal_timeout: float) -> dict[str, list[dict[str, t.Any]]]:
    """Remove each in the order given, each within its own deadline; one failure never stops the others.

    Except in one way: what a left-behind temporary was made from is not tried (a snapshot whose
    clone could not be removed in time): deleting it out of order fails on Ceph ("SnapshotIsBusy")
    and can break the clone elsewhere. It is reported as left behind, with the reason.
    """
    removed: list[dict[str, t.Any]] = []
    left_behind: list[dict[str, t.Any]] = []
    still_there: dict[str, Temporary] = {}
    for temporary in temporaries:
        blocking = [child for child in still_there.values() if child.made_from == temporary.id]
        if blocking:
            reason = ", ".join(f"{child.kind} {child.id}" for child in blocking)
            left_behind.append(temporary.describe(error=f"not removed: {reason}, made from it, is still there; remove that first"))
            still_there[temporary.id] = temporary
            continue
        try:
            temporary.remove(conn, temporary.id, Deadline(removal_timeout))
        except Exception as error:  # pylint: disable=broad-exception-caught
            left_behind.append(temporary.describe(error=str(error)))
            still_there[temporary.id] = temporary
        else:
            removed.append(temporary.describe())
    return {"removed": removed, "left_behind": left_behind}


# --- leftovers of crashed runs ------------------------------------------------------------------
def _created_before(resource: t.Any, cutoff: datetime.datetime | None) -> bool:
    created = getattr(resource, "created_at", None)
    if cutoff is None or not created:
        return True
    try:
        when = datetime.datetime.fromisoformat(str(created).replace("Z", "+00:00"))
    except ValueError:
        return True
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return when < cutoff


def list_images(conn: t.Any) -> list[t.Any]:
    return call("list images", lambda: list(conn.image.images()))


def find_orphaned_temporaries(conn: t.Any, run_id: str | None = None, older_than: float | None = None, *,
                              images: list[t.Any] | None = None, volumes: list[t.Any] | None = None) -> list[dict[str, t.Any]]:
    """Tagged temporaries still present at this site (of one run when `run_id` is given).

    `older_than` (seconds) skips younger ones, so a cleanup never races a run in progress.
    `images` and `volumes` are the site's listings when the caller has them already (else listed here).
    Returns [{"type","id","name","status","run","backup","source_volume"}]: images, then volumes,
    then snapshots, the order in which they can be removed.
    """
    cutoff = None
    if older_than is not None:
        cutoff = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=older_than)
    volumes = list_volumes(conn) if volumes is None else volumes
    volume_ids = {volume.id for volume in volumes}
    listed = [
        ("image", list_images(conn) if images is None else images, image_properties),
        ("volume", volumes, lambda volume: volume.metadata or {}),
        ("snapshot", call("list snapshots", lambda: list(conn.block_storage.snapshots(details=True))), lambda snap: snap.metadata or {}),
    ]
    found = []
    for kind, resources, tags_of in listed:
        for resource in resources:
            tags = tags_of(resource)
            if tags.get(PARENT_OF_TAG) in volume_ids:
                continue  # the restore image a restored volume was cloned from (Ceph): it goes after that volume
            # A restore marks its volume complete before its temporary tags go: a kill in between
            # leaves a finished volume that only looks temporary. It belongs to the restore now.
            if is_temporary(tags, run_id) and _created_before(resource, cutoff) and RESTORE_COMPLETE_TAG not in tags:
                found.append(_leftover(kind, resource, tags))
    return found


def _leftover(kind: str, resource: t.Any, tags: t.Mapping[str, t.Any], **extra: t.Any) -> dict[str, t.Any]:
    """A found temporary as find_orphaned_temporaries and the cleanup module report it."""
    return dict({"type": kind, "id": resource.id, "name": resource.name, "status": getattr(resource, "status", None),
                 "run": tags.get(TAG_RUN), "backup": tags.get(TAG_BACKUP), "source_volume": tags.get(TAG_SOURCE_VOLUME),
                 "made_from": getattr(resource, "snapshot_id", None) if kind == "volume" else None}, **extra)


def parent_images(conn: t.Any, volume_ids: t.Collection[str], images: list[t.Any] | None = None) -> list[dict[str, t.Any]]:
    """The restore images kept as the parents of these volumes (see restore_steps.keep_as_parent), in
    find_orphaned_temporaries' form: removable once those volumes are gone. `images`: the site's listing, if at hand."""
    found = []
    for image in list_images(conn) if images is None else images:
        tags = image_properties(image)
        if tags.get(PARENT_OF_TAG) in volume_ids:
            found.append(_leftover("image", image, tags, parent_of=tags[PARENT_OF_TAG]))
    return found


def remove_found(conn: t.Any, found: t.Iterable[t.Mapping[str, t.Any]], removal_timeout: float) -> dict[str, list[dict[str, t.Any]]]:
    """Remove listed leftovers ({"type","id","name"}) in the order given; never raises on one failure."""
    temporaries = [Temporary(item["type"], item["id"], item.get("name"), REMOVER_OF_FOUND_TYPE[item["type"]], item.get("made_from"))
                   for item in found]
    return remove_all(conn, temporaries, removal_timeout)


def remove_orphaned_temporaries(conn: t.Any, *, removal_timeout: float, run_id: str | None = None,
                                older_than: float | None = None) -> dict[str, list[dict[str, t.Any]]]:
    """Find and remove tagged temporaries; returns {"removed": [...], "left_behind": [...]}."""
    return remove_found(conn, find_orphaned_temporaries(conn, run_id=run_id, older_than=older_than), removal_timeout)
