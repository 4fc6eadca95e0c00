# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The table of ``bank`` suboptions and what is derived from it: argument spec, checks, constructors, docs."""

from __future__ import annotations

import inspect
import re

import pytest
import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.openstack_dr.bank.plugins.doc_fragments._bank import ModuleDocFragment
from ansible_collections.openstack_dr.bank.plugins.module_utils._bank import options
from ansible_collections.openstack_dr.bank.plugins.module_utils._bank.file import FileBank
from ansible_collections.openstack_dr.bank.plugins.module_utils._bank.options import (
    BANK_OPTIONS,
    BANK_TYPES,
    OPTIONS_BY_NAME,
    backend_arguments,
    bank_argument_spec,
    bank_secrets,
)
from ansible_collections.openstack_dr.bank.plugins.module_utils._bank.retry import RetryPolicy
from ansible_collections.openstack_dr.bank.plugins.module_utils._bank.s3 import S3Bank
from ansible_collections.openstack_dr.bank.plugins.module_utils._bank.swift import SwiftBank
from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import InvalidInputError

DOCUMENTED = yaml.safe_load(ModuleDocFragment.DOCUMENTATION)["options"]
DOCUMENTED_BANK = DOCUMENTED["bank"]["suboptions"]
BACKENDS = {"file": FileBank, "s3": S3Bank, "swift": SwiftBank}


def validate(bank: dict) -> ArgumentSpecValidator:
    return ArgumentSpecValidator(bank_argument_spec(with_passphrase=False)).validate({"bank": bank})


def test_the_table_is_sorted_and_names_are_unique() -> None:
    names = [option.name for option in BANK_OPTIONS]
    assert names == sorted(set(names))


def test_the_doc_fragment_documents_exactly_the_table() -> None:
    assert list(DOCUMENTED_BANK) == [option.name for option in BANK_OPTIONS]


@pytest.mark.parametrize("option", BANK_OPTIONS, ids=lambda option: option.name)
def test_the_doc_fragment_agrees_with_the_table(option: options.BankOption) -> None:
    doc = DOCUMENTED_BANK[option.name]
    assert doc["type"] == option.type
    assert doc.get("default") == option.default
    assert doc.get("choices") == (list(option.choices) if option.choices else None)
    assert doc.get("required", False) == (option.required_for == BANK_TYPES)
    assert doc["description"][0] == option.description
    text = " ".join(doc["description"])
    assert sorted(re.findall(r"E\(([A-Z0-9_]+)\)", text)) == sorted(option.env)
    if option.no_log:
        assert "Never shown" in text
    if option.required_for and option.required_for != BANK_TYPES:
        assert "Required for that type." in option.description


def test_the_doc_fragment_documents_the_passphrase_as_spec() -> None:
    doc = DOCUMENTED["encryption_passphrase"]
    assert doc["type"] == options.ENCRYPTION_PASSPHRASE_SPEC["type"]
    assert "Never shown" in " ".join(doc["description"])
    assert DOCUMENTED["bank"]["type"] == "dict" and DOCUMENTED["bank"]["required"] is True


@pytest.mark.parametrize("kind", BANK_TYPES)
def test_each_backend_constructor_takes_its_table_rows(kind: str) -> None:
    parameters = inspect.signature(BACKENDS[kind]).parameters
    expected = {"retry" if option.argument == "retry" else option.name
                for option in BANK_OPTIONS if kind in option.backends and option.argument is not None}
    assert expected <= set(parameters)
    unset = {"type": kind, "path": "/p", "bucket": "b", "container": "c", "cloud": "x"}
    arguments = backend_arguments(kind, {k: v for k, v in unset.items() if k == "type" or k in options.accepted_options(kind)})
    assert set(arguments) == expected


def test_every_secret_is_no_log_and_every_key_like_name_says_so() -> None:
    secrets = {option.name for option in BANK_OPTIONS if option.no_log}
    assert secrets == {"secret_key", "session_token"}
    assert OPTIONS_BY_NAME["access_key"].no_log is False and OPTIONS_BY_NAME["cloud"].no_log is False


def test_argument_spec_validates_a_typical_bank() -> None:
    spec = bank_argument_spec()
    result = ArgumentSpecValidator(spec).validate({
        "bank": {"type": "s3", "bucket": "b", "secret_key": "s3cr3t", "session_token": "t0k3n"},
        "encryption_passphrase": "pass phrase",
    })
    assert not result.error_messages
    assert result.validated_parameters["bank"]["create"] is False
    assert result.validated_parameters["bank"]["max_attempts"] == 5
    assert {"s3cr3t", "t0k3n", "pass phrase"} <= result._no_log_values  # pylint: disable=protected-access


def test_argument_spec_takes_cloud_as_name_or_dict() -> None:
    for cloud in ("mycloud", {"auth_type": "v1password", "auth": {"auth_url": "http://x/auth/v1.0"}}):
        result = validate({"type": "swift", "container": "c", "cloud": cloud})
        assert not result.error_messages
        assert result.validated_parameters["bank"]["cloud"] == cloud


@pytest.mark.parametrize("bank, missing", [
    ({"type": "file"}, "path"), ({"type": "s3"}, "bucket"), ({"type": "swift", "cloud": "c"}, "container"),
    ({"type": "swift", "container": "c"}, "cloud"), ({"type": "swift"}, "cloud, container"),
])
def test_argument_spec_requires_each_type_s_options(bank: dict, missing: str) -> None:
    messages = validate(bank).error_messages
    assert messages == [f"type is {bank['type']} but all of the following are missing: {missing} found in bank"]


@pytest.mark.parametrize("bank", [{"type": "ftp", "path": "/x"}, {"type": "s3", "bucket": "b", "checksum_calculation": "always"}])
def test_argument_spec_declares_the_choices(bank: dict) -> None:
    assert any("must be one of" in message for message in validate(bank).error_messages)


def test_backend_arguments_fold_the_retry_bounds_into_one_policy() -> None:
    arguments = backend_arguments("swift", {"type": "swift", "container": "c", "cloud": "x", "max_attempts": 2, "max_total_time": 9})
    assert isinstance(arguments["retry"], RetryPolicy)
    assert (arguments["retry"].max_attempts, arguments["retry"].max_total) == (2, 9.0)
    assert "max_attempts" not in arguments and "type" not in arguments


def test_backend_arguments_refuse_another_type_s_options() -> None:
    with pytest.raises(InvalidInputError, match="of type s3 does not take cloud, path"):
        backend_arguments("s3", {"type": "s3", "bucket": "b", "path": "/x", "cloud": "c"})


def test_secrets_inside_cloud_are_found_for_no_log() -> None:
    bank = {"type": "swift", "cloud": {
        "auth_type": "password", "region_name": "RegionOne",
        "auth": {"auth_url": "https://k", "username": "u", "password": "pw1", "project_name": "p"},
        "application_credential_secret": "acs", "token": "tk", "verify": True,
    }}
    assert bank_secrets({"bank": bank}) == {"pw1", "acs", "tk"}
    assert not bank_secrets({"bank": {"type": "swift", "cloud": "mycloud"}})
    assert not bank_secrets({"bank": None})
    assert not bank_secrets({})
