# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The bank's JSON documents: their versioned loading, their sealing, their UTC timestamps, and the progress object.

``bank.json``, manifests and progress objects all carry ``format`` and ``format_version`` and are
read through one loader, so each refuses a document it does not know the same way. In an encrypted
bank, manifests and progress objects are sealed: the stored object is an envelope that shows only its
format, and the document inside is AES-256-GCM encrypted under the bank's data key with the object's
key bound as associated data. The formats are described in docs/bank-format.md.
"""

from __future__ import annotations

import calendar
import dataclasses
import json
import time
import typing as t

from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import ManifestError

TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
DEFAULT_PROGRESS_INTERVAL = 30.0
# An in-progress backup not updated for this long is listed as stalled (progress_interval is 30 s by default).
PROGRESS_STALE_AFTER = 900.0
PLAIN_VERSION = 1
SEALED_VERSION = 2
_SEALING_CONTEXT = b"openstack_dr.bank sealed document v2"


class DocumentSealer(t.Protocol):
    """Encrypts and authenticates a document's bytes (the bank's ``ChunkCodec`` in an encrypted bank)."""

    def seal_document(self, plaintext: bytes, associated: bytes) -> dict:
        """The JSON ``sealed`` member holding ``plaintext``, with ``associated`` bound."""

    def open_document(self, sealed: t.Any, associated: bytes, where: str) -> bytes:
        """The plaintext of a ``sealed`` member; ``ManifestError`` when it does not authenticate."""


def utc_timestamp(seconds: float) -> str:
    """``seconds`` since the epoch as the bank writes times: ``YYYY-MM-DDTHH:MM:SSZ``, UTC."""
    return time.strftime(TIMESTAMP_FORMAT, time.gmtime(seconds))


def utc_now() -> str:
    return utc_timestamp(time.time())


def parse_utc(value: t.Any) -> float | None:
    """Seconds since the epoch of a bank timestamp, or None when it is not one."""
    try:
        return float(calendar.timegm(time.strptime(str(value), TIMESTAMP_FORMAT)))
    except ValueError:
        return None


@dataclasses.dataclass(frozen=True)
class DocumentFormat:
    """One kind of JSON document in the bank: its ``format`` name, the version written and read.

    ``sealable`` formats are written as version 1 in clear in a plain bank and as a version 2 envelope
    in an encrypted one (``sealer`` given); both versions are read.
    """

    name: str
    version: int
    what: str
    sealable: bool = False

    def stamp(self) -> dict:
        return {"format": self.name, "format_version": self.version}

    def _associated(self, key: str) -> bytes:
        # Binds the envelope to its object: a sealed document moved to another key does not open.
        return b"\0".join((_SEALING_CONTEXT, self.name.encode("utf-8"), key.encode("utf-8")))

    def dumps(self, document: dict, indent: int | None = 1, sealer: DocumentSealer | None = None,
              key: str | None = None) -> bytes:
        """The document's bytes; sealed under ``sealer`` for the object ``key`` when a sealer is given."""
        if sealer is None:
            return json.dumps(dict(document, **self.stamp()), indent=indent, sort_keys=True).encode("utf-8")
        if not self.sealable or key is None:
            raise ValueError(f"a {self.what} is not sealed, or needs its object key")
        stamp = {"format": self.name, "format_version": SEALED_VERSION}
        inner = json.dumps(dict(document, **stamp), separators=(",", ":"), sort_keys=True).encode("utf-8")
        envelope = dict(stamp, sealed=sealer.seal_document(inner, self._associated(key)))
        return json.dumps(envelope, indent=indent, sort_keys=True).encode("utf-8")

    def parse(self, data: bytes, where: str) -> dict:
        """The JSON object in ``data``, or ``ManifestError`` naming ``where``."""
        try:
            document = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise ManifestError(f"The {self.what} {where} is truncated or corrupt: {exc}") from exc
        if not isinstance(document, dict):
            raise ManifestError(f"{where} is not an openstack_dr.bank {self.what}")
        return document

    def check(self, document: dict, where: str) -> dict:
        if document.get("format") != self.name:
            raise ManifestError(f"{where} is not an openstack_dr.bank {self.what}")
        version = document.get("format_version")
        readable = (PLAIN_VERSION, SEALED_VERSION) if self.sealable else (self.version,)
        if version not in readable:
            raise ManifestError(
                f"The {self.what} {where} has format version {version!r}; this collection reads version "
                f"{' and '.join(str(number) for number in readable)}. Use a newer openstack_dr.bank collection.")
        return document

    def load(self, data: bytes, where: str, sealer: DocumentSealer | None = None, key: str | None = None) -> dict:
        """Parse and check a document of this format, opening it with ``sealer`` when it is sealed.

        The one decoder of sealable documents: every reader of manifests and progress objects comes here.
        """
        document = self.check(self.parse(data, where), where)
        if document["format_version"] != SEALED_VERSION:
            return document
        if sealer is None or key is None:
            raise ManifestError(f"The {self.what} {where} is encrypted, but the bank is not: it belongs to another bank")
        inner = self.parse(sealer.open_document(document.get("sealed"), self._associated(key), where), where)
        if inner.get("format") != self.name or inner.get("format_version") != SEALED_VERSION:
            raise ManifestError(f"The sealed {self.what} {where} holds another document")
        return inner


