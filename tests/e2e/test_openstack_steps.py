# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The OpenStack steps against the real two-site devcloud, as the member users of project dr.

Known bytes go in through a Glance image (our own upload step), a volume is made from it, and the
backup steps must give back exactly those bytes (then zeros up to the volume's 1 GiB). Every test
removes what it made and asserts that nothing tagged with its run id is left at the site.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest

from devcloud_fixtures import connect, load_sites, wait_for

from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import (
    DeadlineExceededError,
    ImageInUseError,
    IntegrityError,
    InvalidInputError,
    OpenStackError,
)
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack import backup_steps, removal, restore_steps, tags, temporaries, volumes
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack.waiters import Deadline

GIB = 1024 ** 3
STEP_TIMEOUT = 300
# Over 4 MB on purpose: Glance under uWSGI stalls on chunked pieces that big, not on a sized body.
PAYLOAD_SIZE = 9 * 1024 * 1024 + 4321
COLLECTIONS_PATH = Path(__file__).resolve().parents[2] / ".cache" / "collections"


def make_payload(seed: str, size: int = PAYLOAD_SIZE) -> bytes:
    return random.Random(seed).randbytes(size)


class PayloadReader:
    """The file-like the chunk engine will hand us: only read(n) is used."""

    def __init__(self, data: bytes, fail_after: int | None = None) -> None:
        self.data = data
        self.offset = 0
        self.fail_after = fail_after
        self.largest_read = 0

    def read(self, size: int) -> bytes:
        if self.fail_after is not None and self.offset >= self.fail_after:
            raise IntegrityError(f"chunk at offset {self.offset} does not match its hash")
        piece = self.data[self.offset:self.offset + size]
        self.offset += len(piece)
        self.largest_read = max(self.largest_read, size)
        return piece


def deadline() -> Deadline:
    return Deadline(STEP_TIMEOUT)


def tracker(conn: Any, **options: Any) -> temporaries.Temporaries:
    return temporaries.Temporaries(conn, removal_timeout=STEP_TIMEOUT, **options)


def copy_to_image(conn: Any, temps: temporaries.Temporaries, volume: Any, mode: str) -> Any:
    """The backup flow's copy, step by step: (snapshot -> temporary volume ->) raw image."""
    if mode == "snapshot":
        snapshot = backup_steps.create_temporary_snapshot(conn, temps, volume, force=False, deadline=deadline())
        volume = backup_steps.create_temporary_volume(conn, temps, snapshot, volume.size, deadline=deadline())
    return backup_steps.upload_volume_to_image(conn, temps, volume, disk_format="raw", deadline=deadline())


def remove_volume(conn: Any, volume: Any) -> None:
    removal.remove_volume(conn, getattr(volume, "id", volume), deadline())


def remove_image(conn: Any, image: Any) -> None:
    removal.remove_image(conn, getattr(image, "id", image), deadline())


def assert_nothing_tagged_left(conn: Any, run_id: str) -> None:
    left = temporaries.find_orphaned_temporaries(conn, run_id=run_id)
    assert left == [], f"temporaries of run {run_id} left behind: {left}"


def check_image_bytes(conn: Any, image: Any, payload: bytes, expected_size: int) -> None:
    """Streams the image through GlanceImageSource: payload first, zeros after, Glance's hash right."""
    digest = hashlib.sha256()
    image = backup_steps.get_active_image(conn, image.id)
    source = backup_steps.GlanceImageSource(conn, image)
    assert source.size == expected_size
    assert (image.disk_format, image.container_format) == ("raw", "bare")
    whole = hashlib.new(image.hash_algo)
    seen = 0
    for piece in source.stream(0):
        assert len(piece) <= 1024 * 1024
        whole.update(piece)
        head = piece[:max(0, len(payload) - seen)]
        digest.update(head)
        tail = piece[len(head):]
        assert tail.count(0) == len(tail), f"non-zero byte after the payload near offset {seen}"
        seen += len(piece)
    assert seen == expected_size == source.bytes_streamed
    assert digest.hexdigest() == hashlib.sha256(payload).hexdigest(), "the image does not hold the volume's bytes"
    assert whole.hexdigest() == image.hash_value
    # A window anywhere in the image comes back exact. Glance's file store honours Range; its RBD store
    # cannot seek (glance_store's StoreRandomGetNotSupported, a 400), so the window is cut from a download from the start.
    window = source.read_range(len(payload) - 100, 200)
    assert window == payload[-100:] + bytes(100) and source.range_requests == 1
    if load_sites()["sites"][conn.config.name]["image_store"] == "rbd":
        assert not source.ranges_served and source.bytes_ranged >= len(payload) + 100
    else:
        assert source.ranges_served and source.bytes_ranged == 200


@pytest.fixture(scope="module", name="admin_a")
def fixture_admin_a(devcloud_sites):
    conn = connect("site-a-admin", devcloud_sites)
    yield conn
    conn.close()


def make_image_with_bytes(conn: Any, name: str, payload: bytes) -> Any:
    """Our own restore-side steps: a private raw image, then a sized streamed upload (kept: not a temporary)."""
    temps = tracker(conn, prefix=name + "-", handle_sigterm=False)
    with temps:
        image, registration = restore_steps.create_restore_image(conn, temps, disk_format="raw", min_disk=1)
        image = restore_steps.upload_image_data(conn, image, PayloadReader(payload), len(payload), deadline=deadline(),
                                                piece_size=8 * 1024 * 1024)
        temps.keep(registration)
    assert image.size == len(payload)
    return image


@pytest.fixture(scope="module", name="source")
def fixture_source(site_a):
    """A 1 GiB volume at site A whose first bytes are a known payload (the rest zeros)."""
    tag = f"e2e-os-steps-{uuid.uuid4().hex[:8]}"
    payload = make_payload(tag)
    image = make_image_with_bytes(site_a, f"{tag}-source-image", payload)
    volume = None
    try:
        with tracker(site_a, handle_sigterm=False) as temps:
            volume, registration = restore_steps.create_volume_from_image(site_a, temps, image, name=f"{tag}-source", size=1,
                                                                          deadline=deadline())
            temps.keep(registration)
        restore_steps.remove_volume_metadata(site_a, volume, temps.tags)
        yield {"volume": volume, "payload": payload, "tag": tag}
    finally:
        remove_image(site_a, image)
        if volume is not None:
            remove_volume(site_a, volume)


def attach_without_nova(conn: Any, volume: Any) -> None:
    """No Nova here: Cinder's own reserve + os-attach make the volume in-use, as a server would."""
    conn.block_storage.reserve_volume(volume)
    conn.block_storage.attach_volume(volume, "/dev/vdb", instance=str(uuid.uuid4()))
    wait_for(lambda: conn.block_storage.get_volume(volume.id).status == "in-use", 60, "volume in-use")


def detach_without_nova(conn: Any, volume: Any) -> None:
    for attachment in conn.block_storage.get_volume(volume.id).attachments or []:
        conn.block_storage.detach_volume(volume, attachment["attachment_id"])
    wait_for(lambda: conn.block_storage.get_volume(volume.id).status == "available", 60, "volume available")


def test_snapshot_mode_image_holds_the_volume_bytes(site_a, source):
    volume = volumes.find_volume(site_a, source["volume"].name)
    with tracker(site_a, backup="e2e-snap", source_volume_id=volume.id) as temps:
        image = copy_to_image(site_a, temps, volume, "snapshot")
        assert image.visibility == "private"
        assert tags.is_temporary(tags.image_properties(image), temps.run_id)
        assert [c.kind for c in temps.registered] == ["snapshot", "volume", "image"]
        check_image_bytes(site_a, image, source["payload"], GIB)
        assert site_a.block_storage.get_volume(volume.id).status == "available"
    assert [r["type"] for r in temps.report["removed"]] == ["image", "volume", "snapshot"]
    assert temps.report["left_behind"] == []
    assert_nothing_tagged_left(site_a, temps.run_id)


def test_in_use_volume_is_found_and_needs_force_for_a_snapshot(site_a, source):
    # The devcloud's NFS driver snapshots an attached volume through Nova, which it lacks: only
    # the choice of mode is proven here; the snapshot copy itself is proven on an available volume.
    volume = source["volume"]
    attach_without_nova(site_a, volume)
    try:
        volume = volumes.find_volume(site_a, volume.name)
        assert volume.status == "in-use"
        with pytest.raises(InvalidInputError, match="force"):
            backup_steps.choose_copy_mode(volume, "auto", force=False)
        with pytest.raises(InvalidInputError, match="direct needs a detached"):
            backup_steps.choose_copy_mode(volume, "direct", force=True)
        assert backup_steps.choose_copy_mode(volume, "auto", force=True) == "snapshot"
    finally:
        detach_without_nova(site_a, volume)


def test_direct_mode_image_holds_the_volume_bytes_without_copies(site_a, source):
    volume = volumes.find_volume(site_a, source["volume"].id)
    described = volumes.describe_volume(site_a, volume)
    assert described["size"] == 1 and described["volume_type"] == "nfs" and described["region"] == "RegionA"
    assert backup_steps.choose_copy_mode(volume, "auto", False) == "direct"
    with tracker(site_a, backup="e2e-direct", source_volume_id=volume.id) as temps:
        image = copy_to_image(site_a, temps, volume, "direct")
        assert [c.kind for c in temps.registered] == ["image"]
        check_image_bytes(site_a, image, source["payload"], GIB)
    assert [r["type"] for r in temps.report["removed"]] == ["image"]
    assert site_a.block_storage.get_volume(volume.id).status == "available"
    assert_nothing_tagged_left(site_a, temps.run_id)


def test_upload_deadline_failure_leaves_no_temporary(site_a, source):
    volume = source["volume"]
    with pytest.raises(DeadlineExceededError) as caught:
        with tracker(site_a, backup="e2e-deadline", source_volume_id=volume.id) as temps:
            snapshot = backup_steps.create_temporary_snapshot(site_a, temps, volume, force=False, deadline=deadline())
            temporary_volume = backup_steps.create_temporary_volume(site_a, temps, snapshot, 1, deadline=deadline())
            backup_steps.upload_volume_to_image(site_a, temps, temporary_volume, disk_format="raw", deadline=Deadline(0.001))
    error = caught.value
    assert error.details["resource_type"] == "image" and error.details["resource_id"] in str(error)
    report = error.details["temporaries"]
    assert [r["type"] for r in report["removed"]] == ["image", "volume", "snapshot"], report
    assert report["left_behind"] == []
    assert_nothing_tagged_left(site_a, temps.run_id)
    wait_for(lambda: site_a.block_storage.get_volume(volume.id).status == "available", 120, "source volume available")


def test_exception_after_the_temporary_volume_exists_leaves_nothing(site_a, source):
    volume = source["volume"]
    with pytest.raises(RuntimeError, match="injected"):
        with tracker(site_a, backup="e2e-inject", source_volume_id=volume.id) as temps:
            snapshot = backup_steps.create_temporary_snapshot(site_a, temps, volume, force=False, deadline=deadline())
            # No wait: the volume is registered while still `creating`, and must still be removed.
            site_volume = site_a.block_storage.create_volume(snapshot_id=snapshot.id, size=1, name=temps.name("volume"), metadata=temps.tags)
            temps.register_volume(site_volume.id, temps.name("volume"))
            raise RuntimeError("injected failure after the temporary volume exists")
    assert [r["type"] for r in temps.report["removed"]] == ["volume", "snapshot"]
    assert_nothing_tagged_left(site_a, temps.run_id)


def test_a_clone_whose_removal_wait_times_out_keeps_its_snapshot_untouched(site_a, source):
    """The wait for the clone's removal times out (the clone is held in-use); the snapshot it was made
    from is then never sent a delete, and the report names both with the reason (issue 9, item 6)."""
    volume = source["volume"]
    temps = temporaries.Temporaries(site_a, removal_timeout=5, backup="e2e-removal-order", source_volume_id=volume.id,
                                    handle_sigterm=False)
    snapshot = backup_steps.create_temporary_snapshot(site_a, temps, volume, force=False, deadline=deadline())
    clone = backup_steps.create_temporary_volume(site_a, temps, snapshot, 1, deadline=deadline())
    attach_without_nova(site_a, clone)
    try:
        report = temps.cleanup()
        assert report["removed"] == [], report
        assert [(item["type"], item["id"]) for item in report["left_behind"]] == [("volume", clone.id), ("snapshot", snapshot.id)], report
        assert "reach a status that allows deletion" in report["left_behind"][0]["error"], report
        assert f"volume {clone.id}, made from it, is still there" in report["left_behind"][1]["error"], report
        # Never sent a delete: still there and available, not deleting or error_deleting.
        assert site_a.block_storage.get_snapshot(snapshot.id).status == "available"
        assert site_a.block_storage.get_volume(clone.id).status == "in-use"
    finally:
        detach_without_nova(site_a, clone)
        remove_volume(site_a, clone)
        removal.remove_snapshot(site_a, snapshot.id, deadline())
    assert_nothing_tagged_left(site_a, temps.run_id)
    wait_for(lambda: site_a.block_storage.get_volume(volume.id).status == "available", 120, "source volume available")


SIGTERM_SCRIPT = textwrap.dedent("""
    import json, sys, time
    from devcloud_fixtures import connect
    from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import DrBankError
    from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack import backup_steps, volumes
    from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack.temporaries import Temporaries
    from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack.waiters import Deadline
    conn = connect("site-a")
    volume = volumes.find_volume(conn, sys.argv[1])
    temps = Temporaries(conn, removal_timeout=300, backup="e2e-sigterm", source_volume_id=volume.id, run_id=sys.argv[2])
    try:
        with temps:
            snapshot = backup_steps.create_temporary_snapshot(conn, temps, volume, force=False, deadline=Deadline(300))
            backup_steps.create_temporary_volume(conn, temps, snapshot, 1, deadline=Deadline(300))
            print("READY", flush=True)
            time.sleep(600)
    except DrBankError as error:
        print(json.dumps({"error": str(error), "report": temps.report}), flush=True)
        sys.exit(3)
""")


def test_sigterm_cleans_up_the_temporaries(site_a, source):
    run_id = uuid.uuid4().hex
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(COLLECTIONS_PATH), str(Path(__file__).parent)]))
    process = subprocess.Popen(
        [sys.executable, "-c", SIGTERM_SCRIPT, source["volume"].id, run_id],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        line = process.stdout.readline()
        assert line.strip() == "READY", f"child did not get ready: {line!r} {process.stderr.read() if process.poll() is not None else ''}"
        assert {o["type"] for o in temporaries.find_orphaned_temporaries(site_a, run_id=run_id)} == {"snapshot", "volume"}
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=600)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 3, err
    result = json.loads(out.strip().splitlines()[-1])
    assert "SIGTERM" in result["error"]
    assert [r["type"] for r in result["report"]["removed"]] == ["volume", "snapshot"]
    assert_nothing_tagged_left(site_a, run_id)


