# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Temporaries are tagged, registered at birth, removed last-in first-out, and cleanup never raises."""

from __future__ import annotations

import os
import signal

import pytest
from openstack import exceptions as sdk_exceptions

from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import DrBankError, ImageInUseError, OpenStackError
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack import removal, tags, temporaries, waiters
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack.temporaries import Temporaries
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack.waiters import Deadline
from ansible_collections.openstack_dr.bank.tests.unit.plugins.module_utils._openstack.fakes import FakeConnection, resource


def tracker_of(conn: FakeConnection, **options) -> Temporaries:
    options.setdefault("backup", "b")
    return Temporaries(conn, removal_timeout=60, **options)


def make_site(tracker: Temporaries, conn: FakeConnection) -> None:
    """One temporary of each kind, registered in creation order (snapshot first)."""
    marks = tracker.tags
    conn.block_storage.add("snapshot", resource(id="s1", name=tracker.name("snapshot"), metadata=marks))
    tracker.register_snapshot("s1", tracker.name("snapshot"))
    conn.block_storage.add("volume", resource(id="v1", name=tracker.name("volume"), metadata=marks))
    tracker.register_volume("v1", tracker.name("volume"))
    conn.image.add("image", resource(id="i1", name=tracker.name("image"), properties=marks))
    tracker.register_image("i1", tracker.name("image"))


def test_tags_name_run_backup_and_source_volume():
    tracker = tracker_of(FakeConnection(), backup="nightly", source_volume_id="vol-1", run_id="abcdef0123")
    assert tracker.tags == {
        "openstack_dr_bank_temporary": "true", "openstack_dr_bank_run": "abcdef0123",
        "openstack_dr_bank_backup": "nightly", "openstack_dr_bank_source_volume": "vol-1",
    }
    assert tracker.name("snapshot") == "dr-bank-tmp-nightly-snapshot-abcdef01"
    assert tracker_of(FakeConnection(), backup=None, prefix="x-", run_id="r" * 8).name("image") == "x-image-rrrrrrrr"


def test_cleanup_removes_last_in_first_out():
    conn = FakeConnection()
    tracker = tracker_of(conn, handle_sigterm=False)
    make_site(tracker, conn)
    report = tracker.cleanup()
    assert conn.deleted == [("image", "i1"), ("volume", "v1"), ("snapshot", "s1")]
    assert [r["id"] for r in report["removed"]] == ["i1", "v1", "s1"]
    assert report["left_behind"] == []


def test_cleanup_never_raises_and_reports_what_is_left():
    conn = FakeConnection()
    tracker = tracker_of(conn, handle_sigterm=False)
    make_site(tracker, conn)
    conn.block_storage.fail_delete.add("v1")
    report = tracker.cleanup()
    assert [r["id"] for r in report["removed"]] == ["i1", "s1"]
    (left,) = report["left_behind"]
    assert left["type"] == "volume" and left["id"] == "v1" and left["name"].startswith("dr-bank-tmp-")
    assert "cannot delete" in left["error"]


def test_context_manager_cleans_up_on_failure_and_adds_report_to_error():
    conn = FakeConnection()
    with pytest.raises(OpenStackError) as caught:
        with tracker_of(conn) as tracker:
            make_site(tracker, conn)
            raise OpenStackError("step failed")
    assert not conn.block_storage.items["volume"] and not conn.image.items["image"]
    assert [r["id"] for r in caught.value.details["temporaries"]["removed"]] == ["i1", "v1", "s1"]


def test_context_manager_turns_sigterm_into_an_error_and_restores_the_handler():
    conn = FakeConnection()
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(DrBankError, match="SIGTERM"):
        with tracker_of(conn) as tracker:
            make_site(tracker, conn)
            os.kill(os.getpid(), signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) is before
    assert not conn.block_storage.items["snapshot"]


