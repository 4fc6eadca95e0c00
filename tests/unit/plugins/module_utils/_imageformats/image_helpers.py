# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Sparse raw volumes, qemu-img and readers for the image format tests."""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import subprocess

import pytest

from ansible_collections.openstack_dr.bank.plugins.module_utils._imageformats.reader import open_raw_stream
from ansible_collections.openstack_dr.bank.plugins.module_utils._imageformats.source import FileImageSource

KIB, MIB, GIB = 1 << 10, 1 << 20, 1 << 30


def qemu_img(*args: str) -> str:
    """Run qemu-img; a missing qemu-img fails the test (CI installs it: tests/setup-venv.sh)."""
    if shutil.which("qemu-img") is None:
        pytest.fail("qemu-img is missing: install qemu-utils (tests/setup-venv.sh does)")
    done = subprocess.run(["qemu-img", *args], capture_output=True, text=True, check=False)
    if done.returncode:
        pytest.fail(f"qemu-img {' '.join(args)} failed ({done.returncode}): {done.stdout}{done.stderr}")
    return done.stdout


def write_sparse_raw(path, size: int, extents: list[tuple[int, bytes]]) -> None:
    with open(path, "wb") as raw:
        raw.truncate(size)
        for offset, data in extents:
            raw.seek(offset)
            raw.write(data)


def random_extents(rng: random.Random, size: int, count: int, max_length: int = 300 * KIB) -> list[tuple[int, bytes]]:
    """Random data extents (random bytes, text-like runs, explicit zeros) at random offsets, the tail often included."""
    extents = []
    for _extent in range(count):
        length = rng.randint(1, min(max_length, size))
        offset = rng.randrange(0, size - length + 1)
        kind = rng.choice(("random", "text", "zeros"))
        if kind == "random":
            data = rng.randbytes(length)
        elif kind == "text":
            data = (b"the quick brown fox %d " % rng.randrange(1000) * (length // 20 + 1))[:length]
        else:
            data = bytes(length)
        extents.append((offset, data))
    if size and rng.random() < 0.5:
        tail = rng.randint(1, min(size, 4 * KIB))
        extents.append((size - tail, rng.randbytes(tail)))
    return extents


def sha512_of(path) -> str:
    digest = hashlib.sha512()
    with open(path, "rb") as image:
        while piece := image.read(MIB):
            digest.update(piece)
    return digest.hexdigest()


def read_volume(disk_format: str, path, expected_hash=None, expected_md5=None, source=None):
    """The raw bytes and stats of an image, read through the package as production does."""
    stream = open_raw_stream(disk_format, source or FileImageSource(path, piece_size=256 * KIB), os.path.basename(path),
                             expected_hash=expected_hash, expected_md5=expected_md5)
    data = b"".join(bytes(piece) for piece in stream.pieces())
    return data, stream.stats


def patch(path, offset: int, data: bytes) -> None:
    with open(path, "r+b") as image:
        image.seek(offset)
        image.write(data)
