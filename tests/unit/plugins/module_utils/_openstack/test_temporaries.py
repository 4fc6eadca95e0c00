# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Temporaries are tagged, removed image -> volume -> snapshot, and cleanup never raises."""

from __future__ import annotations

import os
import signal

import pytest

from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import DrBankError, OpenStackError
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack import temporaries
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack.temporaries import TemporaryResources
from ansible_collections.openstack_dr.bank.tests.unit.plugins.module_utils._openstack.fakes import FakeConnection, resource


def make_site(tracker: TemporaryResources, conn: FakeConnection) -> None:
    """One temporary of each kind, recorded in creation order (snapshot first)."""
    tags = tracker.tags
    conn.block_storage.add("snapshot", resource(id="s1", name=tracker.name("snapshot"), metadata=tags))
    tracker.record("snapshot", "s1", tracker.name("snapshot"))
    conn.block_storage.add("volume", resource(id="v1", name=tracker.name("volume"), metadata=tags))
    tracker.record("volume", "v1", tracker.name("volume"))
    conn.image.add("image", resource(id="i1", name=tracker.name("image"), properties=tags))
    tracker.record("image", "i1", tracker.name("image"))


def test_tags_name_run_backup_and_source_volume():
    tracker = TemporaryResources(FakeConnection(), backup="nightly", source_volume_id="vol-1", run_id="abcdef0123")
    assert tracker.tags == {
        "openstack_dr_bank_temporary": "true", "openstack_dr_bank_run": "abcdef0123",
        "openstack_dr_bank_backup": "nightly", "openstack_dr_bank_source_volume": "vol-1",
    }
    assert tracker.name("snapshot") == "dr-bank-tmp-nightly-snapshot-abcdef01"
    assert TemporaryResources(FakeConnection(), prefix="x-", run_id="r" * 8).name("image") == "x-image-rrrrrrrr"


def test_cleanup_removes_in_dependency_order():
    conn = FakeConnection()
    tracker = TemporaryResources(conn, backup="b", handle_sigterm=False)
    make_site(tracker, conn)
    report = tracker.cleanup()
    assert conn.deleted == [("image", "i1"), ("volume", "v1"), ("snapshot", "s1")]
    assert [r["id"] for r in report["removed"]] == ["i1", "v1", "s1"]
    assert report["left_behind"] == []


def test_cleanup_never_raises_and_reports_what_is_left():
    conn = FakeConnection()
    tracker = TemporaryResources(conn, backup="b", handle_sigterm=False)
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
        with TemporaryResources(conn, backup="b") as tracker:
            make_site(tracker, conn)
            raise OpenStackError("step failed")
    assert not conn.block_storage.items["volume"] and not conn.image.items["image"]
    assert [r["id"] for r in caught.value.details["temporaries"]["removed"]] == ["i1", "v1", "s1"]


def test_context_manager_turns_sigterm_into_an_error_and_restores_the_handler():
    conn = FakeConnection()
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(DrBankError, match="SIGTERM"):
        with TemporaryResources(conn, backup="b") as tracker:
            make_site(tracker, conn)
            os.kill(os.getpid(), signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) is before
    assert not conn.block_storage.items["snapshot"]


def test_orphan_finder_sees_only_tagged_temporaries_of_the_run():
    conn = FakeConnection()
    mine = TemporaryResources(conn, backup="b", run_id="run-a", handle_sigterm=False)
    make_site(mine, conn)
    conn.block_storage.add("volume", resource(id="user-vol", name="dr-bank-tmp-looks-like-one", metadata={}))
    conn.block_storage.add("volume", resource(id="v-other", name="x", metadata=temporaries.temporary_tags("run-b", "b", None)))
    assert {o["id"] for o in temporaries.find_orphaned_temporaries(conn)} == {"s1", "v1", "i1", "v-other"}
    assert {o["id"] for o in temporaries.find_orphaned_temporaries(conn, run_id="run-a")} == {"s1", "v1", "i1"}
    report = temporaries.remove_orphaned_temporaries(conn, run_id="run-a")
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
    temporaries.remove_temporary(conn, "volume", "v5", timeout=30)
    assert conn.deleted == [("volume", "v5")]


def test_removal_retries_a_busy_server(monkeypatch):
    monkeypatch.setattr(temporaries.time, "sleep", lambda seconds: None)
    conn = FakeConnection()
    conn.image.add("image", resource(id="i7", name="dr-bank-tmp-i"))
    conn.image.busy_deletes["i7"] = 2
    temporaries.remove_temporary(conn, "image", "i7", timeout=60)
    assert conn.deleted == [("image", "i7")] * 3 and not conn.image.items["image"]
