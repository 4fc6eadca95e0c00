# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one guarded import of openstacksdk, and the translation of its errors into ours."""

from __future__ import annotations

import traceback
import typing as t

from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import OpenStackError

try:
    import openstack
    from openstack import exceptions as sdk_exceptions
    from keystoneauth1 import exceptions as ksa_exceptions
    HAS_OPENSTACKSDK = True
    OPENSTACKSDK_IMPORT_ERROR: str | None = None
except ImportError:
    # ansible-test's import sanity runs without the SDK: fail later, in the module, with a clear message.
    openstack = None  # type: ignore[assignment]
    sdk_exceptions = None  # type: ignore[assignment]
    ksa_exceptions = None  # type: ignore[assignment]
    HAS_OPENSTACKSDK = False
    OPENSTACKSDK_IMPORT_ERROR = traceback.format_exc()

__all__ = [
    "HAS_OPENSTACKSDK", "OPENSTACKSDK_IMPORT_ERROR", "api_errors", "call", "is_not_found", "ksa_exceptions", "openstack",
    "sdk_exceptions", "status_code",
]

T = t.TypeVar("T")


def api_errors() -> tuple[type[BaseException], ...]:
    """Exception types that mean 'an OpenStack API call failed'."""
    if not HAS_OPENSTACKSDK:
        return ()
    return (sdk_exceptions.SDKException, ksa_exceptions.ClientException)


def status_code(error: BaseException) -> int | None:
    """HTTP status of an SDK error, when it has one."""
    code = getattr(error, "status_code", None)
    if code is None:
        code = getattr(getattr(error, "response", None), "status_code", None)
    return code


def is_not_found(error: BaseException) -> bool:
    return (HAS_OPENSTACKSDK and isinstance(error, sdk_exceptions.NotFoundException)) or status_code(error) == 404


def call(what: str, func: t.Callable[..., T], *args: t.Any, **kwargs: t.Any) -> T:
    """Run one API call; an SDK failure becomes OpenStackError("Failed to <what>: ...")."""
    try:
        return func(*args, **kwargs)
    except api_errors() as error:
        raise OpenStackError(f"Failed to {what}: {error}", http_status=status_code(error)) from error
