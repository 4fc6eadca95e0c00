# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A bank in an S3 bucket (AWS, Ceph RGW, Swift's s3api, MinIO, moto...), through boto3."""

from __future__ import annotations

import base64
import datetime
import hashlib
import http.client
import os
import traceback
import typing as t

from ansible_collections.openstack_dr.bank.plugins.module_utils._bank.base import DELETE_BATCH, Bank, BankObject, ObjectLock, ObjectVersion
from ansible_collections.openstack_dr.bank.plugins.module_utils._bank.object_keys import normalize_root_prefix, validate_key, validate_prefix
from ansible_collections.openstack_dr.bank.plugins.module_utils._bank.options import OPTIONS_BY_NAME
from ansible_collections.openstack_dr.bank.plugins.module_utils._bank.retry import BackendErrors, RetryingCall, RetryPolicy
from ansible_collections.openstack_dr.bank.plugins.module_utils._bank.retry import is_transient_os_error, is_transient_status
from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import BankError, InvalidInputError

BOTO3_IMPORT_ERROR: str | None = None
try:
    import boto3
    import botocore.config
    import botocore.exceptions
    import urllib3.exceptions
except ImportError:
    BOTO3_IMPORT_ERROR = traceback.format_exc()
HAS_BOTO3 = BOTO3_IMPORT_ERROR is None

DEFAULT_REGION = "us-east-1"
MIN_POOL_CONNECTIONS = 16
_NOT_FOUND_CODES = frozenset(("404", "NoSuchKey", "NotFound", "NoSuchVersion"))
# What S3 answers for deleting a version Object Lock still protects.
_LOCKED_CODES = frozenset(("AccessDenied",))
# S3 error codes of a refused request, and which option to check.
S3_REFUSAL_ADVICE = {
    # Swift's s3api also answers this for an access key it does not know.
    "SignatureDoesNotMatch": "the request's signature does not match: check bank.secret_key (and that bank.access_key is its access key)",
    "InvalidAccessKeyId": "the service does not know this access key: check bank.access_key",
    "InvalidToken": "check bank.session_token",
    "ExpiredToken": "the temporary credentials have expired: renew bank.session_token",
    "AccessDenied": "the credentials are valid but may not use this bucket: check the bucket's owner and policy for bank.access_key",
}
# S3 error codes that mean "try again later".
TRANSIENT_ERROR_CODES = frozenset((
    "SlowDown", "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottled",
    "TooManyRequestsException", "RequestLimitExceeded", "ProvisionedThroughputExceededException",
    "RequestTimeout", "RequestTimeoutException", "InternalError", "ServiceUnavailable",
    "BandwidthLimitExceeded", "PriorRequestNotComplete",
))


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


def is_transient_code(code: str | None) -> bool:
    """S3 error codes that mean "try again later"."""
    return bool(code) and code in TRANSIENT_ERROR_CODES


def _is_transient_botocore(exc: BaseException) -> bool | None:
    """What botocore's and urllib3's exception types say, or None when ``exc`` is none of theirs."""
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
    return None


def is_transient(exc: BaseException) -> bool:
    """botocore errors worth another attempt: 5xx, throttling, resets, timeouts, cut bodies."""
    if isinstance(exc, PartialDeleteError):
        return True
    verdict = _is_transient_botocore(exc) if HAS_BOTO3 else None
    if verdict is not None:
        return verdict
    if isinstance(exc, http.client.IncompleteRead):
        return True
    return is_transient_os_error(exc)


def is_not_found(exc: BaseException) -> bool:
    """A missing key or bucket (HEAD answers a bare 404)."""
    code, status = _error_code(exc)
    return code in _NOT_FOUND_CODES or status == 404


def cause(exc: BaseException) -> str:
    """The S3 error code, HTTP status and message, or the exception's type and text."""
    if HAS_BOTO3 and isinstance(exc, botocore.exceptions.ClientError):
        code, status = _error_code(exc)
        message = (exc.response.get("Error") or {}).get("Message") or ""
        return f"{code or 'error'} (HTTP {status}){': ' + message if message else ''}"
    return f"{type(exc).__name__}: {exc}"


