# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The S3 bank against a fake client: how it reads S3 errors, opens its bucket, and deletes in bulk."""

from __future__ import annotations

import types

import botocore.exceptions
import pytest

from ansible_collections.openstack_dr.bank.plugins.module_utils._bank import s3
from ansible_collections.openstack_dr.bank.plugins.module_utils._bank.retry import RetryPolicy
from ansible_collections.openstack_dr.bank.plugins.module_utils._bank.s3 import S3Bank
from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import BankError, BankObjectNotFoundError


def client_error(code: str, status: int) -> botocore.exceptions.ClientError:
    return botocore.exceptions.ClientError({"Error": {"Code": code, "Message": f"{code} says no"},
                                            "ResponseMetadata": {"HTTPStatusCode": status}}, "HeadObject")


class FakeS3Client:
    """The boundary: answers DeleteObjects with the given responses, in order, and records the keys asked."""

    meta = types.SimpleNamespace(endpoint_url="http://s3.test:8080/")

    def __init__(self, answers: list[dict] | None = None, bucket_missing: bool = False,
                 refusal: tuple[str, int] | None = None) -> None:
        self.answers = list(answers or [])
        self.requests: list[list[str]] = []
        self.bucket_missing = bucket_missing
        self.created: list[dict] = []
        # What a GET of the bucket answers when HEAD was refused: an S3 code, or a bare status (no S3 service).
        self.refusal = refusal

    def head_bucket(self, Bucket: str) -> dict:  # pylint: disable=invalid-name
        assert Bucket == "bank-bucket"
        if self.refusal:
            raise client_error(str(self.refusal[1]), self.refusal[1])
        if self.bucket_missing:
            raise client_error("404", 404)
        return {}

    def list_objects_v2(self, Bucket: str, MaxKeys: int) -> dict:  # pylint: disable=invalid-name
        if self.refusal:
            raise client_error(*self.refusal)
        if self.bucket_missing:
            raise client_error("NoSuchBucket", 404)
        return {}

    def create_bucket(self, **params) -> dict:
        self.created.append(params)
        self.bucket_missing = False
        return {}

    def head_object(self, Bucket: str, Key: str) -> dict:  # pylint: disable=invalid-name
        raise client_error("404", 404)

    def get_object(self, Bucket: str, Key: str) -> dict:  # pylint: disable=invalid-name
        raise client_error("NoSuchKey", 404)

    def delete_objects(self, Bucket: str, Delete: dict) -> dict:  # pylint: disable=invalid-name
        assert Bucket == "bank-bucket" and Delete["Quiet"] is True
        self.requests.append([entry["Key"] for entry in Delete["Objects"]])
        return self.answers.pop(0)


def bank_with(client: FakeS3Client, attempts: int = 4, **options) -> S3Bank:
    retry = RetryPolicy(max_attempts=attempts, sleep=lambda seconds: None, rand=lambda: 0.0)
    return S3Bank(bucket="bank-bucket", prefix="dr", client=client, retry=retry, **options)


def failed(key: str, code: str) -> dict:
    return {"Key": key, "Code": code, "Message": f"{code} for {key}"}


def test_keys_failed_with_a_transient_code_are_sent_again_alone():
    client = FakeS3Client([
        {"Errors": [failed("dr/chunks/bb", "SlowDown"), failed("dr/chunks/cc", "InternalError")]},
        {"Errors": [failed("dr/chunks/cc", "ServiceUnavailable")]},
        {},
    ])
    assert bank_with(client).delete_many(["chunks/aa", "chunks/bb", "chunks/cc"]) == 3
    assert client.requests == [["dr/chunks/aa", "dr/chunks/bb", "dr/chunks/cc"],
                               ["dr/chunks/bb", "dr/chunks/cc"],
                               ["dr/chunks/cc"]]


def test_missing_keys_are_not_errors():
    client = FakeS3Client([{"Errors": [failed("dr/chunks/aa", "NoSuchKey")]}])
    assert bank_with(client).delete_many(["chunks/aa"]) == 1
    assert len(client.requests) == 1


def test_a_key_refused_for_good_is_reported_after_the_others_are_retried():
    client = FakeS3Client([
        {"Errors": [failed("dr/chunks/aa", "AccessDenied"), failed("dr/chunks/bb", "SlowDown")]},
        {},
    ])
    with pytest.raises(BankError, match=r"cannot delete 1 of 2 objects: 'chunks/aa': AccessDenied"):
        bank_with(client).delete_many(["chunks/aa", "chunks/bb"])
    assert client.requests == [["dr/chunks/aa", "dr/chunks/bb"], ["dr/chunks/bb"]]


