# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Banks: where backups live. ``open_bank(config)`` turns the ``bank`` option into a ``Bank``."""

from __future__ import annotations

from ansible_collections.openstack_dr.bank.plugins.module_utils._bank.base import Bank, BankObject
from ansible_collections.openstack_dr.bank.plugins.module_utils._bank.options import BANK_TYPES, backend_arguments, retry_policy
from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import BankMissingError, InvalidInputError

__all__ = ["Bank", "BankObject", "open_bank", "retry_policy", "BANK_TYPES"]


def _backend_class(kind: str) -> type[Bank]:
    # Imported on demand so a file bank needs neither boto3 nor openstacksdk (each backend says which it misses).
    if kind == "file":
        from ansible_collections.openstack_dr.bank.plugins.module_utils._bank.file import FileBank

        return FileBank
    if kind == "s3":
        from ansible_collections.openstack_dr.bank.plugins.module_utils._bank.s3 import S3Bank

        return S3Bank
    from ansible_collections.openstack_dr.bank.plugins.module_utils._bank.swift import SwiftBank

    return SwiftBank


def open_bank(config: dict, read_only: bool = False) -> Bank:
    """Open (and with ``create: true`` create) the bank described by the ``bank`` option.

    Keys set to ``None`` are ignored, so the dict Ansible builds from the argument
    spec can be passed as it is. The bucket or container is checked (one request),
    so wrong credentials and unreachable endpoints fail here with a ``BankError``.
    ``read_only`` (modules that only read a bank) never creates one, whatever ``create`` says.
    """
    if not isinstance(config, dict):
        raise InvalidInputError(f"O(bank) must be a dict, got a {type(config).__name__}")
    kind = config.get("type")
    if kind not in BANK_TYPES:
        raise InvalidInputError(f"O(bank.type) must be one of {', '.join(BANK_TYPES)}, got {kind!r}")
    arguments = backend_arguments(kind, dict(config, create=False) if read_only else config)
    try:
        return _backend_class(kind)(**arguments)
    except BankMissingError as missing:
        if not read_only:
            raise
        advice = f"this module only reads a bank and never creates one, whatever create says: check the {missing.what} and the prefix"
        raise BankMissingError(missing.bank_description, missing.what, advice) from None
