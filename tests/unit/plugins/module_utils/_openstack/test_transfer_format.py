# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Transfer format: what auto picks, when it falls back to raw, and why."""

from __future__ import annotations

import pytest
from openstack import exceptions as sdk_exceptions

from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import InvalidInputError, OpenStackError
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack import transfer_format
from ansible_collections.openstack_dr.bank.tests.unit.plugins.module_utils._openstack.fakes import FakeConnection


def _glance_accepting(*formats):
    conn = FakeConnection()

    class Schema:
        @staticmethod
        def json():
            return {"properties": {"disk_format": {"enum": list(formats)}}}

    conn.image.get = lambda url: Schema()
    return conn


def test_auto_picks_the_first_preferred_format_glance_accepts():
    accepted = transfer_format.glance_disk_formats(_glance_accepting("raw", "qcow2", "vmdk", "vdi"))
    chosen = transfer_format.choose_transfer_format("auto", ("vdi", "vmdk", "qcow2"), accepted)
    assert (chosen.disk_format, chosen.automatic) == ("vdi", True) and "fastest" in chosen.reason
    assert transfer_format.choose_transfer_format("auto", ("vdi", "qcow2"), ["raw", "qcow2"]).disk_format == "qcow2"


def test_auto_falls_back_to_raw_and_says_why():
    chosen = transfer_format.choose_transfer_format("auto", ("vdi", "qcow2"), ["raw"])
    assert chosen.disk_format == "raw" and "accepts none of vdi, qcow2" in chosen.reason
    refused = transfer_format.fallback_to_raw(transfer_format.TransferFormat("vdi", "x", True), OpenStackError("400 bad format"))
    assert refused.disk_format == "raw" and "refused vdi (400 bad format)" in refused.reason


def test_a_requested_format_glance_refuses_is_an_error_naming_its_formats():
    with pytest.raises(InvalidInputError, match="transfer_format vdi is not accepted by this Glance .*raw, qcow2"):
        transfer_format.choose_transfer_format("vdi", ("vdi", "qcow2"), ["raw", "qcow2"])
    assert transfer_format.choose_transfer_format("raw", ("vdi",), []).disk_format == "raw"
    assert transfer_format.choose_transfer_format("qcow2", ("vdi", "qcow2"), ["qcow2"]).reason == "qcow2 as requested"


def test_unpublished_glance_formats_mean_raw_only():
    conn = FakeConnection()

    def broken(url):
        raise sdk_exceptions.HttpException("no schema", http_status=404)

    conn.image.get = broken
    assert transfer_format.glance_disk_formats(conn) == []
    assert transfer_format.choose_transfer_format("auto", ("vdi",), []).disk_format == "raw"


class _Answer:
    def __init__(self, status_code, body):
        self.status_code = status_code
        self.body = body

    def json(self):
        return self.body


def _glance_stores(status_code, body):
    conn = FakeConnection()
    conn.image.get = lambda url: _Answer(status_code, body) if url == "/info/stores/detail" else _Answer(404, {})
    return conn


@pytest.mark.parametrize(("status_code", "body", "store_type"), [
    (200, {"stores": [{"id": "local", "type": "file"}, {"id": "ceph", "type": "rbd", "default": True}]}, "rbd"),
    (200, {"stores": [{"id": "ceph", "type": "rbd", "default": "false"}, {"id": "local", "type": "file", "default": "true"}]}, "file"),
    (200, {"stores": [{"id": "ceph", "type": "rbd"}]}, "rbd"),  # a single store need not be flagged
    (200, {"stores": [{"id": "ceph", "type": "rbd"}, {"id": "local", "type": "file"}]}, None),  # several, none flagged
    (200, {"stores": []}, None),
    (200, ["not", "a", "mapping"], None),
    (403, {"error": "admins only"}, None),
    (404, {}, None),
])
def test_the_default_store_type_is_read_from_glance_or_unknown(status_code, body, store_type):
    assert transfer_format.glance_default_store_type(_glance_stores(status_code, body)) == store_type


def test_a_glance_that_fails_the_stores_call_means_unknown():
    conn = FakeConnection()

    def broken(url):
        raise sdk_exceptions.HttpException("down", http_status=503)

    conn.image.get = broken
    assert transfer_format.glance_default_store_type(conn) is None


AUTO_QCOW2 = transfer_format.TransferFormat("qcow2", "auto: qcow2, the fastest sparse format this Glance accepts", automatic=True)


def test_auto_takes_raw_where_cinder_clones_and_the_data_is_a_large_share():
    chosen = transfer_format.prefer_raw_where_cinder_clones(AUTO_QCOW2, "rbd", 0.5)
    assert (chosen.disk_format, chosen.automatic) == ("raw", True)
    assert "copy-on-write clone" in chosen.reason and "50% of the volume" in chosen.reason and "parent" in chosen.reason
    at_threshold = transfer_format.prefer_raw_where_cinder_clones(AUTO_QCOW2, "rbd", transfer_format.RAW_CLONE_MIN_DATA_SHARE)
    assert at_threshold.disk_format == "raw"


@pytest.mark.parametrize(("store_type", "share", "said"), [
    ("rbd", 0.06, "the data is only 6% of the volume"),
    ("file", 0.9, "its file store, where no clone is made"),
    (None, 0.9, "not visible to this user"),
])
def test_auto_keeps_qcow2_elsewhere_and_says_why(store_type, share, said):
    chosen = transfer_format.prefer_raw_where_cinder_clones(AUTO_QCOW2, store_type, share)
    assert chosen.disk_format == "qcow2" and chosen.reason.startswith(AUTO_QCOW2.reason) and said in chosen.reason, chosen.reason


def test_a_format_the_user_asked_for_is_never_changed():
    asked = transfer_format.TransferFormat("qcow2", "qcow2 as requested")
    assert transfer_format.prefer_raw_where_cinder_clones(asked, "rbd", 1.0) is asked
    raw = transfer_format.TransferFormat("raw", "auto: raw, since this Glance accepts none of qcow2", automatic=True)
    assert transfer_format.prefer_raw_where_cinder_clones(raw, "rbd", 1.0) is raw
