# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The bank's small documents: timestamps, the versioned loader, the progress object."""

from __future__ import annotations

import time

import pytest

from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.documents import (
    PROGRESS_FORMAT,
    Progress,
    parse_utc,
    utc_now,
    utc_timestamp,
)
from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import ManifestError


def test_timestamps_round_trip_to_the_second_in_utc():
    assert utc_timestamp(0) == "1970-01-01T00:00:00Z"
    assert parse_utc(utc_timestamp(1_800_000_000)) == 1_800_000_000
    assert abs(parse_utc(utc_now()) - time.time()) < 2
    assert parse_utc("yesterday") is None and parse_utc(None) is None


@pytest.mark.parametrize("data, message", [
    (b"\xff", "truncated or corrupt"),
    (b"[1]", "is not an openstack_dr.bank backup progress"),
    (b'{"format": "other"}', "is not an openstack_dr.bank backup progress"),
    (b'{"format": "openstack_dr.bank/backup-progress", "format_version": 3}', "format version 3"),
])
def test_the_loader_refuses_what_it_does_not_know(data, message):
    with pytest.raises(ManifestError, match=message):
        PROGRESS_FORMAT.load(data, "here")


def test_progress_round_trips_with_its_format_version():
    progress = Progress(backup_id="i", backup_name="n", status="failed", started_at="s", updated_at=utc_now(),
                        bytes_done=1, bytes_total=2, source={"volume": {}}, error="why")
    data = progress.to_bytes()
    assert PROGRESS_FORMAT.load(data, "here")["format_version"] == 1
    assert Progress.from_bytes(data, "other id", "here") == progress


def test_only_an_in_progress_backup_with_an_old_update_is_stalled():
    old = utc_timestamp(time.time() - 3600)
    assert Progress("i", "n", "in_progress", updated_at=old).stalled(900)
    assert not Progress("i", "n", "failed", updated_at=old).stalled(900)
    assert not Progress("i", "n", "in_progress", updated_at=utc_now()).stalled(900)
    assert not Progress("i", "n", "in_progress", updated_at="garbled").stalled(900)