def test_orphan_finder_sees_only_tagged_temporaries_of_the_run():
    conn = FakeConnection()
    mine = tracker_of(conn, run_id="run-a", handle_sigterm=False)
    make_site(mine, conn)
    conn.block_storage.add("volume", resource(id="user-vol", name="dr-bank-tmp-looks-like-one", metadata={}))
    conn.block_storage.add("volume", resource(id="v-other", name="x", metadata=tags.temporary_tags("run-b", "b", None)))
    assert {o["id"] for o in temporaries.find_orphaned_temporaries(conn)} == {"s1", "v1", "i1", "v-other"}
    assert {o["id"] for o in temporaries.find_orphaned_temporaries(conn, run_id="run-a")} == {"s1", "v1", "i1"}
    report = temporaries.remove_orphaned_temporaries(conn, run_id="run-a", removal_timeout=60)
    assert [r["id"] for r in report["removed"]] == ["i1", "v1", "s1"]
    assert set(conn.block_storage.items["volume"]) == {"user-vol", "v-other"}


def test_volume_still_creating_is_waited_for_then_deleted():
    conn = FakeConnection()
    statuses = iter(["creating", "available"])

    class Volume:
        id = "v5"
        name = "dr-bank-tmp-v"

        @property
        def status(self):
            return next(statuses, "available")

    conn.block_storage.add("volume", Volume())
    removal.remove_volume(conn, "v5", Deadline(30))
    assert conn.deleted == [("volume", "v5")]


def test_removal_retries_a_busy_server(monkeypatch):
    monkeypatch.setattr(removal.time, "sleep", lambda seconds: None)
    conn = FakeConnection()
    conn.image.add("image", resource(id="i7", name="dr-bank-tmp-i"))
    conn.image.busy_deletes["i7"] = 2
    removal.remove_image(conn, "i7", Deadline(60))
    assert conn.deleted == [("image", "i7")] * 3 and not conn.image.items["image"]


def test_kept_temporaries_are_never_removed_and_removed_now_ones_are_reported():
    conn = FakeConnection()
    with tracker_of(conn) as tracker:
        conn.image.add("image", resource(id="i1", name="restore-image"))
        image = tracker.register_image("i1", "restore-image")
        conn.block_storage.add("volume", resource(id="v1", name="restored"))
        volume = tracker.register_volume("v1", "restored")
        tracker.keep(volume)
        tracker.remove_now(image)
    assert set(conn.block_storage.items["volume"]) == {"v1"} and not conn.image.items["image"]
    assert [r["id"] for r in tracker.report["removed"]] == ["i1"] and tracker.report["left_behind"] == []


def test_a_removal_has_one_deadline_for_waiting_deleting_and_waiting_gone(monkeypatch):
    """A volume stuck in `creating`: the removal gives up at its one deadline, not three times it."""
    clock = {"now": 0.0}

    def sleep(seconds):
        clock["now"] += seconds

    monkeypatch.setattr(removal.time, "sleep", sleep)
    monkeypatch.setattr(waiters.time, "sleep", sleep)
    conn = FakeConnection()
    conn.block_storage.add("volume", resource(id="v9", name="stuck", status="creating"))
    deadline = Deadline(40, clock=lambda: clock["now"])
    with pytest.raises(OpenStackError, match="Timed out after 40 s"):
        removal.remove_volume(conn, "v9", deadline)
    assert clock["now"] == pytest.approx(40)
    assert conn.deleted == []


def test_each_create_step_registers_its_removal_before_it_waits():
    """The wait fails at once (status error): the temporary must already be registered, so cleanup removes it."""
    from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack import backup_steps  # pylint: disable=import-outside-toplevel

    conn = FakeConnection()

    def create_snapshot(**fields):
        return conn.block_storage.add("snapshot", resource(id="s-new", status="error", **{k: v for k, v in fields.items() if k == "name"}))

    conn.block_storage.create_snapshot = create_snapshot
    with pytest.raises(OpenStackError, match="s-new"):
        with tracker_of(conn) as tracker:
            backup_steps.create_temporary_snapshot(conn, tracker, resource(id="vol"), force=False, deadline=Deadline(60))
    assert [r["id"] for r in tracker.report["removed"]] == ["s-new"] and not conn.block_storage.items["snapshot"]


