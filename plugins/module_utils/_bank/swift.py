# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A bank in a Swift container, through openstacksdk's object-store endpoint."""

from __future__ import annotations

import hashlib
import json
import threading
import traceback
import typing as t
import urllib.parse

from ansible_collections.openstack_dr.bank.plugins.module_utils._bank.base import Bank, BankObject
from ansible_collections.openstack_dr.bank.plugins.module_utils._bank.object_keys import normalize_root_prefix, validate_key, validate_prefix
from ansible_collections.openstack_dr.bank.plugins.module_utils._bank.retry import BackendErrors, RetryingCall, RetryPolicy
from ansible_collections.openstack_dr.bank.plugins.module_utils._bank.retry import is_transient_os_error, is_transient_status
from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import BankError, InvalidInputError

OPENSTACKSDK_IMPORT_ERROR: str | None = None
try:
    import openstack
    import openstack.exceptions
    from keystoneauth1 import exceptions as ksa_exceptions
except ImportError:
    OPENSTACKSDK_IMPORT_ERROR = traceback.format_exc()
HAS_OPENSTACKSDK = OPENSTACKSDK_IMPORT_ERROR is None


class SwiftHTTPError(Exception):
    """An unexpected HTTP status from Swift."""

    def __init__(self, status: int, reason: str, body: bytes = b"") -> None:
        text = body[:200].decode("utf-8", "replace").strip()
        super().__init__(f"HTTP {status} {reason}{': ' + text if text else ''}")
        self.status = status


def is_transient(exc: BaseException) -> bool:
    """Swift/keystoneauth errors worth another attempt: 5xx, 429, resets, timeouts."""
    if isinstance(exc, SwiftHTTPError):
        return is_transient_status(exc.status)
    if HAS_OPENSTACKSDK:
        if isinstance(exc, ksa_exceptions.HttpError):
            return is_transient_status(exc.http_status)
        if isinstance(exc, ksa_exceptions.SSLError):
            return False
        # ConnectFailure, ConnectTimeout and UnknownConnectionError (a body cut mid-way).
        if isinstance(exc, (ksa_exceptions.RetriableConnectionFailure, ksa_exceptions.UnknownConnectionError)):
            return True
        if isinstance(exc, openstack.exceptions.HttpException):
            return is_transient_status(exc.status_code)
    return is_transient_os_error(exc)


def is_not_found(exc: BaseException) -> bool:
    """Swift answered 404 (the object or the container does not exist)."""
    return isinstance(exc, SwiftHTTPError) and exc.status == 404


def cause(exc: BaseException) -> str:
    """The HTTP answer with a hint for authentication failures, or the exception's type and text."""
    if isinstance(exc, SwiftHTTPError):
        hint = " (check the credentials and the account's rights)" if exc.status in (401, 403) else ""
        return f"{exc}{hint}"
    if HAS_OPENSTACKSDK and isinstance(exc, ksa_exceptions.HttpError):
        hint = " (check the credentials)" if exc.http_status in (401, 403) else ""
        return f"authentication or endpoint lookup failed: HTTP {exc.http_status}{hint}"
    return f"{type(exc).__name__}: {exc}"


SWIFT_ERRORS = BackendErrors(is_transient=is_transient, is_not_found=is_not_found, cause=cause)


