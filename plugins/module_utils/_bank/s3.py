# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A bank in an S3 bucket (AWS, Ceph RGW, Swift's s3api, MinIO, moto...), through boto3."""

from __future__ import annotations

import http.client
import os
import traceback
import typing as t

from ansible_collections.openstack_dr.bank.plugins.module_utils._bank.base import Bank, BankObject
from ansible_collections.openstack_dr.bank.plugins.module_utils._bank._keys import normalize_root_prefix, validate_key, validate_prefix
from ansible_collections.openstack_dr.bank.plugins.module_utils._bank._retry import (
    RetryPolicy,
    attempts_of,
    is_transient_code,
    is_transient_os_error,
    is_transient_status,
)
from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import (
    BankError,
    BankObjectNotFoundError,
    InvalidInputError,
)

try:
    import boto3
    import botocore.config
    import botocore.exceptions
    import urllib3.exceptions
except ImportError:
    HAS_BOTO3 = False
    BOTO3_IMPORT_ERROR: str | None = traceback.format_exc()
else:
    HAS_BOTO3 = True
    BOTO3_IMPORT_ERROR = None

DELETE_BATCH = 1000  # DeleteObjects accepts at most 1000 keys per request
DEFAULT_REGION = "us-east-1"
MIN_POOL_CONNECTIONS = 16
_NOT_FOUND_CODES = frozenset(("404", "NoSuchKey", "NotFound"))


def _error_code(exc: BaseException) -> tuple[str | None, int | None]:
    response = getattr(exc, "response", None) or {}
    code = (response.get("Error") or {}).get("Code")
    status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
    return code, status


class PartialDeleteError(Exception):
    """A DeleteObjects answer reported some keys as failed with a transient code (e.g. SlowDown)."""

    def __init__(self, errors: list[dict]) -> None:
        self.errors = errors
        shown = "; ".join(f"{e.get('Key', '')!r}: {e.get('Code')}" for e in errors[:5])
        super().__init__(f"{len(errors)} object(s) not deleted: {shown}")


def is_transient(exc: BaseException) -> bool:
    """botocore errors worth another attempt: 5xx, throttling, resets, timeouts, cut bodies."""
    if isinstance(exc, PartialDeleteError):
        return True
    if HAS_BOTO3:
        if isinstance(exc, botocore.exceptions.ClientError):
            code, status = _error_code(exc)
            return is_transient_code(code) or is_transient_status(status)
        if isinstance(exc, (
            botocore.exceptions.EndpointConnectionError,
            botocore.exceptions.ConnectionClosedError,
            botocore.exceptions.ConnectTimeoutError,
            botocore.exceptions.ReadTimeoutError,
            botocore.exceptions.IncompleteReadError,
            botocore.exceptions.ResponseStreamingError,
        )):
            return True
        if isinstance(exc, botocore.exceptions.SSLError):
            return False
        if isinstance(exc, botocore.exceptions.HTTPClientError):
            return True
        # A body cut mid-way surfaces from StreamingBody.read() as urllib3's error, unwrapped.
        if isinstance(exc, (urllib3.exceptions.ProtocolError, urllib3.exceptions.ReadTimeoutError)):
            return True
    if isinstance(exc, http.client.IncompleteRead):
        return True
    return is_transient_os_error(exc)


def _cause(exc: BaseException) -> str:
    if HAS_BOTO3 and isinstance(exc, botocore.exceptions.ClientError):
        code, status = _error_code(exc)
        message = (exc.response.get("Error") or {}).get("Message") or ""
        return f"{code or 'error'} (HTTP {status}){': ' + message if message else ''}"
    return f"{type(exc).__name__}: {exc}"