def test_keys_that_keep_failing_give_up_after_the_bound():
    client = FakeS3Client([{"Errors": [failed("dr/chunks/aa", "SlowDown")]}] * 3)
    with pytest.raises(BankError, match=r"after 3 attempts: PartialDeleteError: 1 object\(s\) not deleted: 'dr/chunks/aa': SlowDown"):
        bank_with(client, attempts=3).delete_many(["chunks/aa"])
    assert len(client.requests) == 3


def test_the_description_names_endpoint_bucket_and_prefix():
    assert bank_with(FakeS3Client()).description == "s3 bank http://s3.test:8080/bank-bucket/dr"


def test_a_missing_bucket_is_an_error_unless_created_in_its_region():
    with pytest.raises(BankError, match=r"bank-bucket/dr: the bucket does not exist \(set create: true"):
        bank_with(FakeS3Client(bucket_missing=True))
    client = FakeS3Client(bucket_missing=True)
    bank_with(client, create=True, region="eu-west-3")
    assert client.created == [{"Bucket": "bank-bucket", "CreateBucketConfiguration": {"LocationConstraint": "eu-west-3"}}]


@pytest.mark.parametrize("refusal, message", [
    (("SignatureDoesNotMatch", 403), r"SignatureDoesNotMatch, HTTP 403\): .*check bank.secret_key"),
    (("InvalidAccessKeyId", 403), r"check bank.access_key"),
    (("AccessDenied", 403), r"may not use this bucket"),
    (("404", 404), r"does not answer as an S3 service \(HTTP 404 without an S3 error code\): check endpoint_url"),
    (("403", 403), r"does not answer as an S3 service"),
])
def test_a_refused_bucket_says_which_option_to_check(refusal: tuple[str, int], message: str):
    for create in (False, True):
        client = FakeS3Client(refusal=refusal)
        with pytest.raises(BankError, match=message):
            bank_with(client, create=create)
        assert client.created == []


def test_us_east_1_buckets_are_created_without_a_location_constraint(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    client = FakeS3Client(bucket_missing=True)
    bank_with(client, create=True)
    assert client.created == [{"Bucket": "bank-bucket"}]


def test_the_region_falls_back_to_the_aws_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ca-central-1")
    assert bank_with(FakeS3Client()).region == "ca-central-1"
    monkeypatch.setenv("AWS_REGION", "ap-south-1")
    assert bank_with(FakeS3Client()).region == "ap-south-1"
    assert bank_with(FakeS3Client(), region="eu-north-1").region == "eu-north-1"


def test_absent_objects_are_not_found_not_failures():
    bank = bank_with(FakeS3Client())
    assert bank.exists("manifests/x.json") is False
    with pytest.raises(BankObjectNotFoundError, match=r"bank-bucket/dr, key 'manifests/x.json': no such object"):
        bank.get("manifests/x.json")


@pytest.mark.parametrize("code, transient", [("SlowDown", True), ("Throttling", True), ("InternalError", True), ("RequestTimeout", True),
                                             ("AccessDenied", False), ("NoSuchKey", False), (None, False)])
def test_transient_s3_codes(code: str | None, transient: bool) -> None:
    assert s3.is_transient_code(code) is transient


@pytest.mark.parametrize("exc, transient", [
    (client_error("SlowDown", 503), True), (client_error("AccessDenied", 403), False), (client_error("Weird", 502), True),
    (botocore.exceptions.EndpointConnectionError(endpoint_url="http://x"), True),
    (botocore.exceptions.SSLError(endpoint_url="https://x", error="bad cert"), False),
    (s3.PartialDeleteError([{"Key": "k", "Code": "SlowDown"}]), True), (ConnectionResetError(), True), (ValueError(), False),
])
def test_which_s3_errors_are_retried(exc: BaseException, transient: bool) -> None:
    assert s3.is_transient(exc) is transient


def test_not_found_is_a_404_or_a_missing_key():
    assert s3.is_not_found(client_error("404", 404)) and s3.is_not_found(client_error("NoSuchKey", 404))
    assert not s3.is_not_found(client_error("AccessDenied", 403)) and not s3.is_not_found(ValueError())


def test_the_cause_gives_code_status_and_message():
    assert s3.cause(client_error("AccessDenied", 403)) == "AccessDenied (HTTP 403): AccessDenied says no"
    assert s3.cause(ConnectionResetError("reset by peer")) == "ConnectionResetError: reset by peer"