PROGRESS_FORMAT = DocumentFormat("openstack_dr.bank/backup-progress", PLAIN_VERSION, "backup progress", sealable=True)

PROGRESS_UNREADABLE = "unreadable"


@dataclasses.dataclass
class Progress:
    """A backup in progress or failed (``backups/<id>/progress.json``); removed once the manifest is written."""

    backup_id: str
    backup_name: str | None
    status: str  # in_progress, failed, or unreadable when the object cannot be read
    started_at: str | None = None
    updated_at: str | None = None
    bytes_done: int | None = None
    bytes_total: int | None = None
    source: dict = dataclasses.field(default_factory=dict)
    error: str | None = None
    # The process writing it (as its bank lock names it), so a run on that host can tell it died.
    holder: dict | None = None

    def to_bytes(self, sealer: DocumentSealer | None = None, key: str | None = None) -> bytes:
        """The stored object; sealed for the object ``key`` in an encrypted bank."""
        document = {name: value for name, value in dataclasses.asdict(self).items() if value or name not in ("error", "holder")}
        return PROGRESS_FORMAT.dumps(document, indent=None, sealer=sealer, key=key)

    @classmethod
    def from_bytes(cls, data: bytes, backup_id: str, where: str, sealer: DocumentSealer | None = None,
                   key: str | None = None) -> Progress:
        """The progress in ``data``; an unreadable one, or one of a newer format, has status ``unreadable``."""
        try:
            document = PROGRESS_FORMAT.parse(data, where)
            if "format" in document:  # progress objects written before 0.1.0 carry no format
                document = PROGRESS_FORMAT.load(data, where, sealer, key)
            fields = {field.name for field in dataclasses.fields(cls)}
            values = {name: value for name, value in document.items() if name in fields}
            values.setdefault("backup_id", backup_id)
            values.setdefault("backup_name", None)
            values.setdefault("status", "in_progress")
            return cls(**values)
        except (ManifestError, TypeError):
            return cls(backup_id=backup_id, backup_name=None, status=PROGRESS_UNREADABLE)

    def stalled(self, stale_after: float) -> bool:
        """In progress, but not updated for ``stale_after`` seconds: its run was killed or hangs.

        A time that cannot be read never counts as stalled, so no running backup is reported dead by mistake.
        """
        updated = parse_utc(self.updated_at)
        return self.status == "in_progress" and updated is not None and time.time() - updated > stale_after