S3_ERRORS = BackendErrors(is_transient=is_transient, is_not_found=is_not_found, cause=cause)


def _client_config(max_pool_connections: int, connect_timeout: float | None, read_timeout: float | None,
                   checksum_calculation: str) -> botocore.config.Config:
    settings: dict[str, t.Any] = {
        # One retry layer only: ours, so every backend retries the same way.
        "retries": {"total_max_attempts": 1, "mode": "standard"},
        "max_pool_connections": max(MIN_POOL_CONNECTIONS, max_pool_connections),
        "s3": {"addressing_style": "path"},
        "signature_version": "s3v4",
        "request_checksum_calculation": checksum_calculation,
        "response_checksum_validation": checksum_calculation,
    }
    if connect_timeout is not None:
        settings["connect_timeout"] = connect_timeout
    if read_timeout is not None:
        settings["read_timeout"] = read_timeout
    return botocore.config.Config(**settings)


def _region(region: str | None) -> str:
    # Environment fallbacks only where boto3 itself would not look (the endpoint it resolves alone).
    env = (os.environ.get(name) for name in OPTIONS_BY_NAME["region"].env)
    return region or next((value for value in env if value), DEFAULT_REGION)


def _object_lock(mode: str | None, days: int | None, extension_days: int | None) -> ObjectLock | None:
    if days is None:
        stray = [name for name, value in (("object_lock_mode", mode), ("object_lock_extension_days", extension_days)) if value is not None]
        if stray:
            raise InvalidInputError(f"O(bank.{stray[0]}) needs O(bank.object_lock_days)", option=f"bank.{stray[0]}")
        return None
    return ObjectLock(mode or "governance", int(days), 7 if extension_days is None else int(extension_days))


