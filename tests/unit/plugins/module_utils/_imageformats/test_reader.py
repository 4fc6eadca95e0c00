# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Images qemu-img writes read back as the exact raw volume, in one hashed forward pass."""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import tracemalloc

import pytest

from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import IntegrityError, InvalidInputError
from ansible_collections.openstack_dr.bank.plugins.module_utils._imageformats.reader import open_raw_stream
from ansible_collections.openstack_dr.bank.plugins.module_utils._imageformats.source import FileImageSource, is_shared_zero

from .image_helpers import GIB, KIB, MIB, qemu_img, random_extents, read_volume, sha512_of, write_sparse_raw

CONVERSIONS = {
    "vdi": ["-O", "vdi"],
    "qcow2": ["-O", "qcow2"],
    "qcow2-zlib": ["-c", "-O", "qcow2"],
    "qcow2-zstd": ["-c", "-O", "qcow2", "-o", "compression_type=zstd"],
    "qcow2-v2-4k": ["-O", "qcow2", "-o", "compat=0.10,cluster_size=4096"],
    "qcow2-zlib-2m": ["-c", "-O", "qcow2", "-o", "cluster_size=2M"],
    "vmdk": ["-O", "vmdk"],
    "raw": ["-O", "raw"],
}


def convert(tmp_path, raw, variant: str):
    image = tmp_path / f"image.{variant}"
    qemu_img("convert", "-f", "raw", *CONVERSIONS[variant], str(raw), str(image))
    return image


