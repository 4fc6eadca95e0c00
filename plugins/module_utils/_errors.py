# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one exception hierarchy of the collection.

Everything below module level raises one of these; each module's ``main()``
turns a ``DrBankError`` into ``fail_json`` in exactly one place.
"""

from __future__ import annotations


class DrBankError(Exception):
    """Base of every error this collection raises on purpose."""

    def __init__(self, message: str, **details) -> None:
        super().__init__(message)
        self.message = message
        # Extra facts for the failure result (ids left behind, bank, key...).
        self.details = details

    def __str__(self) -> str:
        return self.message


class InvalidInputError(DrBankError):
    """An option or argument is wrong; nothing was changed."""


class BankError(DrBankError):
    """A bank operation failed (after retries where the cause was transient)."""


class BankMissingError(BankError):
    """The bank's directory, bucket or container does not exist (and was not created)."""

    CREATE_ADVICE = "set create: true to create it"

    def __init__(self, bank: str, what: str, advice: str | None = None) -> None:
        super().__init__(f"{bank}: the {what} does not exist ({advice or self.CREATE_ADVICE})", bank=bank)
        self.bank_description = bank
        self.what = what


class BankObjectNotFoundError(BankError):
    """The object asked for does not exist in the bank."""


class BankBusyError(BankError):
    """Another run holds a lock that this operation must wait for."""


class IntegrityError(DrBankError):
    """Stored data does not match what the manifest promises (tampered, missing, truncated)."""


class ManifestError(IntegrityError):
    """A manifest is missing, truncated, unreadable or of an unknown format."""


class EncryptionError(DrBankError):
    """Encryption settings are inconsistent with the bank, or the passphrase is wrong."""


class OpenStackError(DrBankError):
    """A Cinder, Glance or Keystone call failed."""


class ImageInUseError(OpenStackError):
    """Glance refuses to delete an image its backend store still uses (a volume cloned from it on Ceph)."""


class DeadlineExceededError(OpenStackError):
    """A waited step did not finish before its deadline."""


class ImageFormatError(IntegrityError):
    """An image file is malformed, or uses a feature this collection does not read (backing file, encryption...)."""


class ReportWriteError(DrBankError):
    """A drill report file could not be read or written."""
