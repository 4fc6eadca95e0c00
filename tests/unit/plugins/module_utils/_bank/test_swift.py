# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How the Swift bank reads Swift's answers and names its location, without any server."""

from __future__ import annotations

import pytest
from keystoneauth1 import exceptions as ksa_exceptions

from ansible_collections.openstack_dr.bank.plugins.module_utils._bank import swift
from ansible_collections.openstack_dr.bank.plugins.module_utils._bank.swift import SwiftHTTPError


def test_swift_description_never_shows_credentials() -> None:
    location = swift._public_location({"auth": {"auth_url": "http://user:pw@keystone:5000/v3", "password": "pw"}})  # pylint: disable=protected-access
    assert location == "http://keystone:5000/v3"
    assert swift._public_location("prod") == "cloud prod"  # pylint: disable=protected-access


@pytest.mark.parametrize("exc, transient", [
    (SwiftHTTPError(503, "Service Unavailable"), True), (SwiftHTTPError(429, "Too Many Requests"), True),
    (SwiftHTTPError(404, "Not Found"), False), (SwiftHTTPError(401, "Unauthorized"), False),
    (ksa_exceptions.ConnectFailure("refused"), True), (ksa_exceptions.SSLError("bad cert"), False),
    (ConnectionResetError(), True), (ValueError(), False),
])
def test_which_swift_errors_are_retried(exc: BaseException, transient: bool) -> None:
    assert swift.is_transient(exc) is transient


def test_only_a_404_is_not_found() -> None:
    assert swift.is_not_found(SwiftHTTPError(404, "Not Found"))
    assert not swift.is_not_found(SwiftHTTPError(410, "Gone")) and not swift.is_not_found(KeyError("x"))


def test_authentication_failures_carry_a_hint() -> None:
    assert swift.cause(SwiftHTTPError(403, "Forbidden", b"no access")) == "HTTP 403 Forbidden: no access (check the credentials and the account's rights)"
    assert swift.cause(SwiftHTTPError(500, "Internal Server Error")) == "HTTP 500 Internal Server Error"
    assert swift.cause(TimeoutError("slow")) == "TimeoutError: slow"