@pytest.mark.parametrize("variant", sorted(CONVERSIONS))
@pytest.mark.parametrize("seed", range(6))
def test_image_reads_back_as_the_raw_volume(tmp_path, variant, seed):
    rng = random.Random(f"{variant}-{seed}")
    size = rng.choice((1, 512, 3 * 512, MIB, 5 * MIB + 512 * rng.randrange(1, 2048), 40 * MIB + 4 * KIB * rng.randrange(1, 256)))
    raw = tmp_path / "volume.raw"
    write_sparse_raw(raw, size, random_extents(rng, size, rng.randint(0, 12)))
    image = convert(tmp_path, raw, variant)
    data, stats = read_volume(variant.split("-")[0], image, expected_hash=("sha512", sha512_of(image)))
    # qemu sees a raw file as whole sectors: an odd tail reads as zeros up to the sector's end.
    assert data == raw.read_bytes().ljust(-(-size // 512) * 512, b"\0")
    assert stats["bytes_streamed"] == os.path.getsize(image)
    if variant != "vmdk":  # vmdk's grain tables come before its grains: they may be read back
        assert stats["range_requests"] == 0


@pytest.mark.parametrize("variant", ["vdi", "qcow2", "qcow2-zlib", "vmdk"])
def test_unallocated_regions_are_not_downloaded(tmp_path, variant):
    size = 256 * MIB
    raw = tmp_path / "volume.raw"
    write_sparse_raw(raw, size, [(3 * MIB, os.urandom(MIB)), (200 * MIB, os.urandom(4 * KIB))])
    image = convert(tmp_path, raw, variant)
    stream = open_raw_stream(variant.split("-")[0], FileImageSource(image), "sparse")
    zero_bytes = 0
    produced = bytearray()
    for piece in stream.pieces():
        zero_bytes += len(piece) if is_shared_zero(piece) else 0
        assert len(piece) <= 4 * MIB
        produced += piece
    assert bytes(produced) == raw.read_bytes()
    assert stream.stats["zero_bytes"] == zero_bytes >= size - 2 * MIB
    assert stream.stats["bytes_streamed"] + stream.stats["bytes_ranged"] < 4 * MIB


def test_vmdk_grain_tables_behind_the_data_are_read_back_in_windows(tmp_path):
    # 80 GiB: 2560 grain tables of 2 KiB per directory (5 MiB), more than one 4 MiB window.
    size = 80 * GIB
    extents = [(offset, os.urandom(64 * KIB)) for offset in (0, 7 * GIB + 12345, 40 * GIB, size - 64 * KIB)]
    raw = tmp_path / "volume.raw"
    write_sparse_raw(raw, size, extents)
    image = convert(tmp_path, raw, "vmdk")
    stream = open_raw_stream("vmdk", FileImageSource(image), "big.vmdk", expected_hash=("sha512", sha512_of(image)))
    position = 0
    for piece in stream.pieces():
        if not is_shared_zero(piece):
            for offset, data in extents:
                overlap_start, overlap_end = max(offset, position), min(offset + len(data), position + len(piece))
                if overlap_start < overlap_end:
                    assert bytes(piece[overlap_start - position:overlap_end - position]) == data[overlap_start - offset:overlap_end - offset]
        position += len(piece)
    assert position == size
    assert 1 <= stream.stats["range_requests"] <= 4
    assert stream.stats["bytes_streamed"] == os.path.getsize(image)


def test_clusters_written_out_of_guest_order_are_fetched_by_range_and_the_hash_still_covers_the_file(tmp_path):
    image = tmp_path / "shuffled.qcow2"
    qemu_img("create", "-f", "qcow2", str(image), "16M")
    expected = bytearray(16 * MIB)
    for cluster, pattern in ((200, 0x11), (3, 0x22), (100, 0x33), (0, 0x44)):
        qemu_io_write(image, cluster * 64 * KIB, pattern)
        expected[cluster * 64 * KIB:(cluster + 1) * 64 * KIB] = bytes([pattern]) * 64 * KIB
    data, stats = read_volume("qcow2", image, expected_hash=("sha256", hashlib.sha256(image.read_bytes()).hexdigest()))
    assert data == bytes(expected)
    assert stats["range_requests"] >= 1
    assert stats["bytes_streamed"] == os.path.getsize(image)


def qemu_io_write(image, offset: int, pattern: int) -> None:
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", f"write -P {pattern} {offset} 64k", str(image)], check=True, capture_output=True)


@pytest.mark.parametrize("variant", ["vdi", "qcow2-zlib", "vmdk", "raw"])
def test_a_wrong_checksum_fails_at_the_end_of_the_stream(tmp_path, variant):
    raw = tmp_path / "volume.raw"
    write_sparse_raw(raw, 4 * MIB, [(MIB, os.urandom(100 * KIB))])
    image = convert(tmp_path, raw, variant)
    with pytest.raises(IntegrityError, match="sha512 of the downloaded image"):
        read_volume(variant.split("-")[0], image, expected_hash=("sha512", "0" * 128))
    with pytest.raises(IntegrityError, match="md5"):
        read_volume(variant.split("-")[0], image, expected_md5="0" * 32)
    data, _stats = read_volume(variant.split("-")[0], image, expected_hash=("SHA512", sha512_of(image)),
                               expected_md5=hashlib.md5(image.read_bytes()).hexdigest())
    assert data == raw.read_bytes()


def test_unknown_hash_algorithm_and_disk_format_are_refused(tmp_path):
    raw = tmp_path / "volume.raw"
    write_sparse_raw(raw, MIB, [])
    with pytest.raises(InvalidInputError, match="hash algorithm"):
        open_raw_stream("raw", FileImageSource(raw), "x", expected_hash=("sha4096", "00"))
    with pytest.raises(InvalidInputError, match="disk_format"):
        open_raw_stream("vhd", FileImageSource(raw), "x")


class TruncatingSource(FileImageSource):
    """A download that stops early (the size Glance announced is not delivered)."""

    def stream(self, offset):
        remaining = self.size - offset - 1000
        for piece in super().stream(offset):
            if remaining <= 0:
                return
            yield piece[:remaining]
            remaining -= len(piece)


class PaddingSource(FileImageSource):
    def stream(self, offset):
        yield from super().stream(offset)
        yield b"extra"


@pytest.mark.parametrize("source_class, message", [(TruncatingSource, "download ended"), (PaddingSource, "longer than")])
@pytest.mark.parametrize("variant", ["vdi", "qcow2", "raw"])
def test_a_download_of_the_wrong_length_is_refused(tmp_path, variant, source_class, message):
    raw = tmp_path / "volume.raw"
    write_sparse_raw(raw, 4 * MIB, [(4 * MIB - 64 * KIB, os.urandom(64 * KIB))])
    image = convert(tmp_path, raw, variant)
    with pytest.raises(IntegrityError, match=message):
        read_volume(variant, image, source=source_class(image))


@pytest.mark.parametrize("variant", ["vdi", "qcow2-zlib", "vmdk"])
def test_memory_stays_bounded_while_reading_a_large_image(tmp_path, variant):
    size = 24 * GIB
    raw = tmp_path / "volume.raw"
    write_sparse_raw(raw, size, [(offset * GIB, os.urandom(3 * MIB)) for offset in range(0, 24, 3)])
    image = convert(tmp_path, raw, variant)
    stream = open_raw_stream(variant.split("-")[0], FileImageSource(image), "large")
    tracemalloc.start()
    try:
        produced = sum(len(piece) for piece in stream.pieces())
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert produced == size
    assert peak < 12 * MIB
