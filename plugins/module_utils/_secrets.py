# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The secret strings inside a cloud dict, which no_log cannot reach in a raw or dict option."""

from __future__ import annotations

import typing as t

# Keys whose values are secrets wherever they sit in a cloud dict (auth.password, application_credential_secret...).
SECRET_NAME_PARTS = ("password", "secret", "token", "passcode", "private_key")


def secret_values(value: t.Any, secret: bool = False) -> set[str]:
    """Every non-empty value under a key naming a secret, at any depth of dicts and lists."""
    found: set[str] = set()
    if isinstance(value, dict):
        for name, item in value.items():
            found |= secret_values(item, secret or any(part in str(name).lower() for part in SECRET_NAME_PARTS))
    elif isinstance(value, (list, tuple)):
        for item in value:
            found |= secret_values(item, secret)
    elif secret and value not in (None, "") and not isinstance(value, bool):
        found.add(str(value))
    return found
