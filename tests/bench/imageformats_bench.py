# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Throughput of the image format package: read vdi/qcow2/vmdk as raw, write qcow2. Prints figures.

``--cluster-compression`` instead prices qcow2's compressed clusters for a restore: the CPU seconds to
compress every data cluster of the volume once (raw deflate as qemu writes it, and zstd), and the bytes
saved. A stream whose size is known before the upload needs every compressed size before its first
byte, so a restore would pay this twice (a sizing pass, then the stream), or spool the image.

Builds a sparse raw volume shaped like the devcloud's (1/4 random, 1/4 text, 1/2 zeros),
converts it with qemu-img, then times ``open_raw_stream(...).pieces()`` (sha512 checked)
and ``Qcow2Writer.stream()`` to /dev/null. Run from the checkout after ``make venv``:
``tests/pytest.sh`` is not needed: ``PYTHONPATH=.cache/collections .venv/bin/python tests/bench/imageformats_bench.py``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import subprocess
import tempfile
import time
import zlib

import zstandard

from ansible_collections.openstack_dr.bank.plugins.module_utils._imageformats.qcow2_writer import Qcow2Writer, file_pieces
from ansible_collections.openstack_dr.bank.plugins.module_utils._imageformats.reader import open_raw_stream
from ansible_collections.openstack_dr.bank.plugins.module_utils._imageformats.source import FileImageSource

MIB = 1 << 20
CLUSTER = 64 * 1024


def build_raw(path: str, size: int) -> None:
    quarter = size // 4
    text = (b"Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 20000)[:MIB]
    with open(path, "wb") as raw:
        for _mib in range(quarter // MIB):
            raw.write(os.urandom(MIB))
        for _mib in range(quarter // MIB):
            raw.write(text)
        raw.truncate(size)


def allocation_of(path: str, size: int) -> bytes:
    """The allocation map the restore would have: one bit per cluster holding a non-zero byte."""
    clusters = -(-size // CLUSTER)
    bitmap = bytearray((clusters + 7) // 8)
    with open(path, "rb") as raw:
        for cluster in range(clusters):
            if raw.read(CLUSTER).strip(b"\0"):
                bitmap[cluster >> 3] |= 1 << (cluster & 7)
    return bytes(bitmap)


def time_read(disk_format: str, label: str, image: str, size: int, hashed: bool) -> None:
    expected = None
    if hashed:
        digest = hashlib.sha512()
        with open(image, "rb") as data:
            while piece := data.read(MIB):
                digest.update(piece)
        expected = ("sha512", digest.hexdigest())
        label += " +sha512"
    start = time.perf_counter()
    stream = open_raw_stream(disk_format, FileImageSource(image), image, expected_hash=expected)
    produced = sum(len(piece) for piece in stream.pieces())
    seconds = time.perf_counter() - start
    assert produced == stream.virtual_size
    print(f"read  {label:17} image {os.path.getsize(image) / MIB:8.0f} MiB  {seconds:6.2f} s  "
          f"{size / MIB / seconds:7.0f} MiB/s of volume  {os.path.getsize(image) / MIB / seconds:6.0f} MiB/s of image  {stream.stats}")


def time_write(raw_path: str, size: int) -> None:
    allocation = allocation_of(raw_path, size)
    start = time.perf_counter()
    writer = Qcow2Writer(size, allocation)
    with open(raw_path, "rb") as raw, open(os.devnull, "wb") as sink:
        written = 0
        for piece in writer.stream(file_pieces(raw, 4 * MIB)):
            sink.write(piece)
            written += len(piece)
    seconds = time.perf_counter() - start
    assert written == writer.size
    print(f"write qcow2             image {written / MIB:8.0f} MiB  {seconds:6.2f} s  {size / MIB / seconds:7.0f} MiB/s of volume  "
          f"{written / MIB / seconds:6.0f} MiB/s of image")


def time_cluster_compression(raw_path: str, size: int) -> None:
    """Compress each 64 KiB cluster holding data, as qemu's `-c` does; process CPU time, so a loaded machine reads true."""
    clusters = []
    with open(raw_path, "rb") as raw:
        for _cluster in range(-(-size // CLUSTER)):
            data = raw.read(CLUSTER)
            if data.strip(b"\0"):
                clusters.append(data)
    data_bytes = sum(map(len, clusters))
    # The image's text repeats one sentence, which every compressor eats at once: text of random words is
    # priced beside it (64 MiB, seeded).
    rng = random.Random(10)
    words = [bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _letter in range(rng.randrange(2, 12))) for _word in range(5000)]
    wordy = b" ".join(rng.choice(words) for _word in range(12 * MIB))[:64 * MIB]
    wordy_clusters = [wordy[offset:offset + CLUSTER] for offset in range(0, len(wordy), CLUSTER)]

    def deflate(cluster: bytes) -> bytes:
        # qemu: deflateInit2(Z_DEFAULT_COMPRESSION, Z_DEFLATED, -12 window bits, memLevel 9); raw deflate, no header.
        compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -12, 9)
        return compressor.compress(cluster) + compressor.flush()

    zstd = zstandard.ZstdCompressor(level=3)
    for what, sample in (("the image's data", clusters), ("text of random words", wordy_clusters)):
        sample_bytes = sum(map(len, sample))
        for label, compress in (("deflate (qemu's zlib)", deflate), ("zstd level 3", zstd.compress)):
            start = time.process_time()
            # qemu stores a cluster that does not shrink uncompressed.
            stored = sum(min(len(compress(cluster)), CLUSTER) for cluster in sample)
            cpu = time.process_time() - start
            print(f"compress clusters of {what:20s} {label:22s} data {sample_bytes / MIB:6.0f} MiB  stored {stored / MIB:6.0f} MiB  "
                  f"{cpu:6.2f} CPU s  {sample_bytes / MIB / cpu:6.0f} MiB/s  {cpu / (sample_bytes / (1 << 30)):5.1f} CPU s per GiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-gib", type=float, default=4.0)
    parser.add_argument("--dir", default=None, help="where the temporary files go (default: the system's)")
    parser.add_argument("--cluster-compression", action="store_true", help="only price qcow2's compressed clusters (see above)")
    arguments = parser.parse_args()
    size = int(arguments.size_gib * 1024) * MIB
    with tempfile.TemporaryDirectory(dir=arguments.dir) as work:
        raw = os.path.join(work, "volume.raw")
        build_raw(raw, size)
        if arguments.cluster_compression:
            time_cluster_compression(raw, size)
            return
        for disk_format, options in (("vdi", ["-O", "vdi"]), ("qcow2", ["-O", "qcow2"]), ("qcow2", ["-c", "-O", "qcow2"]), ("vmdk", ["-O", "vmdk"])):
            image = os.path.join(work, "image." + disk_format)
            subprocess.run(["qemu-img", "convert", "-f", "raw", *options, raw, image], check=True)
            label = " ".join(options).replace("-O ", "")
            time_read(disk_format, label, image, size, hashed=False)
            time_read(disk_format, label, image, size, hashed=True)
            os.unlink(image)
        time_write(raw, size)


if __name__ == "__main__":
    main()
