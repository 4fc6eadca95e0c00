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
