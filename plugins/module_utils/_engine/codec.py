# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How one chunk becomes one bank object and back, with its identity checked.

Object layout: magic ``ODB1``, one flags byte (bit 0 zstd, bit 1 AES-256-GCM),
a 12-byte nonce when encrypted, then the payload. Encryption binds the chunk's
id and the header as associated data, so a chunk cannot be swapped for another.
In an encrypted bank the same key seals the bank's documents (manifests and
progress objects): ``seal_document`` and ``open_document``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import threading

from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import (
    IntegrityError,
    InvalidInputError,
    ManifestError,
)
from ansible_collections.openstack_dr.bank.plugins.module_utils._optional_imports import (
    CRYPTOGRAPHY_IMPORT_ERROR,
    HAS_CRYPTOGRAPHY,
    HAS_ZSTANDARD,
    ZSTANDARD_IMPORT_ERROR,
    aead,
    cryptography_exceptions,
    zstandard,
)

MAGIC = b"ODB1"
DOCUMENT_CIPHER = "aes-256-gcm"
DOCUMENT_COMPRESSION = "zstd"
FLAG_ZSTD = 0x01
FLAG_AES_GCM = 0x02
NONCE_SIZE = 12
HEADER_SIZE = len(MAGIC) + 1


def require_zstandard() -> None:
    if not HAS_ZSTANDARD:
        raise InvalidInputError(
            "The Python library 'zstandard' is required on the host that runs the module "
            "(pip install zstandard)", import_error=ZSTANDARD_IMPORT_ERROR)


def require_cryptography() -> None:
    if not HAS_CRYPTOGRAPHY:
        raise InvalidInputError(
            "The Python library 'cryptography' is required for an encrypted bank "
            "(pip install cryptography)", import_error=CRYPTOGRAPHY_IMPORT_ERROR)


