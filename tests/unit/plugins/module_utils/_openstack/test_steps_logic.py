# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure logic of the backup and restore steps: copy mode choice, manifest description, types, bodies."""

from __future__ import annotations

import io

import pytest
import requests
from openstack import exceptions as sdk_exceptions

from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import IntegrityError, InvalidInputError, OpenStackError
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack import backup_steps, connection, restore_steps, tags, transfer_format, volumes
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack.waiters import Deadline
from ansible_collections.openstack_dr.bank.tests.unit.plugins.module_utils._openstack.fakes import FakeConnection, resource


@pytest.mark.parametrize("status, asked, force, expected", [
    ("available", "auto", False, "direct"),
    ("in-use", "auto", True, "snapshot"),
    ("available", "snapshot", False, "snapshot"),
    ("available", "direct", False, "direct"),
])
def test_copy_mode_choice(status, asked, force, expected):
    assert backup_steps.choose_copy_mode(resource(id="v", status=status), asked, force) == expected


def test_direct_copy_of_an_attached_volume_is_refused():
    with pytest.raises(InvalidInputError, match="direct needs a detached"):
        backup_steps.choose_copy_mode(resource(id="v", status="in-use"), "direct", True)


def test_snapshot_of_an_attached_volume_needs_force():
    with pytest.raises(InvalidInputError, match="force"):
        backup_steps.choose_copy_mode(resource(id="v", status="in-use"), "auto", False)


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


def test_volume_carries_tag():
    volume = resource(id="v", metadata={"openstack_dr_bank_backup_id": "B1"})
    assert tags.carries_tag(volume, "openstack_dr_bank_backup_id", "B1")
    assert tags.carries_tag(volume, "openstack_dr_bank_backup_id")
    assert not tags.carries_tag(volume, "openstack_dr_bank_backup_id", "B2")
    assert not tags.carries_tag(resource(id="w"), "openstack_dr_bank_backup_id")


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


def test_argument_spec_matches_openstack_cloud_options():
    spec = connection.openstack_argument_spec()
    assert set(spec) == {
        "cloud", "auth", "auth_type", "region_name", "validate_certs", "ca_cert", "client_cert", "client_key",
        "interface", "api_timeout", "timeout", "sdk_log_path", "sdk_log_level",
    }
    assert spec["auth"]["no_log"] and spec["client_key"]["no_log"]
    assert spec["timeout"]["default"] >= 3600


def test_cloud_dict_with_separate_auth_is_refused():
    with pytest.raises(InvalidInputError, match="auth"):
        connection.connect({"cloud": {"auth": {}}, "auth": {"username": "x"}, "interface": "public"})


def test_data_step_timeout_grows_with_size():
    assert connection.data_step_timeout(3600, 1) == 3600
    assert connection.data_step_timeout(3600, 1024) == 1024 * 60


@pytest.mark.parametrize("timeout", [0, -5, None])
def test_a_timeout_that_is_not_positive_is_refused_by_name(timeout):
    with pytest.raises(InvalidInputError, match="timeout must be a positive number"):
        connection.data_step_timeout(timeout, 1)


def test_unknown_named_cloud_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(tmp_path / "clouds.yaml"))
    (tmp_path / "clouds.yaml").write_text("clouds: {}\n")
    with pytest.raises(OpenStackError, match="no-such-cloud"):
        connection.connect({"cloud": "no-such-cloud", "interface": "public"})


def test_doc_fragment_documents_the_argument_spec_exactly():
    import yaml  # pylint: disable=import-outside-toplevel
    from ansible_collections.openstack_dr.bank.plugins.doc_fragments.openstack import ModuleDocFragment  # pylint: disable=import-outside-toplevel

    documented = yaml.safe_load(ModuleDocFragment.DOCUMENTATION)["options"]
    spec = connection.openstack_argument_spec()
    assert set(documented) == set(spec)
    for name, option in spec.items():
        doc = documented[name]
        assert option.get("type", "str") == doc.get("type", "str"), name
        assert option.get("default") == doc.get("default"), name
        assert sorted(option.get("aliases", [])) == sorted(doc.get("aliases", [])), name
        assert sorted(option.get("choices", [])) == sorted(doc.get("choices", [])), name


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


def test_secrets_of_a_cloud_dict_are_found_for_masking():
    params = {"cloud": {"auth": {"username": "dr", "password": "s3cret", "application_credential_secret": "acs"},
                        "region_name": "RegionA"}}
    assert connection.openstack_secrets(params) == {"s3cret", "acs"}
    assert connection.openstack_secrets({"cloud": "site-a"}) == set()
