# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Authentication options identical to openstack.cloud's, and the connection they open.

No runtime dependency on the openstack.cloud collection: the same option names and semantics,
our own code. clouds.yaml and OS_* environment variables work because openstacksdk reads them.
"""

from __future__ import annotations

import typing as t

from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import InvalidInputError, OpenStackError
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack._sdk import (
    HAS_OPENSTACKSDK,
    OPENSTACKSDK_IMPORT_ERROR,
    api_errors,
    openstack,
)
from ansible_collections.openstack_dr.bank.plugins.module_utils._secrets import secret_values

# A waited step (snapshot, upload-to-image, image upload, volume from image) moves volume data:
# an hour covers a few hundred GiB at the rates measured; data_step_timeout() grows it with size.
DEFAULT_TIMEOUT = 3600
# Seconds allowed per GiB for a data-moving step when the volume is large (about 17 MiB/s floor).
SECONDS_PER_GIB = 60

# Options that a cloud dict given in `cloud` already carries (openstack.cloud refuses both at once).
_CLOUD_DICT_EXCLUSIVE = ("auth", "region_name", "validate_certs", "ca_cert", "client_cert", "client_key", "api_timeout", "auth_type")


def openstack_argument_spec() -> dict[str, dict[str, t.Any]]:
    """The auth argument spec, option for option as openstack.cloud's (`timeout` differs, `wait` is not taken:
    every step must wait for what it creates)."""
    return dict(
        cloud=dict(type="raw"),
        auth_type=dict(type="str"),
        auth=dict(type="dict", no_log=True),
        region_name=dict(type="str"),
        validate_certs=dict(type="bool", aliases=["verify"]),
        ca_cert=dict(type="str", aliases=["cacert"]),
        client_cert=dict(type="str", aliases=["cert"]),
        client_key=dict(type="str", no_log=True, aliases=["key"]),
        # openstack.cloud's 180 s cannot move a large volume: see DEFAULT_TIMEOUT.
        timeout=dict(type="int", default=DEFAULT_TIMEOUT),
        api_timeout=dict(type="int"),
        interface=dict(type="str", default="public", choices=["public", "internal", "admin"], aliases=["endpoint_type"]),
        sdk_log_path=dict(type="str"),
        sdk_log_level=dict(type="str", default="INFO", choices=["INFO", "DEBUG"]),
    )


def openstack_secrets(params: t.Mapping[str, t.Any]) -> set[str]:
    """The secrets of a cloud dict given in `cloud` (no_log cannot reach into a raw option): for run_module."""
    return secret_values(params.get("cloud")) if isinstance(params.get("cloud"), dict) else set()


def checked_timeout(timeout: t.Any) -> float:
    """The `timeout` option, refused by name unless it is a positive number of seconds."""
    if timeout is None or timeout <= 0:
        raise InvalidInputError(f"timeout must be a positive number of seconds, got {timeout!r}")
    return float(timeout)


def data_step_timeout(timeout: float, size_gib: int | float) -> float:
    """Deadline of a step that moves a volume's data: `timeout`, but never less than SECONDS_PER_GIB per GiB."""
    return max(checked_timeout(timeout), SECONDS_PER_GIB * float(size_gib or 0))


def connect(params: t.Mapping[str, t.Any], app_name: str = "openstack_dr.bank", app_version: str | None = None) -> t.Any:
    """Open an openstack.connection.Connection from module params, as openstack.cloud's OpenStackModule does.

    Raises OpenStackError when openstacksdk is missing or the cloud configuration or login fails,
    InvalidInputError when a `cloud` dict is combined with options it already carries.
    """
    if not HAS_OPENSTACKSDK:
        raise OpenStackError("The openstacksdk Python library is required", import_error=OPENSTACKSDK_IMPORT_ERROR)
    if params.get("sdk_log_path"):
        debug = params.get("sdk_log_level") == "DEBUG"
        openstack.enable_logging(debug=debug, http_debug=debug, path=params["sdk_log_path"])
    config = cloud_config(params)
    config.setdefault("app_name", app_name)
    if app_version:
        config.setdefault("app_version", app_version)
    try:
        conn = openstack.connect(**config)
        # Authenticate now so a wrong password fails here, with a clear message, before any step.
        conn.authorize()
    except api_errors() as error:
        raise OpenStackError(f"Failed to connect to {describe_cloud(params.get('cloud'))}: {error}") from error
    return conn


def describe_cloud(cloud: t.Any) -> str:
    """A cloud for messages: its clouds.yaml name, or a dict's auth URL and project, never its credentials."""
    if not isinstance(cloud, dict):
        return f"the cloud {cloud!r}" if cloud else "the cloud of the OS_* environment variables"
    auth = cloud.get("auth") if isinstance(cloud.get("auth"), dict) else {}
    facts = [f"{key} {auth[key]!r}" for key in ("auth_url", "project_name", "project_id") if auth.get(key)]
    return "the cloud given as a dict" + (f" ({', '.join(facts)})" if facts else "")


def cloud_config(params: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    """openstack.connect()'s arguments: a `cloud` dict as it is, or the separate options that were given."""
    cloud = params.get("cloud")
    if params.get("api_timeout") is not None and params["api_timeout"] <= 0:
        raise InvalidInputError(f"api_timeout must be a positive number of seconds, got {params['api_timeout']}")
    if isinstance(cloud, dict):
        given = [name for name in _CLOUD_DICT_EXCLUSIVE if params.get(name) is not None]
        if params.get("interface") not in (None, "public"):
            given.append("interface")
        if given:
            raise InvalidInputError(
                "A cloud config dict was given in 'cloud' together with %s; put these inside the dict instead" % ", ".join(given)
            )
        return dict(cloud)
    config = dict(
        cloud=cloud, auth_type=params.get("auth_type"), auth=params.get("auth"), region_name=params.get("region_name"),
        verify=params.get("validate_certs"), cacert=params.get("ca_cert"), cert=params.get("client_cert"),
        key=params.get("client_key"), api_timeout=params.get("api_timeout"), interface=params.get("interface"),
    )
    # None means "not given": let clouds.yaml and OS_* variables supply it.
    return {name: value for name, value in config.items() if value is not None}


def cloud_location(conn: t.Any) -> dict[str, t.Any]:
    """Cloud name and region of a connection, for manifests and messages."""
    config = getattr(conn, "config", None)
    return {
        "cloud": getattr(config, "name", None),
        "region": getattr(config, "region_name", None) or getattr(conn, "_compute_region", None),
    }
