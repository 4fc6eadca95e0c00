# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Banks: where backups live. ``open_bank(config)`` turns the ``bank`` option into a ``Bank``."""

from __future__ import annotations

import typing as t

from ansible_collections.openstack_dr.bank.plugins.module_utils._bank.base import Bank, BankObject
from ansible_collections.openstack_dr.bank.plugins.module_utils._bank._retry import DEFAULT_MAX_ATTEMPTS, DEFAULT_MAX_TOTAL_SECONDS, RetryPolicy
from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import InvalidInputError

__all__ = ["Bank", "BankObject", "open_bank", "BANK_TYPES"]

BANK_TYPES = ("file", "s3", "swift")
_COMMON = ("type", "create", "prefix", "connect_timeout", "read_timeout", "max_attempts", "max_total_time")
_KEYS = {
    "file": ("path",),
    "s3": (
        "bucket", "endpoint_url", "region", "access_key", "secret_key", "session_token", "profile",
        "validate_certs", "ca_bundle", "checksum_calculation",
    ),
    "swift": ("container", "cloud", "region_name"),
}


def _number(config: dict, name: str, kind: type, minimum: float) -> t.Any:
    value = config.get(name)
    if value is None:
        return None
    try:
        value = kind(value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"O(bank.{name}) must be a number, got {value!r}") from None
    if value < minimum:
        raise InvalidInputError(f"O(bank.{name}) must be at least {minimum}, got {value!r}")
    return value


def retry_policy(config: dict) -> RetryPolicy:
    """The retry bounds a ``bank`` config asks for (``max_attempts``, ``max_total_time``)."""
    attempts = _number(config, "max_attempts", int, 1)
    total = _number(config, "max_total_time", float, 0)
    return RetryPolicy(
        max_attempts=DEFAULT_MAX_ATTEMPTS if attempts is None else attempts,
        max_total=DEFAULT_MAX_TOTAL_SECONDS if total is None else total,
    )


def open_bank(config: dict) -> Bank:
    """Open (and with ``create: true`` create) the bank described by the ``bank`` option.

    Keys set to ``None`` are ignored, so the dict Ansible builds from the argument
    spec can be passed as it is. The bucket or container is checked (one request),
    so wrong credentials and unreachable endpoints fail here with a ``BankError``.
    """
    if not isinstance(config, dict):
        raise InvalidInputError("O(bank) must be a dict")
    kind = config.get("type")
    if kind not in BANK_TYPES:
        raise InvalidInputError(f"O(bank.type) must be one of {', '.join(BANK_TYPES)}, got {kind!r}")
    given = {k for k, v in config.items() if v is not None}
    unknown = sorted(given - set(_COMMON) - set(_KEYS[kind]))
    if unknown:
        raise InvalidInputError(f"O(bank) of type {kind} does not take {', '.join(unknown)}")
    create = bool(config.get("create"))
    connect_timeout = _number(config, "connect_timeout", float, 0.001)
    read_timeout = _number(config, "read_timeout", float, 0.001)
    retry = retry_policy(config)

    if kind == "file":
        from ansible_collections.openstack_dr.bank.plugins.module_utils._bank.file import FileBank

        return FileBank(config.get("path") or "", create=create, prefix=config.get("prefix") or "")

    if kind == "s3":
        from ansible_collections.openstack_dr.bank.plugins.module_utils._bank import s3

        if not s3.HAS_BOTO3:
            raise InvalidInputError(f"The s3 bank needs the Python library boto3 (pip install boto3): {s3.BOTO3_IMPORT_ERROR}")
        return s3.S3Bank(
            bucket=config.get("bucket") or "",
            prefix=config.get("prefix") or "",
            endpoint_url=config.get("endpoint_url"),
            region=config.get("region"),
            access_key=config.get("access_key"),
            secret_key=config.get("secret_key"),
            session_token=config.get("session_token"),
            profile=config.get("profile"),
            validate_certs=config.get("validate_certs") is not False,
            ca_bundle=config.get("ca_bundle"),
            checksum_calculation=config.get("checksum_calculation") or "when_supported",
            create=create,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retry=retry,
        )

    from ansible_collections.openstack_dr.bank.plugins.module_utils._bank import swift

    if not swift.HAS_OPENSTACKSDK:
        raise InvalidInputError(f"The swift bank needs the Python library openstacksdk (pip install openstacksdk): {swift.OPENSTACKSDK_IMPORT_ERROR}")
    return swift.SwiftBank(
        container=config.get("container") or "",
        cloud=config.get("cloud"),
        prefix=config.get("prefix") or "",
        region_name=config.get("region_name"),
        create=create,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        retry=retry,
    )
