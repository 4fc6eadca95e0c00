# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""open_bank's validation of the ``bank`` option and the shared argument spec, without any server."""

from __future__ import annotations

import pytest
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.openstack_dr.bank.plugins.module_utils._bank import open_bank, retry_policy
from ansible_collections.openstack_dr.bank.plugins.module_utils._bank import s3 as s3_bank
from ansible_collections.openstack_dr.bank.plugins.module_utils._bank import swift as swift_bank
from ansible_collections.openstack_dr.bank.plugins.module_utils._bank.options import bank_argument_spec, bank_no_log_values
from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import InvalidInputError


@pytest.mark.parametrize("config, message", [
    ("file", "must be a dict"),
    ({"type": "ftp"}, "must be one of file, s3, swift"),
    ({"type": "file", "path": "/x", "bucket": "b"}, "does not take bucket"),
    ({"type": "s3", "bucket": "b", "container": "c"}, "does not take container"),
    ({"type": "file"}, "needs O\\(bank.path\\)"),
    ({"type": "s3"}, "needs O\\(bank.bucket\\)"),
    ({"type": "swift", "cloud": "c"}, "needs O\\(bank.container\\)"),
    ({"type": "swift", "container": "c"}, "needs O\\(bank.cloud\\)"),
    ({"type": "s3", "bucket": "b", "max_attempts": 0}, "max_attempts\\) must be at least 1"),
    ({"type": "s3", "bucket": "b", "connect_timeout": "soon"}, "must be a number"),
    ({"type": "s3", "bucket": "b", "checksum_calculation": "always"}, "when_supported or when_required"),
])
def test_bad_configs_are_invalid_input(config: object, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        open_bank(config)  # type: ignore[arg-type]


def test_unset_keys_of_other_types_are_ignored(tmp_path) -> None:
    config = {"type": "file", "path": str(tmp_path), "bucket": None, "cloud": None, "create": False, "prefix": ""}
    assert open_bank(config).description == f"file bank {tmp_path}"


def test_missing_library_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(s3_bank, "HAS_BOTO3", False)
    with pytest.raises(InvalidInputError, match="boto3"):
        open_bank({"type": "s3", "bucket": "b"})
    monkeypatch.setattr(swift_bank, "HAS_OPENSTACKSDK", False)
    with pytest.raises(InvalidInputError, match="openstacksdk"):
        open_bank({"type": "swift", "container": "c", "cloud": "x"})


def test_retry_bounds_come_from_the_config() -> None:
    retry = retry_policy({"max_attempts": 2, "max_total_time": 7})
    assert (retry.max_attempts, retry.max_total) == (2, 7.0)
    assert retry_policy({}).max_attempts == 5


def test_argument_spec_validates_a_typical_bank() -> None:
    spec = bank_argument_spec()
    result = ArgumentSpecValidator(spec).validate({
        "bank": {"type": "s3", "bucket": "b", "secret_key": "s3cr3t", "session_token": "t0k3n"},
        "encryption_passphrase": "pass phrase",
    })
    assert not result.error_messages
    assert result.validated_parameters["bank"]["create"] is False
    assert {"s3cr3t", "t0k3n", "pass phrase"} <= result._no_log_values  # pylint: disable=protected-access


def test_argument_spec_takes_cloud_as_name_or_dict() -> None:
    spec = bank_argument_spec(with_passphrase=False)
    for cloud in ("mycloud", {"auth_type": "v1password", "auth": {"auth_url": "http://x/auth/v1.0"}}):
        result = ArgumentSpecValidator(spec).validate({"bank": {"type": "swift", "container": "c", "cloud": cloud}})
        assert not result.error_messages
        assert result.validated_parameters["bank"]["cloud"] == cloud


def test_secrets_inside_cloud_are_found_for_no_log() -> None:
    bank = {"type": "swift", "cloud": {
        "auth_type": "password", "region_name": "RegionOne",
        "auth": {"auth_url": "https://k", "username": "u", "password": "pw1", "project_name": "p"},
        "application_credential_secret": "acs", "token": "tk", "verify": True,
    }}
    assert bank_no_log_values(bank) == {"pw1", "acs", "tk"}
    assert not bank_no_log_values({"type": "swift", "cloud": "mycloud"})
    assert not bank_no_log_values(None)


def test_swift_description_never_shows_credentials() -> None:
    location = swift_bank._public_location({"auth": {"auth_url": "http://user:pw@keystone:5000/v3", "password": "pw"}})  # pylint: disable=protected-access
    assert location == "http://keystone:5000/v3"
    assert swift_bank._public_location("prod") == "cloud prod"  # pylint: disable=protected-access