class ChunkCodec:
    """Identity, compression and encryption of chunks. Safe to share between threads."""

    def __init__(self, compression_level: int = 3, encryption_key: bytes | None = None,
                 identity_key: bytes | None = None) -> None:
        require_zstandard()
        if encryption_key is not None:
            require_cryptography()
        self.compression_level = compression_level
        self._aead = aead.AESGCM(encryption_key) if encryption_key is not None else None
        self._identity_key = identity_key
        # zstd contexts are not thread-safe: one per thread.
        self._local = threading.local()

    @property
    def encrypted(self) -> bool:
        return self._aead is not None

    @property
    def document_sealer(self) -> ChunkCodec | None:
        """What seals the bank's manifests and progress objects: this codec in an encrypted bank, else None."""
        return self if self._aead is not None else None

    def identity(self, plaintext: bytes) -> bytes:
        """The chunk's id: SHA-256 of the plaintext, or a keyed HMAC in an encrypted bank."""
        if self._identity_key is not None:
            return hmac.new(self._identity_key, plaintext, hashlib.sha256).digest()
        return hashlib.sha256(plaintext).digest()

    def _compressor(self):
        compressor = getattr(self._local, "compressor", None)
        if compressor is None:
            compressor = self._local.compressor = zstandard.ZstdCompressor(level=self.compression_level)
        return compressor

    def _decompressor(self):
        decompressor = getattr(self._local, "decompressor", None)
        if decompressor is None:
            decompressor = self._local.decompressor = zstandard.ZstdDecompressor()
        return decompressor

    def encode(self, digest: bytes, plaintext: bytes) -> bytes:
        flags = 0
        payload = self._compressor().compress(plaintext)
        if len(payload) < len(plaintext):
            flags |= FLAG_ZSTD
        else:
            payload = plaintext  # incompressible: stored raw
        if self._aead is None:
            return MAGIC + bytes((flags,)) + payload
        flags |= FLAG_AES_GCM
        header = MAGIC + bytes((flags,))
        nonce = os.urandom(NONCE_SIZE)
        return header + nonce + self._aead.encrypt(nonce, payload, header + digest)

    def decode(self, digest: bytes, blob: bytes, expected_size: int, where: str) -> bytes:
        """Return the verified plaintext of a stored chunk, or raise ``IntegrityError``."""
        if len(blob) < HEADER_SIZE or blob[:len(MAGIC)] != MAGIC:
            raise IntegrityError(f"{where} is not a chunk object (bad header)")
        flags = blob[len(MAGIC)]
        if flags & ~(FLAG_ZSTD | FLAG_AES_GCM):
            raise IntegrityError(f"{where} has unknown flags {flags:#x}")
        encrypted = bool(flags & FLAG_AES_GCM)
        if encrypted != self.encrypted:
            raise IntegrityError(
                f"{where} is {'encrypted' if encrypted else 'not encrypted'} but the bank "
                f"{'is' if self.encrypted else 'is not'}")
        payload = memoryview(blob)[HEADER_SIZE:]
        if encrypted:
            header = bytes(blob[:HEADER_SIZE])
            nonce = bytes(payload[:NONCE_SIZE])
            try:
                payload = memoryview(self._aead.decrypt(nonce, bytes(payload[NONCE_SIZE:]), header + digest))
            except cryptography_exceptions.InvalidTag as exc:
                raise IntegrityError(f"{where} failed authentication: it was altered or belongs elsewhere") from exc
        if flags & FLAG_ZSTD:
            try:
                plaintext = self._decompressor().decompress(payload, max_output_size=expected_size)
            except zstandard.ZstdError as exc:
                raise IntegrityError(f"{where} does not decompress: {exc}") from exc
        else:
            plaintext = bytes(payload)
        if len(plaintext) != expected_size:
            raise IntegrityError(f"{where} holds {len(plaintext)} bytes, expected {expected_size}")
        if not hmac.compare_digest(self.identity(plaintext), digest):
            raise IntegrityError(f"{where} does not match its content hash: the stored data is damaged")
        return plaintext

    # -- documents ---------------------------------------------------------------------------------

    def seal_document(self, plaintext: bytes, associated: bytes) -> dict:
        """``plaintext`` compressed, then encrypted and authenticated with ``associated`` bound: the JSON
        ``sealed`` member of a version 2 document."""
        if self._aead is None:
            raise ValueError("only an encrypted bank seals documents")
        nonce = os.urandom(NONCE_SIZE)
        ciphertext = self._aead.encrypt(nonce, self._compressor().compress(plaintext), associated)
        return {"cipher": DOCUMENT_CIPHER, "compression": DOCUMENT_COMPRESSION,
                "nonce": base64.b64encode(nonce).decode("ascii"), "ciphertext": base64.b64encode(ciphertext).decode("ascii")}

    def open_document(self, sealed: object, associated: bytes, where: str) -> bytes:
        """The plaintext of a ``sealed`` member, or ``ManifestError`` when it was altered, moved or is not ours."""
        if self._aead is None:
            raise ManifestError(f"{where} is encrypted, but the bank is not: it belongs to another bank")
        if (not isinstance(sealed, dict) or sealed.get("cipher") != DOCUMENT_CIPHER
                or sealed.get("compression") != DOCUMENT_COMPRESSION):
            raise ManifestError(f"{where} is sealed in a way this collection does not read")
        try:
            nonce = base64.b64decode(sealed["nonce"], validate=True)
            ciphertext = base64.b64decode(sealed["ciphertext"], validate=True)
            payload = self._aead.decrypt(nonce, ciphertext, associated)
        except (KeyError, TypeError, ValueError, binascii.Error) as exc:
            raise ManifestError(f"{where} is truncated or corrupt: {exc}") from exc
        except cryptography_exceptions.InvalidTag:
            raise ManifestError(
                f"{where} failed authentication: it was altered, moved from another key or written by another bank") from None
        try:
            return self._decompressor().decompress(payload)
        except zstandard.ZstdError as exc:
            raise ManifestError(f"{where} does not decompress: {exc}") from exc
