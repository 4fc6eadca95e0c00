# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The restore flow over an in-memory bank and a stand-in cloud: what its stats count of the bank."""

from __future__ import annotations

import os
import types

import pytest

from ansible_collections.openstack_dr.bank.plugins.module_utils import _volume_restore
from ansible_collections.openstack_dr.bank.plugins.module_utils._bank.counting import REQUEST_KINDS
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.store import BackupStore
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.units import MIB
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack.tags import RESTORED_FROM_TAG

from ._engine.engine_helpers import backup
from ._openstack.fakes import FakeConnection, resource
from .flow_fakes import memory_bank_for
from .test_inputs import RESTORE

# Three chunks of data, one of zeros (never stored, never read), one of data again.
DATA = os.urandom(3 * MIB) + bytes(MIB) + os.urandom(MIB)
DATA_CHUNKS = 4


class FakeGlanceAndCinder:
    """What the restore asks of Glance and Cinder, done on a FakeConnection; the image's bytes are read in full."""

    def __init__(self, monkeypatch, conn: FakeConnection) -> None:
        self.conn = conn
        self.uploaded = 0
        monkeypatch.setattr(_volume_restore, "connect", lambda params: conn)
        monkeypatch.setattr(_volume_restore, "glance_disk_formats", lambda conn: ["raw", "qcow2"])
        self.store_type = None  # what Glance's stores detail says to this user
        monkeypatch.setattr(_volume_restore, "glance_default_store_type", lambda conn: self.store_type)
        monkeypatch.setattr(_volume_restore, "create_restore_image", self.create_restore_image)
        monkeypatch.setattr(_volume_restore, "upload_image_data", self.upload_image_data)
        monkeypatch.setattr(_volume_restore, "create_volume_from_image", self.create_volume_from_image)
        monkeypatch.setattr(_volume_restore.RestoreRun, "finish_volume", lambda run, volume: {})

    def create_restore_image(self, conn, temps, *, disk_format, min_disk):
        image = self.conn.image.add("image", resource(id="image-1", disk_format=disk_format, status="queued"))
        return image, temps.register_image(image.id, "restore image")

    def upload_image_data(self, conn, image, body, size, *, deadline):
        while True:
            piece = body.read(MIB)
            if not piece:
                break
            self.uploaded += len(piece)
        image.status = "active"
        return image

    def create_volume_from_image(self, conn, temps, image, *, name, size, deadline, **options):
        volume = self.conn.block_storage.add("volume", resource(id="volume-1", name=name, size=size))
        return volume, temps.register_volume(volume.id, name)


@pytest.fixture(name="cloud")
def cloud_fixture(monkeypatch):
    conn = FakeConnection()
    conn.block_storage.add("type", resource(id="type-1", name="nfs", is_default=True))
    return FakeGlanceAndCinder(monkeypatch, conn)


@pytest.fixture(name="store")
def store_fixture(monkeypatch):
    store = BackupStore(memory_bank_for(monkeypatch, _volume_restore))
    backup(store, "db-1", DATA, source={"volume": {"id": "id-db", "name": "db", "size": 1}})
    return store


@pytest.mark.parametrize("transfer_format", ["raw", "qcow2"])
def test_the_restore_counts_its_bank_requests_one_get_per_chunk_of_data(cloud, store, transfer_format):
    restore = types.SimpleNamespace(params=dict(RESTORE, transfer_format=transfer_format), check_mode=False)
    result = _volume_restore.run_volume_restore(restore)

    requests = result["stats"]["requests"]
    assert result["changed"] and result["volume"]["id"] == "volume-1" and cloud.uploaded > 0
    assert result["stats"]["glance"]["transfer_format"] == transfer_format
    assert set(requests) == set(REQUEST_KINDS)
    # Every chunk holding data is read once, plus the bank's configuration and the manifest; a restore writes nothing.
    assert DATA_CHUNKS < requests["get"] <= DATA_CHUNKS + 4
    assert requests["put"] == requests["delete"] == requests["lock"] == 0


def test_a_restore_with_nothing_to_do_reports_no_figures(cloud, store):
    cloud.conn.block_storage.add("volume", resource(id="earlier", name="db", metadata={
        RESTORED_FROM_TAG: store.backup_id_for("db-1")}))
    restore = types.SimpleNamespace(params=dict(RESTORE, transfer_format="raw"), check_mode=False)

    result = _volume_restore.run_volume_restore(restore)

    assert not result["changed"] and result["stats"] == {} and cloud.uploaded == 0


@pytest.mark.parametrize(("store_type", "uploaded_as"), [("rbd", "raw"), ("file", "qcow2"), (None, "qcow2")])
def test_auto_restores_raw_only_where_glance_keeps_images_in_rbd(cloud, store, store_type, uploaded_as):
    """4 of the backup's 5 MiB hold data: above the share from which a clone beats converting a qcow2."""
    cloud.store_type = store_type
    restore = types.SimpleNamespace(params=dict(RESTORE, transfer_format="auto"), check_mode=False)

    result = _volume_restore.run_volume_restore(restore)

    assert result["transfer_format"]["format"] == result["stats"]["glance"]["transfer_format"] == uploaded_as, result["transfer_format"]
    if store_type == "rbd":
        assert "copy-on-write clone" in result["transfer_format"]["reason"] and "80% of the volume" in result["transfer_format"]["reason"]
    # Check mode says the same, and creates nothing.
    checked = _volume_restore.run_volume_restore(types.SimpleNamespace(params=dict(RESTORE, transfer_format="auto", restore_name="other"),
                                                                       check_mode=True))
    assert checked["transfer_format"] == result["transfer_format"]


def test_a_requested_qcow2_is_kept_at_an_rbd_site(cloud, store):
    cloud.store_type = "rbd"
    result = _volume_restore.run_volume_restore(types.SimpleNamespace(params=dict(RESTORE, transfer_format="qcow2"), check_mode=False))
    assert result["transfer_format"] == {"format": "qcow2", "reason": "qcow2 as requested"}


def test_the_data_share_counts_the_clusters_that_may_hold_data(store):
    manifest = store.load_manifest("db-1")
    assert _volume_restore.data_share(manifest) == pytest.approx(0.8)
    empty = types.SimpleNamespace(size=0)
    assert _volume_restore.data_share(empty) == 0.0
