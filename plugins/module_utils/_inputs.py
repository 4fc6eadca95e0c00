# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The checks of a module's options that need neither the cloud nor the bank.

Every flow runs them first, so a bad input is refused by name, with its bound and the value
given, before any connection is opened and anything is created. Each check raises the
``InvalidInputError`` of ``_errors.py``. The bounds live here, once; the modules' documentation
states them and a unit test holds the two together.
"""

from __future__ import annotations

import typing as t
import unicodedata

from ansible.module_utils.common.validation import check_type_dict

from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.documents import parse_utc
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.layout import looks_like_backup_id
from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import InvalidInputError
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack.tags import RESTORE_COMPLETE_TAG, RESTORED_FROM_TAG, TAG_KEYS


class Bound(t.NamedTuple):
    """The range of a numeric option, and its unit for the message."""

    minimum: float
    maximum: float
    unit: str = ""


# A waited step never lasts a week: a longer deadline is a typo (and 1e400 overflows a float).
TIMEOUT = Bound(1, 7 * 86400, "seconds")
API_TIMEOUT = Bound(1, 3600, "seconds")
LOCK_TIMEOUT = Bound(0, 86400, "seconds")
PARALLELISM = Bound(1, 64)
COMPRESSION_LEVEL = Bound(1, 19)
# Under bank_backup_info's 15 minutes after which a silent backup is listed as stalled.
PROGRESS_INTERVAL = Bound(1, 600, "seconds")
# Cinder stores sizes as 32-bit integers; 1 PiB is far above any quota.
VOLUME_SIZE = Bound(1, 1024 * 1024, "GiB")
OLDER_THAN = Bound(0, 10 * 365 * 86400, "seconds")
VERIFY_PERCENT = Bound(0.001, 100, "percent")
# An RPO or RTO target: 0 for none; above ten years, a typo.
DRILL_TARGET = Bound(0, 10 * 365 * 86400, "seconds")

# Cinder refuses names, descriptions and metadata longer than 255 characters, and 4-byte UTF-8.
CINDER_MAX_CHARS = 255
# Backup names become tags (255 characters) and temporary names: 255 bytes keeps both whole.
BACKUP_NAME_MAX_BYTES = 255
TEMPORARY_PREFIX_MAX_CHARS = 64
# Metadata keys a restore sets itself: given by the user, they would confuse the cleanup tools.
# DRILL_TAG is not one: the dr_drill role marks the volumes it restores with it, through metadata.
RESERVED_METADATA_KEYS = frozenset(TAG_KEYS + (RESTORED_FROM_TAG, RESTORE_COMPLETE_TAG))


def _refuse(option: str, why: str, value: t.Any) -> InvalidInputError:
    shown = str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else repr(value)
    if isinstance(value, str) and len(value) > 40:
        shown = f"{value[:40]!r}... ({len(value)} characters)"
    elif len(shown) > 60:
        shown = f"{shown[:40]}... ({len(shown)} characters)"
    return InvalidInputError(f"{option} {why}, got {shown}", option=option)


def _number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def check_number(option: str, value: t.Any, bound: Bound, optional: bool = False) -> t.Any:
    """``value`` if it is a number within ``bound`` (None too when ``optional``), else InvalidInputError."""
    if value is None and optional:
        return None
    unit = f" {bound.unit}" if bound.unit else ""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _refuse(option, "must be a number", value)
    if not bound.minimum <= value <= bound.maximum:
        raise _refuse(option, f"must be between {_number_text(bound.minimum)} and {_number_text(bound.maximum)}{unit}", value)
    return value


def check_text(option: str, value: t.Any, *, max_chars: int | None = None, max_bytes: int | None = None,
               optional: bool = False, allow_empty: bool = False) -> t.Any:
    """Text Cinder and Glance accept: no control characters, no 4-byte UTF-8, within the length given.

    A name must also not be empty, only whitespace, or start or end with whitespace.
    """
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise _refuse(option, "must be a string", value)
    if value == "":
        if allow_empty:
            return value
        raise _refuse(option, "must not be empty", value)
    if not allow_empty and value.strip() == "":
        raise _refuse(option, "must not be only whitespace", value)
    if not allow_empty and value != value.strip():
        raise _refuse(option, "must not start or end with whitespace", value)
    for character in value:
        if unicodedata.category(character) == "Cc":
            raise _refuse(option, f"must not contain control characters (found U+{ord(character):04X})", value)
        if unicodedata.category(character) == "Cs":
            raise _refuse(option, "must be valid Unicode (found a lone surrogate)", value)
        if ord(character) > 0xFFFF:
            raise _refuse(option, f"must not contain 4-byte UTF-8 characters, which Cinder refuses (found U+{ord(character):X})", value)
    if max_chars is not None and len(value) > max_chars:
        raise _refuse(option, f"must be at most {max_chars} characters", value)
    if max_bytes is not None and len(value.encode("utf-8")) > max_bytes:
        raise _refuse(option, f"must be at most {max_bytes} bytes in UTF-8", value)
    return value


def check_backup_name(value: t.Any, option: str = "backup_name") -> str:
    """A new backup's name: 1 to 255 bytes of printable text, no ``/`` or ``\\``, and not shaped like a backup id.

    Backup ids are derived from names; a name shaped like an id would be taken for another backup's id.
    """
    check_text(option, value, max_bytes=BACKUP_NAME_MAX_BYTES)
    if "/" in value or "\\" in value:
        raise _refuse(option, "must not contain '/' or '\\' (a backup name is no path)", value)
    if looks_like_backup_id(value):
        raise _refuse(option, "must not look like a backup id (a lowercase UUID): names and ids never mix", value)
    return value


def check_backup_reference(value: t.Any, option: str = "backup", optional: bool = False) -> t.Any:
    """A backup given by name or id: the same text rules as a name, ids allowed."""
    if value is None and optional:
        return None
    check_text(option, value, max_bytes=BACKUP_NAME_MAX_BYTES)
    return value


def check_volume_name(value: t.Any, option: str) -> str:
    """The name of a volume Cinder will create (Cinder's own limits)."""
    return check_text(option, value, max_chars=CINDER_MAX_CHARS)


def check_temporary_prefix(value: t.Any, option: str = "temporary_prefix") -> str:
    check_text(option, value, max_chars=TEMPORARY_PREFIX_MAX_CHARS)
    if "/" in value or "\\" in value:
        raise _refuse(option, "must not contain '/' or '\\'", value)
    return value


def check_metadata(value: t.Any, option: str = "metadata") -> dict:
    """Volume metadata Cinder accepts: keys of 1 to 255 characters, values of at most 255, none of ours."""
    if not isinstance(value, dict):
        raise _refuse(option, "must be a dict", value)
    for key, item in value.items():
        check_text(f"{option} key", key, max_chars=CINDER_MAX_CHARS)
        if key in RESERVED_METADATA_KEYS:
            raise _refuse(f"{option} key", "is set by this collection and must not be given", key)
        if isinstance(item, (dict, list)):
            raise _refuse(f"{option}.{key}", "must be a string, a number or a boolean", item)
        check_text(f"{option}.{key}", str(item), max_chars=CINDER_MAX_CHARS, allow_empty=True)
    return value


def check_names(value: t.Any, option: str) -> list:
    """A list of names or ids to match (volume_info, temporaries_cleanup)."""
    for index, item in enumerate(value or []):
        check_text(f"{option}[{index}]", item, max_bytes=BACKUP_NAME_MAX_BYTES)
    return value


def check_utc_timestamp(option: str, value: t.Any) -> t.Any:
    """A UTC time the way the bank writes it (``YYYY-MM-DDTHH:MM:SSZ``), or None."""
    if value is not None and parse_utc(value) is None:
        raise _refuse(option, "must be a UTC time as YYYY-MM-DDTHH:MM:SSZ", value)
    return value


def check_openstack_options(params: t.Mapping[str, t.Any]) -> None:
    """The deadline options every OpenStack module takes."""
    check_number("timeout", params.get("timeout"), TIMEOUT)
    check_number("api_timeout", params.get("api_timeout"), API_TIMEOUT, optional=True)


def check_passphrase(params: t.Mapping[str, t.Any]) -> None:
    if params.get("encryption_passphrase") == "":
        raise InvalidInputError("encryption_passphrase must not be empty: leave it out for an unencrypted bank",
                                option="encryption_passphrase")


def unparsable_dicts(argument_spec: t.Mapping[str, t.Any], params: t.Mapping[str, t.Any]) -> list[str]:
    """The dict options given a value Ansible cannot turn into a dict.

    For a dict with suboptions (``bank``) Ansible's own refusal does not name the option; the
    runner refuses these first, by name.
    """
    refused = []
    for name, spec in argument_spec.items():
        if spec.get("type") != "dict":
            continue
        given = [params[key] for key in (name, *spec.get("aliases", ())) if params.get(key) is not None]
        for value in given:
            if isinstance(value, dict):
                continue
            try:
                check_type_dict(value)
            except TypeError:
                refused.append(name)
    return refused


def holds_secrets(spec: t.Mapping[str, t.Any]) -> bool:
    """Whether an option, or one of its suboptions, is no_log."""
    return bool(spec.get("no_log")) or any(holds_secrets(sub) for sub in (spec.get("options") or {}).values())