def test_orphan_finder_finds_and_removes_a_leaked_temporary(site_a, source):
    leaked = tracker(site_a, backup="e2e-orphan", source_volume_id=source["volume"].id)
    # A crash: the snapshot is created and registered, but this run never cleans up.
    snapshot = backup_steps.create_temporary_snapshot(site_a, leaked, source["volume"], force=False, deadline=deadline())
    try:
        found = temporaries.find_orphaned_temporaries(site_a, run_id=leaked.run_id)
        assert found == [{
            "type": "snapshot", "id": snapshot.id, "name": leaked.name("snapshot"), "status": "available",
            "run": leaked.run_id, "backup": "e2e-orphan", "source_volume": source["volume"].id, "made_from": None,
        }]
        assert temporaries.find_orphaned_temporaries(site_a, run_id=leaked.run_id, older_than=3600) == []
        report = temporaries.remove_orphaned_temporaries(site_a, run_id=leaked.run_id, removal_timeout=STEP_TIMEOUT)
        assert [r["id"] for r in report["removed"]] == [snapshot.id] and report["left_behind"] == []
    finally:
        leaked.cleanup()
    assert_nothing_tagged_left(site_a, leaked.run_id)


def test_restore_side_at_site_b(site_b, devcloud_sites):
    tag = f"e2e-os-restore-{uuid.uuid4().hex[:8]}"
    payload = make_payload(tag)
    source_type = "gold-a"
    chosen, reason = restore_steps.resolve_volume_type(site_b, None, source_type)
    default_b = devcloud_sites["sites"]["site-b"]["volume_types"]["default"]  # nfs or rbd: site B's backend
    assert chosen is None and "gold-a does not exist" in reason and f"({default_b})" in reason
    assert restore_steps.resolve_volume_type(site_b, None, default_b)[0] == default_b
    with pytest.raises(InvalidInputError, match="unknown volume_type gold-a; available: .*gold-b"):
        restore_steps.resolve_volume_type(site_b, "gold-a", None)
    volume_type, _reason = restore_steps.resolve_volume_type(site_b, "gold-b", source_type)

    parent = None
    with tracker(site_b, backup=tag) as temps:
        image, image_registration = restore_steps.create_restore_image(site_b, temps, disk_format="raw", min_disk=1)
        assert image.visibility == "private" and image.status == "queued"
        assert tags.is_temporary(tags.image_properties(image), temps.run_id)
        reader = PayloadReader(payload)
        image = restore_steps.upload_image_data(site_b, image, reader, len(payload), deadline=deadline(), piece_size=8 * 1024 * 1024)
        assert image.status == "active" and image.size == len(payload)
        assert image.hash_value == hashlib.new(image.hash_algo, payload).hexdigest()

        restored, registration = restore_steps.create_volume_from_image(
            site_b, temps, image, name=tag, size=1, deadline=deadline(), volume_type=volume_type,
            metadata={"openstack_dr_bank_backup_id": tag, "app": "db"}, description="restored by e2e",
        )
        # Registered at birth: until it is kept, the volume is a tagged temporary of this run.
        assert [c.kind for c in temps.registered] == ["image", "volume"]
        assert tags.is_temporary(restored.metadata, temps.run_id)
        temps.keep(registration)
        try:
            assert restored.volume_type == "gold-b" and restored.status == "available"
            restore_steps.set_volume_bootable(site_b, restored, True)
            outcome = restore_steps.set_volume_image_metadata(
                site_b, restored, {"hw_disk_bus": "scsi", "os_distro": "debian", "checksum": "from-site-a", "image_id": "gone"},
            )
            assert outcome["set"] == ["hw_disk_bus", "os_distro"] and outcome["skipped"] == ["checksum", "image_id"]
            assert set(outcome["removed"]) >= {"openstack_dr_bank_temporary", "openstack_dr_bank_run"}
            restore_steps.remove_volume_metadata(site_b, restored, temps.tags)
            try:
                temps.remove_now(image_registration)
            except ImageInUseError:
                # Cinder on Ceph cloned the raw image: it lives as the volume's parent, and goes after it.
                assert devcloud_sites["sites"]["site-b"]["backend"] == "rbd"
                parent = restore_steps.keep_as_parent(site_b, temps, image_registration, restored.id)
                assert parent == {"id": image.id, "parent_of": restored.id}
            restored = site_b.block_storage.get_volume(restored.id)
            assert restored.is_bootable and not tags.is_temporary(restored.metadata)
            image_metadata = restored.volume_image_metadata
            assert image_metadata["hw_disk_bus"] == "scsi" and image_metadata["os_distro"] == "debian"
            assert not any(key.startswith("openstack_dr_bank_") for key in image_metadata)
            assert [v.id for v in volumes.volumes_named(site_b, tag)] == [restored.id]
            assert tags.carries_tag(restored, "openstack_dr_bank_backup_id", tag)

            # The restored volume holds the bytes: read it back through our own direct copy.
            with tracker(site_b, backup=tag + "-check", source_volume_id=restored.id) as check:
                copy = copy_to_image(site_b, check, restored, "direct")
                check_image_bytes(site_b, copy, payload, GIB)
            assert_nothing_tagged_left(site_b, check.run_id)
        finally:
            remove_volume(site_b, restored)
            if parent is not None:
                removal.remove_image(site_b, parent["id"], deadline())
    assert temps.report["left_behind"] == []
    assert volumes.volumes_named(site_b, tag) == []
    assert_nothing_tagged_left(site_b, temps.run_id)


