# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The backup flow's own pieces: the image's checksum is verified over its one sequential download."""

from __future__ import annotations

import hashlib

import pytest

from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import IntegrityError
from ansible_collections.openstack_dr.bank.plugins.module_utils._volume_backup import HashedImageSource


class BytesSource:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.size = len(data)

    def stream(self, offset: int):
        for start in range(offset, self.size, 1000):
            yield self.data[start:start + 1000]

    def read_range(self, offset: int, length: int) -> bytes:
        return self.data[offset:offset + length]


DATA = bytes(range(256)) * 40


def test_the_checksum_of_the_download_is_verified():
    source = HashedImageSource(BytesSource(DATA), ("sha512", hashlib.sha512(DATA).hexdigest().upper()))
    assert b"".join(source.stream(0)) == DATA and source.read_range(10, 5) == DATA[10:15]
    source.check("image x")


def test_a_damaged_download_is_named():
    source = HashedImageSource(BytesSource(DATA[:-1] + b"!"), ("sha512", hashlib.sha512(DATA).hexdigest()))
    list(source.stream(0))
    with pytest.raises(IntegrityError, match="sha512 of image x .* Glance says"):
        source.check("image x")


def test_a_second_pass_or_a_late_start_is_refused_since_the_hash_would_not_cover_the_file():
    source = HashedImageSource(BytesSource(DATA), ("sha512", "0" * 128))
    with pytest.raises(IntegrityError, match="one pass"):
        list(source.stream(512))
    source = HashedImageSource(BytesSource(DATA), None)
    list(source.stream(0))
    with pytest.raises(IntegrityError, match="one pass"):
        list(source.stream(0))
    source.check("image without a checksum")


def test_a_failed_read_stops_the_hash_thread():
    source = HashedImageSource(BytesSource(DATA), ("sha512", "0" * 128))
    next(source.stream(0))
    source.abandon()
    source.hasher._thread.join(10)  # pylint: disable=protected-access
    assert not source.hasher._thread.is_alive()  # pylint: disable=protected-access


def test_check_mode_never_creates_the_bank_but_says_it_would(tmp_path):
    from ansible_collections.openstack_dr.bank.plugins.module_utils._volume_backup import complete_backup, open_backup_bank

    config = {"type": "file", "path": str(tmp_path / "bank"), "create": True}
    assert open_backup_bank(config, check_mode=True) is None
    assert not (tmp_path / "bank").exists()
    assert complete_backup(None, "nightly") is None
    assert open_backup_bank(config, check_mode=False) is not None
    assert (tmp_path / "bank").is_dir()
    assert open_backup_bank(config, check_mode=True) is not None