class S3Bank(Bank):
    """Objects are ``<prefix><key>`` in one bucket."""

    def __init__(
        self,
        bucket: str,
        prefix: str | None = "",
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        session_token: str | None = None,
        profile: str | None = None,
        validate_certs: bool = True,
        ca_bundle: str | None = None,
        checksum_calculation: str | None = "when_supported",
        create: bool = False,
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
        retry: RetryPolicy | None = None,
        max_pool_connections: int = MIN_POOL_CONNECTIONS,
    ) -> None:
        if not HAS_BOTO3:
            raise InvalidInputError(f"The s3 bank needs the Python library boto3, which cannot be imported: {BOTO3_IMPORT_ERROR}")
        if not bucket:
            raise InvalidInputError("The s3 bank needs O(bank.bucket)")
        if checksum_calculation not in (None, "when_supported", "when_required"):
            raise InvalidInputError("O(bank.checksum_calculation) must be when_supported or when_required")
        self.bucket = bucket
        self.prefix = normalize_root_prefix(prefix)
        self.retry = retry or RetryPolicy()
        # Environment fallbacks only where boto3 itself would not look (region and endpoint it resolves alone).
        region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
        endpoint_url = endpoint_url or None
        config_kwargs: dict[str, t.Any] = {
            # One retry layer only: ours, so every backend retries the same way.
            "retries": {"total_max_attempts": 1, "mode": "standard"},
            "max_pool_connections": max(MIN_POOL_CONNECTIONS, max_pool_connections),
            "s3": {"addressing_style": "path"},
            "signature_version": "s3v4",
        }
        if connect_timeout is not None:
            config_kwargs["connect_timeout"] = connect_timeout
        if read_timeout is not None:
            config_kwargs["read_timeout"] = read_timeout
        if checksum_calculation:
            config_kwargs["request_checksum_calculation"] = checksum_calculation
            config_kwargs["response_checksum_validation"] = checksum_calculation
        # None lets botocore take AWS_CA_BUNDLE or the profile's ca_bundle, as every AWS tool does.
        verify: bool | str | None = (ca_bundle or None) if validate_certs else False
        try:
            session = boto3.session.Session(
                aws_access_key_id=access_key or None,
                aws_secret_access_key=secret_key or None,
                aws_session_token=session_token or None,
                profile_name=profile or None,
            )
            self.client = session.client(
                "s3",
                region_name=region,
                endpoint_url=endpoint_url,
                verify=verify,
                config=botocore.config.Config(**config_kwargs),
            )
        except botocore.exceptions.BotoCoreError as exc:
            raise BankError(f"s3 bank {endpoint_url or ''}/{bucket}/{self.prefix}: cannot set up the client: {exc}") from exc
        self.region = region
        endpoint = (self.client.meta.endpoint_url or "").rstrip("/")
        self.description = f"s3 bank {endpoint}/{bucket}/{self.prefix}".rstrip("/")
        self._open(create)

    def _call(self, key: str, what: str, func: t.Callable[[], t.Any], not_found: t.Callable[[], t.Any] | None = None) -> t.Any:
        try:
            return self.retry.call(func, is_transient)
        except BankError:
            raise
        except Exception as exc:  # pylint: disable=broad-exception-caught
            code, status = _error_code(exc)
            if not_found is not None and (code in _NOT_FOUND_CODES or status == 404):
                return not_found()
            attempts = attempts_of(exc)
            after = f" after {attempts} attempts" if attempts > 1 else ""
            where = f", key {key!r}" if key else ""
            raise BankError(
                f"{self.description}{where}: cannot {what}{after}: {_cause(exc)}", bank=self.description, key=key,
            ) from exc

    def _open(self, create: bool) -> None:
        def missing() -> None:
            if not create:
                raise BankError(f"{self.description}: the bucket does not exist (set create: true to create it)", bank=self.description)
            params: dict[str, t.Any] = {"Bucket": self.bucket}
            # us-east-1 is the one region that refuses an explicit LocationConstraint.
            if self.region != DEFAULT_REGION:
                params["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
            self._call("", "create the bucket", lambda: self.client.create_bucket(**params))

        self._call("", "reach the bucket", lambda: self.client.head_bucket(Bucket=self.bucket), not_found=missing)

    def _full(self, key: str) -> str:
        return self.prefix + validate_key(key)

    def put(self, key: str, data: bytes | bytearray | memoryview) -> None:
        full = self._full(key)
        body = data if isinstance(data, bytes) else bytes(data)
        self._call(key, "store the object", lambda: self.client.put_object(Bucket=self.bucket, Key=full, Body=body))

    def get(self, key: str) -> bytes:
        full = self._full(key)

        def fetch() -> bytes:
            # The body is read inside the retried call so a connection cut mid-body is retried too.
            response = self.client.get_object(Bucket=self.bucket, Key=full)
            with response["Body"] as body:
                data = body.read()
            expected = response.get("ContentLength")
            if expected is not None and len(data) != expected:
                raise botocore.exceptions.IncompleteReadError(actual_bytes=len(data), expected_bytes=expected)
            return data

        def missing() -> bytes:
            raise BankObjectNotFoundError(f"{self.description}, key {key!r}: no such object", bank=self.description, key=key)

        return self._call(key, "read the object", fetch, not_found=missing)

    def exists(self, key: str) -> bool:
        full = self._full(key)

        def check() -> bool:
            self.client.head_object(Bucket=self.bucket, Key=full)
            return True

        return self._call(key, "check the object", check, not_found=lambda: False)

    def list(self, prefix: str = "") -> t.Iterator[BankObject]:
        full_prefix = self.prefix + validate_prefix(prefix)
        params: dict[str, t.Any] = {"Bucket": self.bucket, "Prefix": full_prefix}
        strip = len(self.prefix)
        while True:
            page = self._call(prefix, "list the objects", lambda p=dict(params): self.client.list_objects_v2(**p))
            for item in page.get("Contents") or ():
                yield BankObject(item["Key"][strip:], int(item.get("Size") or 0))
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return
            params["ContinuationToken"] = token

    def delete_many(self, keys: t.Iterable[str]) -> int:
        count = 0
        batch: list[str] = []
        for key in keys:
            batch.append(self._full(key))
            if len(batch) == DELETE_BATCH:
                count += self._delete_batch(batch)
                batch = []
        if batch:
            count += self._delete_batch(batch)
        return count

    def _delete_batch(self, batch: list[str]) -> int:
        first = batch[0][len(self.prefix):]
        remaining = list(batch)
        errors: list[dict] = []

        def delete_remaining() -> None:
            # A request can succeed while some of its keys fail (throttling, a busy server): only
            # those are sent again; keys that failed for good are reported after the retries.
            request = {"Objects": [{"Key": key} for key in remaining], "Quiet": True}
            response = self.client.delete_objects(Bucket=self.bucket, Delete=request)
            failed = [e for e in response.get("Errors") or () if e.get("Code") not in _NOT_FOUND_CODES]
            transient = [e for e in failed if is_transient_code(e.get("Code"))]
            errors.extend(e for e in failed if not is_transient_code(e.get("Code")))
            if transient:
                remaining[:] = [e.get("Key") for e in transient]
                raise PartialDeleteError(transient)

        self._call(first, f"delete {len(batch)} objects", delete_remaining)
        if errors:
            shown = "; ".join(f"{e.get('Key', '')[len(self.prefix):]!r}: {e.get('Code')} {e.get('Message', '')}".strip() for e in errors[:5])
            raise BankError(f"{self.description}: cannot delete {len(errors)} of {len(batch)} objects: {shown}", bank=self.description, key=first)
        return len(batch)

    def close(self) -> None:
        try:
            self.client.close()
        except Exception:  # pylint: disable=broad-exception-caught
            pass  # closing is best effort
