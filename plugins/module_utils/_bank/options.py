# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The argument spec of the ``bank`` option, shared by every module (documented in doc_fragments/bank.py)."""

from __future__ import annotations

import copy
import typing as t

# Type-specific options carry no default here so open_bank can tell "set for another type" from "unset".
# Nor any environment fallback: the S3 backend reads AWS_* itself (boto3's own rules), so a file or
# swift bank is not handed S3 settings from the environment.
BANK_OPTION_SPEC: dict[str, t.Any] = dict(
    type=dict(type="str", required=True, choices=["file", "s3", "swift"]),
    create=dict(type="bool", default=False),
    prefix=dict(type="str", default=""),
    connect_timeout=dict(type="float"),
    read_timeout=dict(type="float"),
    max_attempts=dict(type="int"),
    max_total_time=dict(type="float"),
    # file
    path=dict(type="path"),
    # s3
    bucket=dict(type="str"),
    endpoint_url=dict(type="str"),
    region=dict(type="str"),
    access_key=dict(type="str", no_log=False),
    secret_key=dict(type="str", no_log=True),
    session_token=dict(type="str", no_log=True),
    profile=dict(type="str"),
    validate_certs=dict(type="bool"),
    ca_bundle=dict(type="path"),
    checksum_calculation=dict(type="str", choices=["when_supported", "when_required"]),
    # swift
    container=dict(type="str"),
    # A str (clouds.yaml name) or a dict (connection settings): no_log would mask every value of the dict
    # (region, user and domain names) throughout the output, so only its secrets are masked, by bank_no_log_values().
    cloud=dict(type="raw", no_log=False),
    region_name=dict(type="str"),
)

ENCRYPTION_PASSPHRASE_SPEC: dict[str, t.Any] = dict(type="str", no_log=True)

# Names whose values inside O(bank.cloud) are secrets (clouds.yaml auth and the like).
_SECRET_NAME_PARTS = ("password", "secret", "token", "passcode", "private_key")


def bank_argument_spec(required: bool = True, with_passphrase: bool = True) -> dict[str, t.Any]:
    """Argument spec entries for ``bank`` (and ``encryption_passphrase``) to merge into a module's spec."""
    spec: dict[str, t.Any] = dict(
        bank=dict(type="dict", required=required, options=copy.deepcopy(BANK_OPTION_SPEC)),
    )
    if with_passphrase:
        spec["encryption_passphrase"] = copy.deepcopy(ENCRYPTION_PASSPHRASE_SPEC)
    return spec


def bank_no_log_values(bank: dict | None) -> set[str]:
    """The secret strings inside ``bank.cloud`` (passwords, tokens...), to add to ``module.no_log_values``.

    Call right after building the module: ``module.no_log_values.update(bank_no_log_values(module.params['bank']))``.
    """
    found: set[str] = set()

    def walk(value: t.Any, secret: bool) -> None:
        if isinstance(value, dict):
            for name, item in value.items():
                walk(item, secret or any(part in str(name).lower() for part in _SECRET_NAME_PARTS))
        elif isinstance(value, (list, tuple)):
            for item in value:
                walk(item, secret)
        elif secret and value not in (None, "") and not isinstance(value, bool):
            found.add(str(value))

    if isinstance(bank, dict):
        walk(bank.get("cloud"), False)
    return found
