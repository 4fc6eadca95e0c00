# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The qcow2 writer's images pass qemu-img check and compare equal to the volume they came from."""

from __future__ import annotations

import io
import json
import os
import random

import pytest

from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import IntegrityError, InvalidInputError
from ansible_collections.openstack_dr.bank.plugins.module_utils._imageformats.qcow2_writer import (
    PiecesReader,
    Qcow2Writer,
    allocation_from_ranges,
    file_pieces,
)
from ansible_collections.openstack_dr.bank.plugins.module_utils._imageformats.source import zero_pieces

from .image_helpers import GIB, KIB, MIB, qemu_img, random_extents, read_volume, write_sparse_raw


def write_image(writer: Qcow2Writer, raw_path, image_path, piece_size: int = 256 * KIB) -> None:
    # The upload reads the body with read(n): go through the same adapter.
    with open(raw_path, "rb") as raw, open(image_path, "wb") as image:
        body = PiecesReader(writer.stream(file_pieces(raw, piece_size)), size=writer.size)
        while data := body.read(100 * KIB + 7):
            image.write(data)
    assert os.path.getsize(image_path) == writer.size


def assert_qemu_accepts(image, raw, virtual_size: int) -> None:
    qemu_img("check", "-f", "qcow2", str(image))
    info = json.loads(qemu_img("info", "--output=json", "-f", "qcow2", str(image)))
    assert info["format"] == "qcow2"
    assert info["virtual-size"] == -(-virtual_size // 512) * 512
    qemu_img("compare", "-f", "raw", "-F", "qcow2", str(raw), str(image))


@pytest.mark.parametrize("seed", range(12))
def test_random_allocation_maps_give_images_qemu_checks_and_compares_equal(tmp_path, seed):
    rng = random.Random(seed)
    cluster_size = rng.choice((512, 4 * KIB, 64 * KIB, 64 * KIB, 2 * MIB))
    size = rng.choice((cluster_size, 3 * cluster_size + 512, rng.randrange(1, 64) * 512 * 1024 + 512 * rng.randrange(0, 100), 48 * MIB))
    extents = random_extents(rng, size, rng.randint(0, 15))
    raw, image = tmp_path / "volume.raw", tmp_path / "volume.qcow2"
    write_sparse_raw(raw, size, extents)
    # Some allocated clusters hold zeros (an explicit zero extent): they are stored like data.
    writer = Qcow2Writer(size, allocation_from_ranges(size, [(offset, len(data)) for offset, data in extents], cluster_size), cluster_size)
    write_image(writer, raw, image, piece_size=rng.choice((4 * KIB, 100 * KIB + 1, MIB)))
    assert_qemu_accepts(image, raw, size)
    data, stats = read_volume("qcow2", image)
    assert data == raw.read_bytes()
    assert stats["range_requests"] == 0


def test_odd_sized_volume_pads_to_whole_sectors(tmp_path):
    size = 5 * 64 * KIB + 777
    raw, image = tmp_path / "volume.raw", tmp_path / "volume.qcow2"
    write_sparse_raw(raw, size, [(size - 100, os.urandom(100))])
    write_image(Qcow2Writer(size, allocation_from_ranges(size, [(size - 100, 100)])), raw, image)
    qemu_img("check", "-f", "qcow2", str(image))
    data, _stats = read_volume("qcow2", image)
    assert data == raw.read_bytes() + bytes(-size % 512)


def test_empty_volume(tmp_path):
    raw, image = tmp_path / "volume.raw", tmp_path / "volume.qcow2"
    write_sparse_raw(raw, 0, [])
    writer = Qcow2Writer(0, b"")
    write_image(writer, raw, image)
    assert_qemu_accepts(image, raw, 0)
    assert read_volume("qcow2", image)[0] == b""


def test_one_tebibyte_sparse_volume(tmp_path):
    size = 1 << 40
    extents = [(0, os.urandom(4 * KIB)), (333 * GIB + 5, os.urandom(70 * KIB)), (size - 64 * KIB, os.urandom(64 * KIB))]
    raw, image = tmp_path / "volume.raw", tmp_path / "volume.qcow2"
    write_sparse_raw(raw, size, extents)  # sparse on disk: a few blocks
    writer = Qcow2Writer(size, allocation_from_ranges(size, [(offset, len(data)) for offset, data in extents]))
    assert writer.size == (4 + 3 + 4) * 64 * KIB  # header, L1, refcount table and block, 3 L2 tables, 4 data clusters
    with open(image, "wb") as out:
        for piece in writer.stream(sparse_pieces(size, extents)):
            out.write(piece)
    assert os.path.getsize(image) == writer.size
    assert_qemu_accepts(image, raw, size)


def sparse_pieces(size: int, extents):
    """The volume as the restore feeds it: zero runs from the shared zero buffer, data as bytes."""
    position = 0
    for offset, data in sorted(extents):
        yield from zero_pieces(offset - position)
        yield data
        position = offset + len(data)
    yield from zero_pieces(size - position)


def test_zero_runs_given_as_ordinary_bytes_are_checked_too():
    size = 8 * MIB
    volume = bytearray(size)
    volume[7 * MIB + 3] = 9
    writer = Qcow2Writer(size, allocation_from_ranges(size, [(0, 1)]))
    with pytest.raises(IntegrityError, match="byte 7340035 .cluster 112. holds data"):
        b"".join(writer.stream([bytes(volume[:3 * MIB]), memoryview(volume)[3 * MIB:]]))


def test_data_in_a_cluster_the_map_calls_unallocated_is_refused(tmp_path):
    size = 4 * MIB
    raw = tmp_path / "volume.raw"
    write_sparse_raw(raw, size, [(0, b"x"), (3 * MIB + 5, b"lost byte")])
    writer = Qcow2Writer(size, allocation_from_ranges(size, [(0, 1)]))
    with pytest.raises(IntegrityError, match="byte 3145733 .cluster 48. holds data"):
        for _piece in writer.stream(file_pieces(io.BytesIO(raw.read_bytes()))):
            pass


def test_data_in_an_unallocated_tail_cluster_is_refused():
    size = 64 * KIB + 512
    volume = bytearray(size)
    volume[-1] = 1
    writer = Qcow2Writer(size, allocation_from_ranges(size, []))
    with pytest.raises(IntegrityError, match="cluster 1. holds data"):
        b"".join(writer.stream([bytes(volume)]))


@pytest.mark.parametrize("length, message", [(4 * MIB - 1, "ended after"), (4 * MIB + 1, "longer than")])
def test_raw_input_of_the_wrong_length_is_refused(length, message):
    writer = Qcow2Writer(4 * MIB, allocation_from_ranges(4 * MIB, [(0, 4 * MIB)]))
    with pytest.raises(IntegrityError, match=message):
        b"".join(writer.stream([bytes(length)]))


def test_bad_allocation_maps_and_geometry_are_refused():
    with pytest.raises(InvalidInputError, match="allocation map has"):
        Qcow2Writer(4 * MIB, bytes(9))
    with pytest.raises(InvalidInputError, match="beyond the end"):
        Qcow2Writer(3 * 64 * KIB, b"\x08")
    with pytest.raises(InvalidInputError, match="cluster size"):
        Qcow2Writer(MIB, bytes(1), cluster_size=3000)
    with pytest.raises(InvalidInputError, match="outside"):
        allocation_from_ranges(MIB, [(MIB - 1, 2)])


def test_image_size_is_exact_before_any_data_is_read():
    size = 10 * GIB + 512
    allocation = allocation_from_ranges(size, [(0, GIB), (9 * GIB, 64 * KIB)])
    writer = Qcow2Writer(size, allocation)
    # 1 header, 1 L1, 1 refcount table, 1 refcount block, 3 L2 tables, 16385 data clusters.
    assert writer.size == (4 + 3 + 16385) * 64 * KIB


def test_pieces_reader_reads_in_any_sizes():
    pieces = [b"abc", b"", memoryview(b"defgh"), b"ij"]
    reader = PiecesReader(iter(pieces), size=10)
    assert (len(reader), reader.read(2), reader.read(0), reader.read(4), reader.read(), reader.read(5)) == (10, b"ab", b"", b"cdef", b"ghij", b"")
