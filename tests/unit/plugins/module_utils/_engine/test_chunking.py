# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Cutting a stream into chunks, and finding the all-zero clusters inside one."""

from __future__ import annotations

import os
import random

import pytest

from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.chunking import (
    ZERO_CLUSTER_SIZE,
    rechunk,
    zero_bitmap_size,
    zero_cluster_bitmap,
)
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.units import (
    ALLOWED_CHUNK_SIZES,
    CHUNK_SIZE_CHOICES_MIB,
    DEFAULT_CHUNK_SIZE,
    DEFAULT_CHUNK_SIZE_MIB,
    MIB,
)

from .engine_helpers import pieces_of


def test_rechunk_cuts_exact_sizes_whatever_the_pieces():
    data = os.urandom(3 * MIB + 5)
    chunks = list(rechunk(pieces_of(data), MIB))
    assert [len(c) for c in chunks] == [MIB, MIB, MIB, 5]
    assert b"".join(chunks) == data


def test_the_chunk_size_default_is_one_of_the_choices_in_both_units():
    assert DEFAULT_CHUNK_SIZE in ALLOWED_CHUNK_SIZES
    assert DEFAULT_CHUNK_SIZE_MIB * MIB == DEFAULT_CHUNK_SIZE
    assert CHUNK_SIZE_CHOICES_MIB == [1, 2, 4, 8, 16, 32, 64]


@pytest.mark.parametrize("seed", range(20))
def test_zero_cluster_bitmap_sets_exactly_the_all_zero_clusters(seed):
    rng = random.Random(seed)
    clusters = 16
    length = clusters * ZERO_CLUSTER_SIZE - rng.choice([0, 1, 4095, ZERO_CLUSTER_SIZE - 1])
    chunk = bytearray(length)
    expected = 0
    for index in range(clusters):
        start = index * ZERO_CLUSTER_SIZE
        end = min(start + ZERO_CLUSTER_SIZE, length)
        if rng.random() < 0.5:
            chunk[rng.randrange(start, end)] = rng.randrange(1, 256)  # one byte is enough to hold data
        else:
            expected |= 1 << index
    bitmap = zero_cluster_bitmap(bytes(chunk), zero_bitmap_size(MIB))
    assert (int.from_bytes(bitmap, "little") if bitmap else 0) == expected


def test_a_chunk_with_data_in_every_cluster_has_no_bitmap():
    assert zero_cluster_bitmap(os.urandom(MIB), zero_bitmap_size(MIB)) is None
    assert zero_bitmap_size(4 * MIB) == 8 and zero_bitmap_size(MIB) == 2
