# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The object-key rules every bank backend shares: keys and prefixes that cannot escape or break a backend."""

from __future__ import annotations

import pytest

from ansible_collections.openstack_dr.bank.plugins.module_utils._bank.object_keys import normalize_root_prefix, validate_key, validate_prefix
from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import InvalidInputError


@pytest.mark.parametrize("key", ["a", "chunks/ab/abcdef", "manifests/2026-11-25T12:00:00Z.json", "\u00e9t\u00e9/\u4e2d", "a.b/c..d", "...x", "x" * 1024])
def test_accepts_safe_relative_keys(key: str) -> None:
    assert validate_key(key) == key


@pytest.mark.parametrize("key", [
    "", "/abs", "../up", "a/../b", "a/..", "..", ".", "./a", "a/./b", "a//b", "a/", "back\\slash", "nul\x00byte",
    "new\nline", "tab\tkey", "del\x7f", "x" * 1025, "\u00e9" * 513, "lone\ud800surrogate",
])
def test_rejects_keys_that_could_escape_or_break_a_backend(key: str) -> None:
    with pytest.raises(InvalidInputError, match="Invalid bank key"):
        validate_key(key)


@pytest.mark.parametrize("value", [None, b"bytes", 3])
def test_rejects_keys_that_are_not_strings(value: object) -> None:
    with pytest.raises(InvalidInputError, match="must be a string"):
        validate_key(value)


@pytest.mark.parametrize("prefix", ["", "a", "a/", "chunks/ab", "chunks/ab/"])
def test_prefix_may_be_empty_or_end_with_a_slash(prefix: str) -> None:
    assert validate_prefix(prefix) == prefix


@pytest.mark.parametrize("prefix", ["/", "/a", "../", "a/../", "a//", "\\"])
def test_prefix_rejects_what_keys_reject(prefix: str) -> None:
    with pytest.raises(InvalidInputError):
        validate_prefix(prefix)


@pytest.mark.parametrize("given, expected", [(None, ""), ("", ""), ("bank", "bank/"), ("a/b/", "a/b/")])
def test_root_prefix_always_ends_with_a_slash(given: str | None, expected: str) -> None:
    assert normalize_root_prefix(given) == expected
