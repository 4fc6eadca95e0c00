# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""temporaries_cleanup over a stand-in cloud: what a drill's cleanup removes, in which order, listing the site once."""

from __future__ import annotations

import types

from ansible_collections.openstack_dr.bank.plugins.module_utils import _temporaries_cleanup
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack import tags

from ._openstack.fakes import FakeConnection, resource
from .test_inputs import CLEANUP


def _counting_listings(conn: FakeConnection) -> dict[str, int]:
    counts = {"images": 0, "volumes": 0}
    images, volumes = conn.image.images, conn.block_storage.volumes

    def count_images():
        counts["images"] += 1
        return images()

    def count_volumes(details=True, **query):
        counts["volumes"] += 1
        return volumes(details, **query)

    conn.image.images = count_images
    conn.block_storage.volumes = count_volumes
    return counts


def test_a_drill_cleanup_removes_its_volumes_before_their_parent_images_and_lists_each_kind_once(monkeypatch):
    conn = FakeConnection()
    conn.image.add("image", resource(id="orphan-image", name="dr-bank-tmp-x-image", properties=tags.temporary_tags("run-1", "db", None)))
    conn.block_storage.add("volume", resource(id="drilled", name="db", metadata={tags.DRILL_TAG: "drill-7"}))
    parent_marks = dict(tags.temporary_tags("run-2", "db", None), **{tags.PARENT_OF_TAG: "drilled"})
    conn.image.add("image", resource(id="parent", name="dr-bank-tmp-db-image", properties=parent_marks))
    conn.block_storage.add("volume", resource(id="kept", name="app", metadata={tags.DRILL_TAG: "another-drill"}))
    counts = _counting_listings(conn)
    monkeypatch.setattr(_temporaries_cleanup, "connect", lambda params: conn)
    module = types.SimpleNamespace(params=dict(CLEANUP, drill_run_id="drill-7"), check_mode=False)

    result = _temporaries_cleanup.run_temporaries_cleanup(module)

    assert [(item["type"], item["id"]) for item in result["removed"]] == [
        ("image", "orphan-image"), ("volume", "drilled"), ("image", "parent")]
    assert set(conn.block_storage.items["volume"]) == {"kept"} and conn.image.items["image"] == {}
    assert counts == {"images": 1, "volumes": 1}, "each kind is listed once per cleanup"


def test_check_mode_finds_the_same_and_removes_nothing(monkeypatch):
    conn = FakeConnection()
    conn.block_storage.add("volume", resource(id="drilled", name="db", metadata={tags.DRILL_TAG: "drill-7"}))
    monkeypatch.setattr(_temporaries_cleanup, "connect", lambda params: conn)
    module = types.SimpleNamespace(params=dict(CLEANUP, drill_run_id="drill-7"), check_mode=True)

    result = _temporaries_cleanup.run_temporaries_cleanup(module)

    assert result["changed"] and [item["id"] for item in result["found"]] == ["drilled"] and result["removed"] == []
    assert conn.deleted == []
