# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restore steps: volume types, image metadata, quota refusals, sized upload bodies."""

from __future__ import annotations

import io

import pytest
import requests
from openstack import exceptions as sdk_exceptions

from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import IntegrityError, InvalidInputError, OpenStackError
from ansible_collections.openstack_dr.bank.plugins.module_utils import _notices as notices
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack import restore_steps
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack.temporaries import Temporaries
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack.waiters import Deadline
from ansible_collections.openstack_dr.bank.tests.unit.plugins.module_utils._openstack.fakes import FakeConnection, resource


def _conn_with_types(*names, default=None):
    conn = FakeConnection()
    for name in names:
        conn.block_storage.add("type", resource(id=f"id-{name}", name=name, is_default=name == default))
    return conn


def test_requested_volume_type_wins():
    assert restore_steps.resolve_volume_type(_conn_with_types("a", "b"), "b", "a")[0] == "b"


def test_unknown_requested_volume_type_lists_available_ones():
    with pytest.raises(InvalidInputError, match="unknown volume_type nope; available: a, b"):
        restore_steps.resolve_volume_type(_conn_with_types("a", "b"), "nope", "a")


def test_source_type_used_when_it_exists_else_default_said():
    assert restore_steps.resolve_volume_type(_conn_with_types("a", "b"), None, "a")[0] == "a"
    name, reason = restore_steps.resolve_volume_type(_conn_with_types("b", default="b"), None, "a")
    assert name is None and "does not exist" in reason and "default volume type (b)" in reason


def test_restorable_image_metadata_skips_managed_keys_and_our_tags():
    kept = restore_steps.restorable_image_metadata({
        "hw_disk_bus": "scsi", "os_type": "linux", "checksum": "x", "size": "1", "image_id": "i", "image_name": "n",
        "os_glance_importing_to_stores": "", "openstack_dr_bank_run": "r", "min_disk": "1",
    })
    assert kept == {"hw_disk_bus": "scsi", "os_type": "linux"}


def test_restorable_image_metadata_drops_openstacksdk_checksums_of_the_seed_image():
    kept = restore_steps.restorable_image_metadata({
        "os_distro": "debian", "owner_specified.openstack.md5": "m", "owner_specified.openstack.sha256": "s",
        "owner_specified.openstack.object": "images/seed",
    })
    assert kept == {"os_distro": "debian"}


def test_quota_refusal_is_recognised():
    assert restore_steps._is_quota_error(sdk_exceptions.HttpException("Request Entity Too Large", http_status=413))
    assert restore_steps._is_quota_error(sdk_exceptions.HttpException("VolumeSizeExceedsAvailableQuota: Requested volume", http_status=400))
    assert not restore_steps._is_quota_error(sdk_exceptions.HttpException("bad request", http_status=400))


def test_image_body_has_a_content_length_and_is_not_chunked():
    body = restore_steps._SizedBody(io.BytesIO(b"x" * 10), 10, 4)
    prepared = requests.Request("PUT", "http://glance.invalid/v2/images/i/file", data=body).prepare()
    assert prepared.headers["Content-Length"] == "10"
    assert "Transfer-Encoding" not in prepared.headers
    assert b"".join(body) == b"x" * 10


class _FailingReader:
    def __init__(self) -> None:
        self.calls = 0

    def read(self, size: int) -> bytes:
        self.calls += 1
        if self.calls == 2:
            raise IntegrityError("chunk 1 tampered")
        return b"a" * size


class _ImageProxy:
    """Consumes the body the way requests would, wrapping errors as an HTTP library might."""

    def put(self, url, data, headers, connect_retries):
        assert headers["Content-Length"] == "8" and connect_retries == 0
        try:
            for _piece in data:
                pass
        except Exception as error:
            raise sdk_exceptions.SDKException(f"wrapped: {error}") from error
        raise AssertionError("the reader should have failed")


def test_reader_exception_propagates_as_is():
    conn = FakeConnection()
    conn.image = _ImageProxy()
    with pytest.raises(IntegrityError, match="chunk 1 tampered"):
        restore_steps.upload_image_data(conn, "img", _FailingReader(), 8, deadline=Deadline(60), piece_size=4)


def test_short_source_is_an_error():
    body = restore_steps._SizedBody(io.BytesIO(b"abc"), 10, 4)
    with pytest.raises(OpenStackError, match="ended after 3 of the 10"):
        list(body)


def test_longer_source_is_an_error():
    body = restore_steps._SizedBody(io.BytesIO(b"abcdef"), 4, 4)
    with pytest.raises(OpenStackError, match="more than the 4 bytes"):
        list(body)


def test_a_restore_image_kept_as_parent_is_marked_unregistered_and_announced():
    conn = FakeConnection()
    updates = []
    conn.image.update_image = lambda image_id, **properties: updates.append((image_id, properties))
    temps = Temporaries(conn, removal_timeout=60, backup="b", handle_sigterm=False)
    registration = temps.register_image("img-1", "dr-bank-tmp-b-image")
    notices.take()
    parent = restore_steps.keep_as_parent(conn, temps, registration, "vol-1")
    assert parent == {"id": "img-1", "parent_of": "vol-1"}
    assert updates == [("img-1", {"openstack_dr_bank_parent_of": "vol-1"})]
    assert temps.registered == [] and temps.cleanup() == {"removed": [], "left_behind": []}
    assert [notice for notice in notices.take() if "img-1 stays as the parent of volume vol-1" in notice]
