# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""DeleteObjects answers that report some keys as failed: transient ones are retried, key by key."""

from __future__ import annotations

import pytest

from ansible_collections.openstack_dr.bank.plugins.module_utils._bank._retry import RetryPolicy
from ansible_collections.openstack_dr.bank.plugins.module_utils._bank.s3 import S3Bank
from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import BankError


class FakeS3Client:
    """The boundary: answers DeleteObjects with the given responses, in order, and records the keys asked."""

    def __init__(self, answers: list[dict]) -> None:
        self.answers = list(answers)
        self.requests: list[list[str]] = []

    def delete_objects(self, Bucket: str, Delete: dict) -> dict:  # pylint: disable=invalid-name
        assert Bucket == "bank-bucket" and Delete["Quiet"] is True
        self.requests.append([entry["Key"] for entry in Delete["Objects"]])
        return self.answers.pop(0)


def bank_with(client: FakeS3Client, attempts: int = 4) -> S3Bank:
    bank = S3Bank.__new__(S3Bank)  # no boto3 client, no bucket check: only the deletion logic is under test
    bank.bucket = "bank-bucket"
    bank.prefix = "dr/"
    bank.client = client
    bank.retry = RetryPolicy(max_attempts=attempts, sleep=lambda seconds: None, rand=lambda: 0.0)
    bank.description = "s3 bank test/bank-bucket/dr"
    return bank


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