def test_a_snapshot_is_not_removed_while_its_clone_is_left_behind():
    conn = FakeConnection()
    tracker = tracker_of(conn, handle_sigterm=False)
    conn.block_storage.add("snapshot", resource(id="s1", name="s", metadata=tracker.tags))
    tracker.register_snapshot("s1", "s")
    conn.block_storage.add("volume", resource(id="v1", name="v", metadata=tracker.tags))
    tracker.register_volume("v1", "v", made_from="s1")
    conn.block_storage.fail_delete.add("v1")
    report = tracker.cleanup()
    assert conn.deleted == [("volume", "v1")] and report["removed"] == []  # tried, failed; the snapshot never tried
    assert [item["id"] for item in report["left_behind"]] == ["v1", "s1"]
    assert "volume v1, made from it, is still there" in report["left_behind"][1]["error"]


def test_found_leftovers_keep_the_clone_before_its_snapshot():
    conn = FakeConnection()
    marks = tags.temporary_tags("run-c", "b", None)
    conn.block_storage.add("snapshot", resource(id="s9", name="s", metadata=marks))
    conn.block_storage.add("volume", resource(id="v9", name="v", metadata=marks, snapshot_id="s9"))
    found = temporaries.find_orphaned_temporaries(conn, run_id="run-c")
    assert [(item["id"], item["made_from"]) for item in found] == [("v9", "s9"), ("s9", None)]
    conn.block_storage.fail_delete.add("v9")
    report = temporaries.remove_found(conn, found, removal_timeout=60)
    assert conn.deleted == [("volume", "v9")] and [item["id"] for item in report["left_behind"]] == ["v9", "s9"]


def test_a_volume_marked_restored_is_never_a_leftover():
    conn = FakeConnection()
    marks = dict(tags.temporary_tags("run-d", "b", None), **{tags.RESTORE_COMPLETE_TAG: "2026-12-02T03:00:00Z"})
    conn.block_storage.add("volume", resource(id="done", name="restored", metadata=marks))
    conn.block_storage.add("volume", resource(id="half", name="half", metadata=tags.temporary_tags("run-d", "b", None)))
    assert [item["id"] for item in temporaries.find_orphaned_temporaries(conn)] == ["half"]


def test_an_image_in_use_by_the_store_is_refused_at_once_not_retried(monkeypatch):
    monkeypatch.setattr(removal.time, "sleep", lambda seconds: pytest.fail("a refusal that lasts the volume's life is not retried"))
    conn = FakeConnection()
    conn.image.add("image", resource(id="i9", name="dr-bank-tmp-restore-image"))

    def refuse(image_id, ignore_missing=True):
        conn.deleted.append(("image", image_id))
        raise sdk_exceptions.ConflictException(
            f"409 Conflict: Image {image_id} could not be deleted because it is in use: The image cannot be deleted "
            "because it is in use through the backend store outside of Glance.", http_status=409)
    monkeypatch.setattr(conn.image, "delete_image", refuse)
    with pytest.raises(ImageInUseError, match="i9"):
        removal.remove_image(conn, "i9", Deadline(60))
    assert conn.deleted == [("image", "i9")]


def test_a_parent_image_is_a_leftover_only_once_its_volume_is_gone():
    conn = FakeConnection()
    marks = dict(tags.temporary_tags("run-p", "b", None), **{tags.PARENT_OF_TAG: "restored"})
    conn.image.add("image", resource(id="parent", name="dr-bank-tmp-b-image", properties=marks))
    conn.block_storage.add("volume", resource(id="restored", name="db", metadata={}))
    assert temporaries.find_orphaned_temporaries(conn) == []
    assert [item["id"] for item in temporaries.parent_images(conn, {"restored"})] == ["parent"]
    del conn.block_storage.items["volume"]["restored"]
    assert [item["id"] for item in temporaries.find_orphaned_temporaries(conn)] == ["parent"]
