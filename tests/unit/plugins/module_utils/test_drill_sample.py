# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""drill_sample: which backups a restore test by sample picks."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.openstack_dr.bank.plugins.filter.drill_sample import FilterModule
from ansible_collections.openstack_dr.bank.plugins.module_utils._drill_sample import sample_backups


def backup(volume: str, day: int, status: str = "complete", name: str | None = None) -> dict:
    return {"id": f"{volume}-{day:02d}", "name": name or f"{volume}-2026-11-{day:02d}", "status": status,
            "created_at": f"2026-11-{day:02d}T01:00:00Z", "source_volume": {"id": f"id-{volume}", "name": volume}}


BANK = [backup(volume, day) for volume in ("db", "web", "logs") for day in range(1, 11)]
BANK += [backup("db", 12, status="in_progress"), backup("web", 11, name="web-drill-x-verify")]


def test_newest_picks_the_newest_complete_backup_of_each_volume():
    picked = sample_backups(BANK, 0, "newest", exclude=["-verify"])
    assert sorted(item["id"] for item in picked) == ["db-10", "logs-10", "web-10"]
    assert all(item["newest_backup_created_at"] == item["created_at"] for item in picked)
    assert len(sample_backups(BANK, 2, "newest")) == 2


def test_random_is_reproducible_with_a_seed_and_records_each_volumes_newest():
    first = sample_backups(BANK, 4, "random", seed="2026-12")
    assert first == sample_backups(list(reversed(BANK)), 4, "random", seed="2026-12")
    assert [item["id"] for item in first] != [item["id"] for item in sample_backups(BANK, 4, "random", seed="other")]
    assert len({item["id"] for item in first}) == 4 and all(item["status"] == "complete" for item in first)
    assert all(item["newest_backup_created_at"] == "2026-11-10T01:00:00Z" or item["source_volume"]["name"] == "web"
               for item in first)


def test_volumes_restrict_the_candidates_by_name_or_id():
    assert {item["source_volume"]["name"] for item in sample_backups(BANK, 0, "random", seed=1, volumes=["db", "id-web"])} <= {"db", "web"}
    assert sample_backups(BANK, 3, volumes=["ghost"]) == []


def test_the_filter_rejects_bad_input():
    drill_sample = FilterModule().filters()["drill_sample"]
    assert [item["id"] for item in drill_sample(BANK, 1)] == ["db-10"] or len(drill_sample(BANK, 1)) == 1
    with pytest.raises(AnsibleFilterError, match="strategy must be one of"):
        drill_sample(BANK, 1, "oldest")
    with pytest.raises(AnsibleFilterError, match="expects the list"):
        drill_sample({"backups": BANK}, 1)
