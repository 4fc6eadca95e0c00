# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Validation of bank keys and prefixes, shared by every backend.

One rule set for all backends so that a key accepted by the file bank is also
valid on S3 and Swift, and no key can leave the bank's root on any of them.
"""

from __future__ import annotations

from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import InvalidInputError

# S3 and Swift both cap object names at 1024 bytes; the prefix of the bank counts too.
MAX_KEY_BYTES = 1024


def _bad(kind: str, value: object, why: str) -> InvalidInputError:
    return InvalidInputError(f"Invalid bank {kind} {value!r}: {why}")


def _check_text(kind: str, value: object) -> str:
    if not isinstance(value, str):
        raise _bad(kind, value, "it must be a string")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise _bad(kind, value, "control characters (NUL, newline...) are not allowed")
    if "\\" in value:
        raise _bad(kind, value, "backslashes are not allowed")
    try:
        encoded = value.encode("utf-8")
    except UnicodeEncodeError:
        raise _bad(kind, value, "it is not valid Unicode") from None
    if len(encoded) > MAX_KEY_BYTES:
        raise _bad(kind, value, f"longer than {MAX_KEY_BYTES} bytes")
    if value.startswith("/"):
        raise _bad(kind, value, "it must be relative (no leading '/')")
    return value


def validate_key(key: object) -> str:
    """Return ``key`` if it is a safe relative key, else raise ``InvalidInputError``.

    A key is a non-empty ``/``-separated path of non-empty segments, none of
    them ``.`` or ``..``, with no control character or backslash.
    """
    key = _check_text("key", key)
    if not key:
        raise _bad("key", key, "it is empty")
    for segment in key.split("/"):
        if segment in ("", ".", ".."):
            raise _bad("key", key, "empty, '.' and '..' path segments are not allowed")
    return key


def validate_prefix(prefix: object) -> str:
    """Like ``validate_key`` but the empty string and a trailing ``/`` are allowed."""
    prefix = _check_text("prefix", prefix)
    if prefix:
        segments = prefix.split("/")
        if segments[-1] == "":
            segments.pop()
        for segment in segments:
            if segment in ("", ".", ".."):
                raise _bad("prefix", prefix, "empty, '.' and '..' path segments are not allowed")
    return prefix


def normalize_root_prefix(prefix: object) -> str:
    """The bank's own prefix inside a bucket or container: '' or 'a/b/' (always ending in '/')."""
    if prefix is None:
        return ""
    prefix = validate_prefix(prefix).strip("/") if isinstance(prefix, str) else validate_prefix(prefix)
    return f"{prefix}/" if prefix else ""
