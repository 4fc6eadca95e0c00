# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The bank's JSON documents: their versioned loading, their UTC timestamps, and the progress object.

``bank.json``, manifests and progress objects all carry ``format`` and ``format_version`` and are
read through one loader, so each refuses a document it does not know the same way. The formats
are described in docs/bank-format.md.
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
    """One kind of JSON document in the bank: its ``format`` name, the version written and read."""

    name: str
    version: int
    what: str

    def stamp(self) -> dict:
        return {"format": self.name, "format_version": self.version}

    def dumps(self, document: dict, indent: int | None = 1) -> bytes:
        return json.dumps(dict(document, **self.stamp()), indent=indent, sort_keys=True).encode("utf-8")

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
        if version != self.version:
            raise ManifestError(
                f"The {self.what} {where} has format version {version!r}; this collection reads version "
                f"{self.version}. Use a newer openstack_dr.bank collection.")
        return document

    def load(self, data: bytes, where: str) -> dict:
        """Parse and check a document of this format."""
        return self.check(self.parse(data, where), where)


PROGRESS_FORMAT = DocumentFormat("openstack_dr.bank/backup-progress", 1, "backup progress")

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

    def to_bytes(self) -> bytes:
        document = {key: value for key, value in dataclasses.asdict(self).items() if key != "error" or value}
        return PROGRESS_FORMAT.dumps(document, indent=None)

    @classmethod
    def from_bytes(cls, data: bytes, backup_id: str, where: str) -> Progress:
        """The progress in ``data``; an unreadable one, or one of a newer format, has status ``unreadable``."""
        try:
            document = PROGRESS_FORMAT.parse(data, where)
            if "format" in document:  # progress objects written before 0.1.0 carry no format
                PROGRESS_FORMAT.check(document, where)
            fields = {field.name for field in dataclasses.fields(cls)}
            values = {key: value for key, value in document.items() if key in fields}
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