def test_reader_error_propagates_and_the_image_is_removed(site_b):
    with pytest.raises(IntegrityError, match="does not match its hash"):
        with tracker(site_b, backup="e2e-reader-error") as temps:
            image, _registration = restore_steps.create_restore_image(site_b, temps, disk_format="raw", min_disk=1)
            reader = PayloadReader(make_payload("bad"), fail_after=2 * 1024 * 1024)
            restore_steps.upload_image_data(site_b, image, reader, PAYLOAD_SIZE, deadline=deadline())
    assert [r["type"] for r in temps.report["removed"]] == ["image"], temps.report
    assert_nothing_tagged_left(site_b, temps.run_id)


def test_quota_refusal_is_a_clear_error_with_nothing_left(site_b, devcloud_sites):
    too_big = devcloud_sites["sites"]["site-b"]["quotas"]["gigabytes"] + 1
    tag = f"e2e-os-quota-{uuid.uuid4().hex[:8]}"
    with tracker(site_b, backup=tag) as temps:
        image, _registration = restore_steps.create_restore_image(site_b, temps, disk_format="raw", min_disk=1)
        data = make_payload(tag, 1024 * 1024)
        restore_steps.upload_image_data(site_b, image, PayloadReader(data), len(data), deadline=deadline())
        with pytest.raises(OpenStackError, match="quota exceeded") as caught:
            restore_steps.create_volume_from_image(site_b, temps, image, name=tag, size=too_big, deadline=deadline())
        assert "nothing was created" in str(caught.value)
    assert volumes.volumes_named(site_b, tag) == []
    assert temps.report["left_behind"] == []


def test_unknown_volume_is_a_clear_error(site_a):
    with pytest.raises(InvalidInputError, match="not found"):
        volumes.find_volume(site_a, f"no-such-volume-{uuid.uuid4().hex}")


def test_volume_in_error_and_ambiguous_names_are_clear_errors(site_a, admin_a):
    name = f"e2e-os-bad-{uuid.uuid4().hex[:8]}"
    made = []
    try:
        for _attempt in range(2):
            made.append(site_a.block_storage.create_volume(name=name, size=1))
        for volume in made:
            wait_for(lambda v=volume: site_a.block_storage.get_volume(v.id).status == "available", STEP_TIMEOUT, "volume available")
        with pytest.raises(InvalidInputError, match="ambiguous"):
            volumes.find_volume(site_a, name)
        admin_a.block_storage.reset_volume_status(made[0], status="error")
        with pytest.raises(InvalidInputError, match="status 'error'"):
            volumes.find_volume(site_a, made[0].id)
    finally:
        for volume in made:
            remove_volume(site_a, volume)
    assert volumes.volumes_named(site_a, name) == []
