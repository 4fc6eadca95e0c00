# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The bank's configuration object (``bank.json``) and the encryption keys it holds.

Encryption is bank-wide: ``bank.json`` holds the scrypt parameters and the data
key wrapped (AES-256-GCM) under the key derived from the passphrase. One
passphrase therefore opens every backup, and identical chunks deduplicate
across backups. The passphrase and the keys never reach the bank in clear.
"""

from __future__ import annotations

import base64
import hashlib
import os

from ansible_collections.openstack_dr.bank.plugins.module_utils._bank.base import Bank
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine import codec
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.documents import DocumentFormat, utc_now
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.layout import BANK_CONFIG_KEY
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.locks import EXCLUSIVE, BankLock
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.units import MIB
from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import (
    BankObjectNotFoundError,
    EncryptionError,
    ManifestError,
)

BANK_CONFIG_FORMAT = DocumentFormat("openstack_dr.bank/bank", 1, "bank configuration")
_SCRYPT_PARAMETERS = {"n": 2 ** 15, "r": 8, "p": 1}
_KEY_WRAP_CONTEXT = b"openstack_dr.bank key wrap v1"


class BankKeys:
    """What chunk processing needs from the bank configuration."""

    def __init__(self, encryption_key: bytes | None = None, identity_key: bytes | None = None) -> None:
        self.encryption_key = encryption_key
        self.identity_key = identity_key

    @property
    def encrypted(self) -> bool:
        return self.encryption_key is not None


def _derive_wrapping_key(passphrase: str, salt: bytes, parameters: dict) -> bytes:
    return hashlib.scrypt(passphrase.encode("utf-8"), salt=salt, n=parameters["n"], r=parameters["r"],
                          p=parameters["p"], maxmem=256 * MIB, dklen=32)


def _new_bank_config(passphrase: str | None) -> tuple[dict, BankKeys]:
    config = {
        **BANK_CONFIG_FORMAT.stamp(),
        "created_at": utc_now(),
        "chunk_id": "sha256",
        "encryption": None,
    }
    if passphrase is None:
        return config, BankKeys()
    codec.require_cryptography()
    data_key = os.urandom(64)
    salt = os.urandom(16)
    nonce = os.urandom(12)
    wrapping_key = _derive_wrapping_key(passphrase, salt, _SCRYPT_PARAMETERS)
    wrapped = codec.aead.AESGCM(wrapping_key).encrypt(nonce, data_key, _KEY_WRAP_CONTEXT)
    config["chunk_id"] = "hmac-sha256"
    config["encryption"] = {
        "cipher": "aes-256-gcm",
        "kdf": dict(_SCRYPT_PARAMETERS, name="scrypt", salt=base64.b64encode(salt).decode("ascii")),
        "key_wrap": {
            "cipher": "aes-256-gcm",
            "nonce": base64.b64encode(nonce).decode("ascii"),
            "wrapped_key": base64.b64encode(wrapped).decode("ascii"),
        },
    }
    return config, BankKeys(data_key[:32], data_key[32:])


def _keys_from_config(config: dict, passphrase: str | None, where: str) -> BankKeys:
    encryption = config.get("encryption")
    if not encryption:
        if passphrase is not None:
            raise EncryptionError(
                f"The bank {where} is not encrypted, but encryption_passphrase was given. "
                "A bank is either encrypted or not: use another bank or leave encryption_passphrase out.")
        return BankKeys()
    if passphrase is None:
        raise EncryptionError(f"The bank {where} is encrypted: the option encryption_passphrase is required")
    codec.require_cryptography()
    try:
        kdf = encryption["kdf"]
        wrap = encryption["key_wrap"]
        wrapping_key = _derive_wrapping_key(passphrase, base64.b64decode(kdf["salt"]), kdf)
        data_key = codec.aead.AESGCM(wrapping_key).decrypt(
            base64.b64decode(wrap["nonce"]), base64.b64decode(wrap["wrapped_key"]), _KEY_WRAP_CONTEXT)
    except codec.cryptography_exceptions.InvalidTag:
        raise EncryptionError(f"Wrong encryption passphrase for the bank {where}") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise ManifestError(f"The encryption settings in {where}/{BANK_CONFIG_KEY} are invalid: {exc}") from exc
    return BankKeys(data_key[:32], data_key[32:])


def read_bank_keys(bank: Bank, passphrase: str | None) -> BankKeys | None:
    """Open an existing bank; ``None`` when the bank holds no configuration yet."""
    try:
        data = bank.get(BANK_CONFIG_KEY)
    except BankObjectNotFoundError:
        return None
    config = BANK_CONFIG_FORMAT.load(data, f"{bank.description}/{BANK_CONFIG_KEY}")
    return _keys_from_config(config, passphrase, bank.description)


def open_or_initialise_bank(bank: Bank, passphrase: str | None, lock_wait_timeout: float = 300.0) -> BankKeys:
    """Open the bank, writing its configuration first when it has none.

    The first backups into an empty bank often start together (a role backing up several volumes
    at once). Each would write its own keys, and a run that read back its own keys before another
    overwrote them would store chunks under keys the bank no longer holds. So the configuration is
    written under the exclusive bank lock, and only when it is still missing once the lock is held.
    """
    keys = read_bank_keys(bank, passphrase)
    if keys is not None:
        return keys
    with BankLock(bank, EXCLUSIVE, "initialise the bank", wait_timeout=lock_wait_timeout):
        keys = read_bank_keys(bank, passphrase)
        if keys is not None:
            return keys  # another run initialised it while we waited for the lock
        config, dummy = _new_bank_config(passphrase)
        bank.put(BANK_CONFIG_KEY, BANK_CONFIG_FORMAT.dumps(config))
        keys = read_bank_keys(bank, passphrase)
    if keys is None:
        raise ManifestError(f"{bank.description}/{BANK_CONFIG_KEY} vanished right after it was written")
    return keys
