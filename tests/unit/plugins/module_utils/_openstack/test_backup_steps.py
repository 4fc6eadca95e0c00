# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backup steps: the copy mode choice."""

from __future__ import annotations

import pytest

from ansible_collections.openstack_dr.bank.plugins.module_utils import _notices as notices
from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import InvalidInputError, OpenStackError
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack import backup_steps
from ansible_collections.openstack_dr.bank.tests.unit.plugins.module_utils._openstack.fakes import resource


@pytest.mark.parametrize("status, asked, force, expected", [
    ("available", "auto", False, "direct"),
    ("in-use", "auto", True, "snapshot"),
    ("available", "snapshot", False, "snapshot"),
    ("available", "direct", False, "direct"),
])
def test_copy_mode_choice(status, asked, force, expected):
    assert backup_steps.choose_copy_mode(resource(id="v", status=status), asked, force) == expected


def test_direct_copy_of_an_attached_volume_is_refused():
    with pytest.raises(InvalidInputError, match="direct needs a detached"):
        backup_steps.choose_copy_mode(resource(id="v", status="in-use"), "direct", True)


def test_snapshot_of_an_attached_volume_needs_force():
    with pytest.raises(InvalidInputError, match="force"):
        backup_steps.choose_copy_mode(resource(id="v", status="in-use"), "auto", False)


# -- the image download: byte ranges, and a store that cannot seek ------------------------------

class FakeResponse:
    def __init__(self, status_code: int, body: bytes = b"") -> None:
        self.status_code = status_code
        self.content = body
        self.closed = False

    def iter_content(self, size: int):
        for start in range(0, len(self.content), size):
            yield self.content[start:start + size]

    def close(self) -> None:
        self.closed = True


class FakeImageAPI:
    """Glance's image download: with ``seekable`` false it answers a Range request as the RBD store does (400)."""

    def __init__(self, data: bytes, seekable: bool) -> None:
        self.data = data
        self.seekable = seekable
        self.requests: list[str | None] = []

    def get(self, url: str, headers: dict, stream: bool) -> FakeResponse:
        asked = headers.get("Range")
        self.requests.append(asked)
        if asked is None:
            return FakeResponse(200, self.data)
        if not self.seekable:
            return FakeResponse(400, b"StoreRandomGetNotSupported")
        first, last = asked[len("bytes="):].split("-")
        return FakeResponse(206, self.data[int(first):int(last) + 1 if last else None])


def image_source(data: bytes, seekable: bool) -> backup_steps.GlanceImageSource:
    conn = type("Conn", (), {})()
    conn.image = FakeImageAPI(data, seekable)
    return backup_steps.GlanceImageSource(conn, resource(id="img", size=len(data)), piece_size=1000)


@pytest.mark.parametrize("seekable", [True, False])
def test_a_range_comes_back_exact_whether_or_not_the_store_can_seek(seekable):
    data = bytes(range(256)) * 40
    source = image_source(data, seekable)
    notices.take()
    assert source.read_range(3000, 2500) == data[3000:5500]
    assert source.read_range(9000, 240) == data[9000:9240]
    assert source.range_requests == 2
    told = notices.take()
    if seekable:
        assert source.conn.image.requests == ["bytes=3000-5499", "bytes=9000-9239"] and told == []
        assert source.bytes_ranged == 2740
    else:
        # One refused range, then every read behind the stream is a download from the start, cut where it is needed.
        assert source.conn.image.requests == ["bytes=3000-5499", None, None] and not source.ranges_served
        # Downloads stop at the piece that holds the last byte needed (pieces of 1000 bytes here).
        assert source.bytes_ranged == 6000 + 10000 and len(told) == 1 and "cannot serve byte ranges" in told[0]


def test_a_server_that_ignores_range_is_an_error_never_wrong_bytes():
    source = image_source(bytes(5000), True)
    source.conn.image.get = lambda url, headers, stream: FakeResponse(200, bytes(5000))
    with pytest.raises(OpenStackError, match="answered 200 to a range request"):
        source.read_range(100, 10)
