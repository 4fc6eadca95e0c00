# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Volumes: described for the manifest, plain and without our tags; tags recognised."""

from __future__ import annotations

from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack import tags, volumes
from ansible_collections.openstack_dr.bank.tests.unit.plugins.module_utils._openstack.fakes import FakeConnection, resource


def test_describe_volume_is_plain_and_drops_our_tags():
    volume = resource(
        id="v1", name="db", size=3, volume_type="fast", is_bootable="true", is_multiattach=False, availability_zone="nova",
        metadata={"app": "db", "openstack_dr_bank_run": "x"}, volume_image_metadata={"hw_disk_bus": "scsi", "openstack_dr_bank_temporary": "true"},
        status="in-use", description="d",
    )
    described = volumes.describe_volume(FakeConnection(), volume)
    assert described == {
        "id": "v1", "name": "db", "size": 3, "volume_type": "fast", "bootable": True, "multiattach": False,
        "availability_zone": "nova", "metadata": {"app": "db"}, "volume_image_metadata": {"hw_disk_bus": "scsi"},
        "status": "in-use", "description": "d", "cloud": "site-x", "region": "RegionX",
    }


def test_volume_carries_tag():
    volume = resource(id="v", metadata={"openstack_dr_bank_backup_id": "B1"})
    assert tags.carries_tag(volume, "openstack_dr_bank_backup_id", "B1")
    assert tags.carries_tag(volume, "openstack_dr_bank_backup_id")
    assert not tags.carries_tag(volume, "openstack_dr_bank_backup_id", "B2")
    assert not tags.carries_tag(resource(id="w"), "openstack_dr_bank_backup_id")