def _public_location(cloud: str | dict) -> str:
    """Where the bank lives, for messages: the cloud name or its auth URL, never a secret."""
    if isinstance(cloud, str):
        return f"cloud {cloud}"
    auth = cloud.get("auth") if isinstance(cloud.get("auth"), dict) else {}
    url = auth.get("auth_url") or cloud.get("auth_url") or cloud.get("object_store_endpoint_override") or "cloud"
    parts = urllib.parse.urlsplit(str(url))
    # Drop any user:password@ that a URL could carry.
    if not parts.hostname:
        return str(url)
    netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class SwiftBank(Bank):
    """Objects are ``<prefix><key>`` in one container.

    The parameters named like a ``bank`` suboption are that option (doc_fragments/_bank.py); ``None`` means unset.
    """

    list_page_size = 10000  # the default container_listing_limit

    def __init__(
        self,
        *,
        cloud: str | dict | None = None,
        connect_timeout: float | None = None,
        container: str | None = None,
        create: bool | None = False,
        prefix: str | None = "",
        read_timeout: float | None = None,
        region_name: str | None = None,
        retry: RetryPolicy | None = None,
        write_only: bool | None = False,
    ) -> None:
        self.write_only = bool(write_only)
        if not HAS_OPENSTACKSDK:
            raise InvalidInputError(f"The swift bank needs the Python library openstacksdk (pip install openstacksdk): {OPENSTACKSDK_IMPORT_ERROR}")
        if not container or "/" in container:
            raise InvalidInputError("The swift bank needs O(bank.container), a container name without '/'")
        if not cloud or not isinstance(cloud, (str, dict)):
            raise InvalidInputError("The swift bank needs O(bank.cloud): a clouds.yaml cloud name or a dict of connection settings")
        self.container = container
        self.prefix = normalize_root_prefix(prefix)
        self.cloud = cloud
        self.region_name = region_name
        self.timeout = (connect_timeout, read_timeout) if (connect_timeout or read_timeout) else None
        self.description = f"swift bank {container}/{self.prefix}".rstrip("/") + f" at {_public_location(cloud)}"
        # openstacksdk does not promise a Connection is thread-safe: one per thread, all closed by close().
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[t.Any] = []
        self._bulk_delete_limit: int | None = None
        self._call = RetryingCall(self.description, SWIFT_ERRORS, retry)
        self._open(bool(create))

    # --- plumbing ---------------------------------------------------------------------------------

    def _connection(self) -> t.Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            kwargs: dict[str, t.Any] = {}
            if self.region_name:
                kwargs["region_name"] = self.region_name
            if self.timeout:
                kwargs["api_timeout"] = max(x for x in self.timeout if x)
            try:
                if isinstance(self.cloud, str):
                    conn = openstack.connect(cloud=self.cloud, **kwargs)
                else:
                    conn = openstack.connect(**{**self.cloud, **kwargs})
            except Exception as exc:  # pylint: disable=broad-exception-caught
                raise BankError(f"{self.description}: cannot configure the connection: {type(exc).__name__}: {exc}", bank=self.description) from exc
            with self._lock:
                self._connections.append(conn)
            self._local.conn = conn
        return conn

    def _request(self, method: str, url: str, ok: tuple[int, ...], **kwargs: t.Any) -> t.Any:
        proxy = self._connection().object_store
        if self.timeout:
            kwargs["timeout"] = self.timeout
        # connect_retries=0: the only retries are ours.
        response = proxy.request(url, method, raise_exc=False, connect_retries=0, **kwargs)
        if response.status_code not in ok:
            raise SwiftHTTPError(response.status_code, response.reason or "", response.content or b"")
        return response

    def _container_url(self) -> str:
        return "/" + urllib.parse.quote(self.container, safe="")

    def _object_url(self, key: str) -> str:
        return f"{self._container_url()}/{urllib.parse.quote(self.prefix + validate_key(key), safe='/')}"

    def _open(self, create: bool) -> None:
        url = self._container_url()
        self._call.reach_or_create(
            "container",
            reach=lambda: self._request("HEAD", url, (200, 204)),
            make=lambda: self._request("PUT", url, (201, 202)),
            create=create,
        )

    # --- the interface -----------------------------------------------------------------------------

    def put(self, key: str, data: bytes | bytearray | memoryview) -> None:
        url = self._object_url(key)
        body = data if isinstance(data, bytes) else bytes(data)
        # Swift checks the ETag against what it received: a corrupted upload is refused, not stored.
        headers = {"ETag": hashlib.md5(body, usedforsecurity=False).hexdigest(), "Content-Type": "application/octet-stream"}
        self._call(key, "store the object", lambda: self._request("PUT", url, (201,), data=body, headers=headers))

    def get(self, key: str) -> bytes:
        url = self._object_url(key)

        def fetch() -> bytes:
            response = self._request("GET", url, (200,))
            data = response.content
            expected = response.headers.get("Content-Length")
            if expected is not None and expected.isdigit() and int(expected) != len(data):
                raise ConnectionResetError(f"body cut short: {len(data)} of {expected} bytes")
            return data

        return self._call(key, "read the object", fetch, not_found=self.no_such_object(key))

    def exists(self, key: str) -> bool:
        url = self._object_url(key)
        return self._call(key, "check the object", lambda: bool(self._request("HEAD", url, (200,))), not_found=lambda: False)

    def list(self, prefix: str = "") -> t.Iterator[BankObject]:
        params = {"format": "json", "prefix": self.prefix + validate_prefix(prefix)}
        strip = len(self.prefix)
        while True:
            # Swift pages at 10,000 names (its container_listing_limit); the marker continues after the last.
            response = self._call(prefix, "list the objects", lambda p=dict(params): self._request("GET", self._container_url(), (200, 204), params=p))
            page = json.loads(response.content or b"[]") if response.status_code == 200 else []
            if not page:
                return
            for item in page:
                if "name" in item:  # "subdir" entries only appear with a delimiter, which is never sent
                    yield BankObject(item["name"][strip:], int(item.get("bytes") or 0))
            params["marker"] = page[-1].get("name") or page[-1].get("subdir")

    def delete_many(self, keys: t.Iterable[str]) -> int:
        limit = self._bulk_limit()
        count = 0
        if not limit:
            for key in keys:
                url = self._object_url(key)
                self._call(key, "delete the object", lambda u=url: self._request("DELETE", u, (204, 200)), not_found=lambda: None)
                count += 1
            return count
        batch: list[str] = []
        for key in keys:
            validate_key(key)
            batch.append(key)
            if len(batch) == limit:
                count += self._bulk_delete(batch)
                batch = []
        if batch:
            count += self._bulk_delete(batch)
        return count

    def _bulk_limit(self) -> int:
        """Deletes per bulk request the cluster allows; 0 when the bulk middleware is absent."""
        if self._bulk_delete_limit is None:
            def info() -> int:
                endpoint = self._connection().object_store.get_endpoint().rstrip("/")
                parts = urllib.parse.urlsplit(endpoint)
                base_path = parts.path[: parts.path.rfind("/v1")] if "/v1" in parts.path else ""
                url = urllib.parse.urlunsplit((parts.scheme, parts.netloc, base_path + "/info", "", ""))
                response = self._request("GET", url, (200, 404, 401, 403))
                if response.status_code != 200:
                    return 0
                bulk = json.loads(response.content).get("bulk_delete") or {}
                return int(bulk.get("max_deletes_per_request") or 0) if bulk else 0
            # /info is optional in Swift: anything but a clear answer means "delete one by one".
            try:
                self._bulk_delete_limit = self._call("", "read the cluster's capabilities", info)
            except BankError:
                self._bulk_delete_limit = 0
            self._bulk_delete_limit = min(self._bulk_delete_limit, 10000)
        return self._bulk_delete_limit

    def _bulk_delete(self, batch: list[str]) -> int:
        lines = "\n".join(urllib.parse.quote(f"/{self.container}/{self.prefix}{key}", safe="/") for key in batch)
        headers = {"Content-Type": "text/plain", "Accept": "application/json"}

        def post() -> None:
            url = self._connection().object_store.get_endpoint().rstrip("/") + "?bulk-delete"
            response = self._request("POST", url, (200,), data=lines.encode("utf-8"), headers=headers)
            result = json.loads(response.content)
            errors = [e for e in result.get("Errors") or () if not str(e[1]).startswith("404")]
            status = str(result.get("Response Status") or "200")
            if errors or not status.startswith("2"):
                code = int(status.split()[0]) if status.split()[0].isdigit() else 500
                shown = "; ".join(f"{name}: {err}" for name, err in errors[:5])
                raise SwiftHTTPError(code, f"bulk delete: {status}", f"{len(errors)} errors: {shown}".encode())

        self._call(batch[0], f"delete {len(batch)} objects", post)
        return len(batch)

    def close(self) -> None:
        with self._lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            try:
                conn.close()
            except Exception:  # pylint: disable=broad-exception-caught
                pass  # closing is best effort