class S3Bank(Bank):
    """Objects are ``<prefix><key>`` in one bucket.

    The parameters named like a ``bank`` suboption are that option (doc_fragments/_bank.py);
    ``None`` means unset. ``client`` replaces the boto3 client (tests drive a fake through it).
    """

    def __init__(
        self,
        *,
        access_key: str | None = None,
        bucket: str | None = None,
        ca_bundle: str | None = None,
        checksum_calculation: str | None = None,
        client: t.Any = None,
        connect_timeout: float | None = None,
        create: bool | None = False,
        endpoint_url: str | None = None,
        max_pool_connections: int = MIN_POOL_CONNECTIONS,
        object_lock_days: int | None = None,
        object_lock_extension_days: int | None = None,
        object_lock_mode: str | None = None,
        prefix: str | None = "",
        profile: str | None = None,
        read_timeout: float | None = None,
        region: str | None = None,
        retry: RetryPolicy | None = None,
        secret_key: str | None = None,
        session_token: str | None = None,
        validate_certs: bool | None = True,
        write_only: bool | None = False,
    ) -> None:
        if not HAS_BOTO3:
            raise InvalidInputError(f"The s3 bank needs the Python library boto3 (pip install boto3): {BOTO3_IMPORT_ERROR}")
        if not bucket:
            raise InvalidInputError("The s3 bank needs O(bank.bucket)")
        checksum_choices = OPTIONS_BY_NAME["checksum_calculation"].choices or ()
        if checksum_calculation is not None and checksum_calculation not in checksum_choices:
            raise InvalidInputError(f"O(bank.checksum_calculation) must be {' or '.join(checksum_choices)}")
        self.bucket = bucket
        self.object_lock = _object_lock(object_lock_mode, object_lock_days, object_lock_extension_days)
        self.write_only = bool(write_only)
        self._versioned: bool | None = None
        # The protected site writes into a bucket another user owns, who must read (and later delete) what it
        # wrote: S3 gives an object to its writer unless the writer hands it over.
        self._put_extra: dict[str, str] = {"ACL": "bucket-owner-full-control"} if self.write_only else {}
        self.prefix = normalize_root_prefix(prefix)
        self.region = _region(region)
        if client is None:
            config = _client_config(max_pool_connections, connect_timeout, read_timeout, checksum_calculation or "when_supported")
            # None lets botocore take AWS_CA_BUNDLE or the profile's ca_bundle, as every AWS tool does.
            verify: bool | str | None = (ca_bundle or None) if validate_certs is not False else False
            credentials = {"aws_access_key_id": access_key, "aws_secret_access_key": secret_key,
                           "aws_session_token": session_token, "profile_name": profile}
            client = self._client(credentials, endpoint_url or None, verify, config)
        self.client = client
        endpoint = (self.client.meta.endpoint_url or "").rstrip("/")
        self.description = f"s3 bank {endpoint}/{bucket}/{self.prefix}".rstrip("/")
        self._call = RetryingCall(self.description, S3_ERRORS, retry)
        self._open(bool(create))

    def _client(self, credentials: dict[str, str | None], endpoint_url: str | None, verify: bool | str | None,
                config: botocore.config.Config) -> t.Any:
        try:
            session = boto3.session.Session(**{name: value or None for name, value in credentials.items()})
            return session.client("s3", region_name=self.region, endpoint_url=endpoint_url, verify=verify, config=config)
        except botocore.exceptions.BotoCoreError as exc:
            raise BankError(f"s3 bank {endpoint_url or ''}/{self.bucket}/{self.prefix}: cannot set up the client: {exc}") from exc

    def _open(self, create: bool) -> None:
        params: dict[str, t.Any] = {"Bucket": self.bucket}
        # us-east-1 is the one region that refuses an explicit LocationConstraint.
        if self.region != DEFAULT_REGION:
            params["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        if self.object_lock is not None:
            # S3 enables Object Lock only when a bucket is created; it cannot be added later.
            params["ObjectLockEnabledForBucket"] = True
        self._call.reach_or_create("bucket", reach=self._reach_bucket, make=lambda: self.client.create_bucket(**params), create=create)
        if self.object_lock is not None:
            self._check_object_lock()

    def _check_object_lock(self) -> None:
        def configuration() -> str | None:
            try:
                answer = self.client.get_object_lock_configuration(Bucket=self.bucket)
            except botocore.exceptions.ClientError as exc:
                if _error_code(exc)[0] == "ObjectLockConfigurationNotFoundError":
                    return None
                raise
            return (answer.get("ObjectLockConfiguration") or {}).get("ObjectLockEnabled")

        if self._call("", "read the bucket's Object Lock configuration", configuration) != "Enabled":
            raise InvalidInputError(
                f"{self.description}: O(bank.object_lock_days) is set but the bucket has no Object Lock. S3 enables it only "
                "when a bucket is created: create a new bucket with Object Lock (or let O(bank.create=true) create it)",
                option="bank.object_lock_days")

    def _reach_bucket(self) -> None:
        """HEAD the bucket; a bare 403 or 404 is explained by what a GET of the bucket answers."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except botocore.exceptions.ClientError as refusal:
            # HEAD answers carry no body, so no S3 error code: the GET's code says which credential
            # is wrong, or that the endpoint is no S3 service at all.
            if _error_code(refusal)[1] in (403, 404):
                self._explain_refusal(refusal)
            raise

    def _explain_refusal(self, refusal: BaseException) -> None:
        try:
            self.client.list_objects_v2(Bucket=self.bucket, MaxKeys=1)
        except botocore.exceptions.ClientError as probe:
            code, status = _error_code(probe)
        else:
            return
        advice = S3_REFUSAL_ADVICE.get(code or "")
        if advice:
            raise BankError(f"{self.description}: the S3 service refused the request ({code}, HTTP {status}): {advice}",
                            bank=self.description) from refusal
        if code and not code.isdigit():
            return  # an S3 answer (NoSuchBucket...): the HEAD's own failure stands
        raise BankError(
            f"{self.description}: the endpoint does not answer as an S3 service (HTTP {status} without an S3 error code): "
            "check endpoint_url (an S3 or Swift s3api endpoint, not Keystone's or Swift's own API)", bank=self.description) from refusal

    def _full(self, key: str) -> str:
        return self.prefix + validate_key(key)

    def put(self, key: str, data: bytes | bytearray | memoryview) -> None:
        full = self._full(key)
        body = data if isinstance(data, bytes) else bytes(data)
        self._call(key, "store the object", lambda: self.client.put_object(Bucket=self.bucket, Key=full, Body=body, **self._put_extra))

    def put_locked(self, key: str, data: bytes | bytearray | memoryview, retain_until: datetime.datetime) -> None:
        if self.object_lock is None:
            self.put(key, data)
            return
        full = self._full(key)
        body = data if isinstance(data, bytes) else bytes(data)
        # Object Lock parameters need an integrity header; Content-MD5 is the one every server takes.
        md5 = base64.b64encode(hashlib.md5(body, usedforsecurity=False).digest()).decode("ascii")
        self._call(key, "store the locked object", lambda: self.client.put_object(
            Bucket=self.bucket, Key=full, Body=body, ContentMD5=md5,
            ObjectLockMode=self.object_lock.mode.upper(), ObjectLockRetainUntilDate=retain_until, **self._put_extra))

    def locked_until(self, key: str) -> tuple[bool, datetime.datetime | None]:
        full = self._full(key)

        def check() -> tuple[bool, datetime.datetime | None]:
            answer = self.client.head_object(Bucket=self.bucket, Key=full)
            return True, answer.get("ObjectLockRetainUntilDate")

        return self._call(key, "check the object's lock", check, not_found=lambda: (False, None))

    def older_versions(self, key: str) -> t.Iterator[bytes]:
        full = self._full(key)

        def versions() -> list[str]:
            answer = self.client.list_object_versions(Bucket=self.bucket, Prefix=full)
            found = [v for v in answer.get("Versions") or () if v.get("Key") == full and not v.get("IsLatest")]
            return [v["VersionId"] for v in sorted(found, key=lambda v: v.get("LastModified") or 0)]

        def fetch(version: str) -> bytes:
            response = self.client.get_object(Bucket=self.bucket, Key=full, VersionId=version)
            with response["Body"] as body:
                return body.read()

        try:
            ids = self._call(key, "list the object's versions", versions)
        except BankError:
            return  # not a versioned bucket, or no right to list versions: nothing older to offer
        for version in ids:
            try:
                yield self._call(key, "read an earlier version", lambda v=version: fetch(v))
            except BankError:
                continue  # written by someone else and not handed over: not ours

    def extend_lock(self, key: str, retain_until: datetime.datetime) -> None:
        if self.object_lock is None:
            return
        full = self._full(key)
        retention = {"Mode": self.object_lock.mode.upper(), "RetainUntilDate": retain_until}
        self._call(key, "extend the object's lock", lambda: self.client.put_object_retention(
            Bucket=self.bucket, Key=full, Retention=retention))

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

        return self._call(key, "read the object", fetch, not_found=self.no_such_object(key))

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
        batch: list[dict] = []
        for key in keys:
            batch.append({"Key": self._full(key)})
            if len(batch) == DELETE_BATCH:
                self._delete_batch(batch)
                count += len(batch)
                batch = []
        if batch:
            self._delete_batch(batch)
            count += len(batch)
        return count

    def _delete_batch(self, batch: list[dict], refusals: frozenset = frozenset()) -> list[str]:
        """Delete ``batch`` (DeleteObjects entries); return the keys refused with a code in ``refusals``."""
        first = batch[0]["Key"][len(self.prefix):]
        remaining = list(batch)
        errors: list[dict] = []
        refused: list[str] = []

        def delete_remaining() -> None:
            # A request can succeed while some of its keys fail (throttling, a busy server): only
            # those are sent again; keys that failed for good are reported after the retries.
            request = {"Objects": list(remaining), "Quiet": True}
            response = self.client.delete_objects(Bucket=self.bucket, Delete=request)
            failed = [e for e in response.get("Errors") or () if e.get("Code") not in _NOT_FOUND_CODES]
            refused.extend(e.get("Key", "")[len(self.prefix):] for e in failed if e.get("Code") in refusals)
            failed = [e for e in failed if e.get("Code") not in refusals]
            transient = [e for e in failed if is_transient_code(e.get("Code"))]
            errors.extend(e for e in failed if not is_transient_code(e.get("Code")))
            if transient:
                again = {(e.get("Key"), e.get("VersionId")) for e in transient}
                remaining[:] = [entry for entry in remaining if (entry["Key"], entry.get("VersionId")) in again]
                raise PartialDeleteError(transient)

        self._call(first, f"delete {len(batch)} objects", delete_remaining)
        if errors:
            shown = "; ".join(f"{e.get('Key', '')[len(self.prefix):]!r}: {e.get('Code')} {e.get('Message', '')}".strip() for e in errors[:5])
            raise BankError(f"{self.description}: cannot delete {len(errors)} of {len(batch)} objects: {shown}", bank=self.description, key=first)
        return refused

    def versioned(self) -> bool:
        if self._versioned is None:
            if self.object_lock is not None:
                self._versioned = True  # Object Lock needs versioning, which cannot then be suspended
                return True
            try:
                answer = self._call("", "read the bucket's versioning", lambda: self.client.get_bucket_versioning(Bucket=self.bucket))
            except BankError:
                answer = {}  # a server without versioning (some S3 gateways do not implement the call)
            # Suspended still keeps the versions written while it was enabled.
            self._versioned = answer.get("Status") in ("Enabled", "Suspended")
        return self._versioned

    def list_versions(self, prefix: str = "") -> t.Iterator[ObjectVersion]:
        params: dict[str, t.Any] = {"Bucket": self.bucket, "Prefix": self.prefix + validate_prefix(prefix)}
        strip = len(self.prefix)
        while True:
            page = self._call(prefix, "list the object versions", lambda p=dict(params): self.client.list_object_versions(**p))
            entries = [ObjectVersion(item["Key"][strip:], item.get("VersionId") or "null", int(item.get("Size") or 0),
                                     (item.get("ETag") or "").strip('"'), bool(item.get("IsLatest")), False)
                       for item in page.get("Versions") or ()]
            entries += [ObjectVersion(item["Key"][strip:], item.get("VersionId") or "null", 0, "", bool(item.get("IsLatest")), True)
                        for item in page.get("DeleteMarkers") or ()]
            # S3 lists versions and delete markers apart: merged, each key's latest comes first.
            yield from sorted(entries, key=lambda version: (version.key, not version.latest))
            if not page.get("IsTruncated"):
                return
            params["KeyMarker"] = page.get("NextKeyMarker")
            params["VersionIdMarker"] = page.get("NextVersionIdMarker")

    def version_locked_until(self, key: str, version_id: str) -> datetime.datetime | None:
        full = self._full(key)

        def check() -> datetime.datetime | None:
            answer = self.client.head_object(Bucket=self.bucket, Key=full, VersionId=version_id)
            return answer.get("ObjectLockRetainUntilDate")

        return self._call(key, "check a version's lock", check, not_found=lambda: None)

    def delete_versions(self, versions: t.Iterable[tuple[str, str]]) -> list[str]:
        refused: list[str] = []
        batch: list[dict] = []
        for key, version_id in versions:
            batch.append({"Key": self._full(key), "VersionId": version_id})
            if len(batch) == DELETE_BATCH:
                refused += self._delete_batch(batch, _LOCKED_CODES)
                batch = []
        if batch:
            refused += self._delete_batch(batch, _LOCKED_CODES)
        return refused

    def close(self) -> None:
        try:
            self.client.close()
        except Exception:  # pylint: disable=broad-exception-caught
            pass  # closing is best effort
