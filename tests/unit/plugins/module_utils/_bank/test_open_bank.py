# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""open_bank's validation of the ``bank`` option and its choice of backend, without any server."""

from __future__ import annotations

import pytest

from ansible_collections.openstack_dr.bank.plugins.module_utils._bank import open_bank, retry_policy
from ansible_collections.openstack_dr.bank.plugins.module_utils._bank import s3 as s3_bank
from ansible_collections.openstack_dr.bank.plugins.module_utils._bank import swift as swift_bank
from ansible_collections.openstack_dr.bank.plugins.module_utils._bank.file import FileBank
from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import InvalidInputError


@pytest.mark.parametrize("config, message", [
    ("file", "must be a dict"),
    ({"type": "ftp"}, "must be one of file, s3, swift"),
    ({"type": "file", "path": "/x", "bucket": "b"}, "does not take bucket"),
    ({"type": "s3", "bucket": "b", "container": "c"}, "does not take container"),
    ({"type": "swift", "container": "c", "cloud": "x", "region": "r", "path": "/p"}, "does not take path, region$"),
    ({"type": "file"}, "needs O\\(bank.path\\)"),
    ({"type": "s3"}, "needs O\\(bank.bucket\\)"),
    ({"type": "swift", "cloud": "c"}, "needs O\\(bank.container\\)"),
    ({"type": "swift", "container": "c"}, "needs O\\(bank.cloud\\)"),
    ({"type": "s3", "bucket": "b", "max_attempts": 0}, "max_attempts\\) must be at least 1"),
    ({"type": "s3", "bucket": "b", "connect_timeout": "soon"}, "must be a number"),
    ({"type": "s3", "bucket": "b", "read_timeout": 0}, "read_timeout\\) must be at least 0.001"),
    ({"type": "s3", "bucket": "b", "max_total_time": -1}, "max_total_time\\) must be at least 0"),
    ({"type": "file", "path": "/x", "max_attempts": 0}, "max_attempts\\) must be at least 1"),
    ({"type": "s3", "bucket": "b", "checksum_calculation": "always"}, "when_supported or when_required"),
])
def test_bad_configs_are_invalid_input(config: object, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        open_bank(config)  # type: ignore[arg-type]


def test_unset_keys_of_other_types_are_ignored(tmp_path) -> None:
    config = {"type": "file", "path": str(tmp_path), "bucket": None, "cloud": None, "create": False, "prefix": ""}
    assert open_bank(config).description == f"file bank {tmp_path}"


def test_a_file_bank_takes_and_ignores_the_network_settings(tmp_path) -> None:
    config = {"type": "file", "path": str(tmp_path), "prefix": "dr", "create": True, "connect_timeout": 3, "read_timeout": 9,
              "max_attempts": 2, "max_total_time": 10}
    bank = open_bank(config)
    assert isinstance(bank, FileBank) and bank.root == str(tmp_path / "dr")


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
