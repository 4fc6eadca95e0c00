# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A restore killed during volume-from-image, run again: never reported done before it is.

SIGKILL leaves the half-made volume (tagged temporary) and the restore image behind, and Cinder
goes on filling the volume. The rerun of the same restore completes that volume when its bytes came
from the killed run's verified image, or removes it and restores anew when it failed; the cleanup
tools never remove a volume a restore has marked complete.
"""

from __future__ import annotations

import signal
import tempfile
import uuid

from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack.tags import (
    RESTORE_COMPLETE_TAG,
    TAG_KEYS,
    TAG_TEMPORARY,
    temporary_tags,
)
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack.temporaries import find_orphaned_temporaries

from devcloud_fixtures import connect, wait_for, wait_for_status  # pylint: disable=wrong-import-order
from module_runner import run_module, signal_process_tree, start_module  # pylint: disable=wrong-import-order
from test_modules import (  # pylint: disable=wrong-import-order,unused-import
    GIB,
    STEP_TIMEOUT,
    backup_args,
    delete_volume,
    fixture_banks,
    fixture_sites,
    fixture_source_volume,
    module_env,
    restore_args,
    volume_sha256,
)


def assert_no_temporaries(*conns) -> None:
    """None of this file's temporaries (backups named e2e-rerun-...) is left; other suites share the project."""
    for conn in conns:
        ours = [item for item in find_orphaned_temporaries(conn) if str(item.get("backup") or "").startswith("e2e-rerun-")]
        assert ours == [], f"temporaries left at {conn.config.name}: {ours}"


def volumes_named(conn, name: str) -> list:
    return [volume for volume in conn.block_storage.volumes() if volume.name == name]


def kill_during_volume_from_image(site_b, args: dict, env: dict) -> str:
    """Start the restore, SIGKILL its whole process tree while Cinder fills the volume; the volume's id."""
    with tempfile.TemporaryDirectory() as tree:
        process = start_module("volume_glance_restore", args, tree, env=env)
        try:
            wait_for(lambda: volumes_named(site_b, args["restore_name"]) or process.poll() is not None, STEP_TIMEOUT,
                     "the restore to create its volume", interval=0.2)
            assert process.poll() is None, f"the restore ended before it could be killed: {process.communicate()}"
            (half_made,) = volumes_named(site_b, args["restore_name"])
            assert half_made.status in ("creating", "downloading"), half_made.status
            signal_process_tree(process.pid, signal.SIGKILL)
            process.communicate(timeout=STEP_TIMEOUT)
        finally:
            if process.poll() is None:
                signal_process_tree(process.pid, signal.SIGKILL)
    volume = site_b.block_storage.get_volume(half_made.id)
    assert (volume.metadata or {}).get(TAG_TEMPORARY) == "true", volume.metadata
    return half_made.id


def back_up_then_kill_the_restore(sites, site_a, site_b, volume_id: str, banks, name: str) -> tuple[dict, dict, str]:
    """Back the (bootable) source up as ``name``, then SIGKILL its raw restore at site B mid-way: (args, env, volume id)."""
    env = module_env(sites)
    site_a.block_storage.set_volume_bootable_status(volume_id, True)
    made = run_module("volume_glance_backup", backup_args(volume_id, banks["file"], name), env=env)
    assert not made.failed, made.result
    # Raw carries every byte, so Cinder's download into the volume lasts long enough to be killed.
    args = restore_args(banks["file"], name, f"e2e-rerun-{uuid.uuid4().hex[:8]}", transfer_format="raw")
    return args, env, kill_during_volume_from_image(site_b, args, env)


def assert_complete(site_b, volume_id: str) -> None:
    volume = site_b.block_storage.get_volume(volume_id)
    assert volume.status == "available"
    assert volume.is_bootable in (True, "true")
    assert RESTORE_COMPLETE_TAG in (volume.metadata or {}), volume.metadata
    assert not set(TAG_KEYS) & set(volume.metadata or {}), volume.metadata
    assert not set(TAG_KEYS) & set(volume.volume_image_metadata or {}), volume.volume_image_metadata
    assert (volume.volume_image_metadata or {}).get("hw_disk_bus") == "scsi"


def test_a_rerun_completes_the_killed_restores_volume_and_cleanup_spares_a_completed_one(sites, site_a, site_b, source_volume, banks):
    volume, expected_sha256 = source_volume
    name = "e2e-rerun-complete"
    args, env, half_made_id = back_up_then_kill_the_restore(sites, site_a, site_b, volume.id, banks, name)
    try:
        checked = run_module("volume_glance_restore", args, check=True, env=env)
        assert not checked.failed and checked["changed"], checked.result
        assert checked["earlier_restore"]["volume_id"] == half_made_id and not checked["earlier_restore"]["complete"]

        rerun = run_module("volume_glance_restore", args, env=env)
        assert not rerun.failed, rerun.result
        assert rerun["changed"] and rerun["volume"]["id"] == half_made_id, rerun.result
        assert rerun["earlier_restore"]["outcome"] == "completed", rerun["earlier_restore"]
        assert_complete(site_b, half_made_id)
        # The killed run's restore image went with the rerun.
        assert not [item for item in find_orphaned_temporaries(site_b) if item.get("backup") == name]
        assert volume_sha256(site_b, half_made_id) == (expected_sha256, GIB)

        again = run_module("volume_glance_restore", args, env=env)
        assert not again.failed and not again["changed"] and again["volume"]["id"] == half_made_id, again.result

        # Killed after the completion mark, before its temporary tags went: cleanup keeps it, a rerun finishes it.
        site_b.block_storage.set_volume_metadata(half_made_id, **temporary_tags("killed-run", name, volume.id))
        cleaned = run_module("temporaries_cleanup", {"cloud": "site-b", "older_than": 0}, env=env)
        assert not cleaned.failed, cleaned.result
        assert half_made_id not in [item["id"] for item in cleaned["found"]], cleaned["found"]
        assert site_b.block_storage.get_volume(half_made_id).status == "available"
        finished = run_module("volume_glance_restore", args, env=env)
        assert not finished.failed and finished["changed"] and finished["earlier_restore"]["outcome"] == "completed"
        assert_complete(site_b, half_made_id)
    finally:
        delete_volume(site_b, half_made_id)
    assert_no_temporaries(site_a, site_b)


def test_a_rerun_replaces_the_killed_restores_volume_when_cinder_failed_it(sites, site_a, site_b, source_volume, banks):
    volume, expected_sha256 = source_volume
    args, env, half_made_id = back_up_then_kill_the_restore(sites, site_a, site_b, volume.id, banks, "e2e-rerun-replace")
    replacement_id = None
    try:
        # Let Cinder finish, then make the volume what a failed volume-from-image leaves: status error.
        wait_for_status(lambda: site_b.block_storage.get_volume(half_made_id), "available", STEP_TIMEOUT, "the half-made volume")
        admin = connect("site-b-admin", sites)
        try:
            admin.block_storage.reset_volume_status(half_made_id, status="error", attach_status=None, migration_status=None)
        finally:
            admin.close()
        wait_for_status(lambda: site_b.block_storage.get_volume(half_made_id), "error", STEP_TIMEOUT, "the reset", failures=())

        rerun = run_module("volume_glance_restore", args, env=env)
        assert not rerun.failed, rerun.result
        replacement_id = rerun["volume"]["id"]
        assert rerun["changed"] and replacement_id != half_made_id, rerun.result
        assert rerun["earlier_restore"]["outcome"] == "removed and restored again", rerun["earlier_restore"]
        assert [v.id for v in volumes_named(site_b, args["restore_name"])] == [replacement_id]
        assert_complete(site_b, replacement_id)
        assert volume_sha256(site_b, replacement_id) == (expected_sha256, GIB)
    finally:
        for volume_id in (half_made_id, replacement_id):
            if volume_id:
                delete_volume(site_b, volume_id)
    assert_no_temporaries(site_a, site_b)
