# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where image bytes come from, and the one forward pass that hashes all of them.

An ``ImageSource`` offers a sequential download from an offset (an HTTP GET with
``Range: bytes=offset-``) and single ranged reads. ``SequentialReader`` walks an image
file forward exactly once: every byte the stream delivers is hashed as it arrives,
reading forward past bytes consumes them (never skips them), and only what lies behind
the cursor is fetched again with ``read_range``. ``finish()`` drains the rest into the
hash and checks the digests, so the image's own checksum covers every byte of the file.
"""

from __future__ import annotations

import array
import collections
import hashlib
import hmac
import os
import sys
import typing as t

from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import (
    ImageFormatError,
    IntegrityError,
    InvalidInputError,
)

# Zero runs are served from this one shared buffer: never more than this per piece.
ZERO_PIECE_SIZE = 1 << 20
_ZERO_BUFFER = bytes(ZERO_PIECE_SIZE)
_ZEROS = memoryview(_ZERO_BUFFER)
# A ranged read behind the cursor is split into requests of at most this size.
MAX_RANGE_REQUEST = 4 << 20


class ImageSource(t.Protocol):
    """An image file that can be read sequentially from an offset, or by ranges."""

    size: int

    def stream(self, offset: int) -> t.Iterator[bytes]:
        """Bytes from ``offset`` to the end of the file, in order, in pieces of any size."""

    def read_range(self, offset: int, length: int) -> bytes:
        """Exactly ``length`` bytes at ``offset`` (one request)."""


class FileImageSource:
    """An image in a local file (tests, benchmarks)."""

    def __init__(self, path: str | os.PathLike, piece_size: int = 1 << 20) -> None:
        self.path = os.fspath(path)
        self.size = os.path.getsize(self.path)
        self.piece_size = piece_size

    def stream(self, offset: int) -> t.Iterator[bytes]:
        with open(self.path, "rb") as image:
            image.seek(offset)
            while piece := image.read(self.piece_size):
                yield piece

    def read_range(self, offset: int, length: int) -> bytes:
        with open(self.path, "rb") as image:
            image.seek(offset)
            return image.read(length)


def zero_pieces(length: int) -> t.Iterator[memoryview]:
    """``length`` zero bytes as slices of the shared zero buffer."""
    while length > 0:
        piece = min(length, ZERO_PIECE_SIZE)
        yield _ZEROS[:piece]
        length -= piece


def is_shared_zero(piece: memoryview | bytes) -> bool:
    """Whether ``piece`` is a slice of the shared zero buffer (a zero run, not downloaded)."""
    return isinstance(piece, memoryview) and piece.obj is _ZERO_BUFFER


def new_hashers(display_name: str, expected_hash: tuple[str, str] | None, expected_md5: str | None) -> list[tuple[t.Any, str]]:
    """The (hasher, expected hex digest) pairs to feed; an unknown algorithm is refused up front."""
    hashers = []
    wanted = ([expected_hash] if expected_hash else []) + ([("md5", expected_md5)] if expected_md5 else [])
    for algorithm, hexdigest in wanted:
        name = str(algorithm).lower()
        if name not in hashlib.algorithms_guaranteed or name.startswith("shake_"):
            raise InvalidInputError(f"Image {display_name}: unsupported hash algorithm {algorithm!r}")
        hashers.append((hashlib.new(name), str(hexdigest).lower()))
    return hashers


class SequentialReader:
    """One forward pass over an image file, hashed; ranged reads only for what lies behind.

    ``cursor`` is the file offset of the next byte not yet consumed. Pieces pulled from the
    stream but not consumed wait in ``_pending`` (bounded by the largest read asked for).
    """

    def __init__(self, source: ImageSource, display_name: str, hashers: list[tuple[t.Any, str]] | None = None) -> None:
        self.source = source
        self.display_name = display_name
        self.size = int(source.size)
        self.cursor = 0
        self._hashers = hashers or []
        self._stream: t.Iterator[bytes] | None = None
        self._pending: collections.deque[memoryview] = collections.deque()
        self._pending_bytes = 0
        self._pulled = 0
        self.bytes_streamed = 0
        self.bytes_ranged = 0
        self.range_requests = 0
        # The first bytes of the last forward jump are kept: a format may come back for them
        # (qcow2 packs compressed clusters into a cluster that uncompressed ones then pass).
        self.lookbehind = 0
        self._behind_start = 0
        self._behind = b""

    def error(self, message: str) -> ImageFormatError:
        return ImageFormatError(f"Image {self.display_name}: {message}", image=self.display_name)

    def require_inside(self, offset: int, length: int, what: str) -> None:
        if offset < 0 or length < 0 or offset + length > self.size:
            raise self.error(f"{what} at byte {offset} (+{length}) lies outside the {self.size}-byte file")

    def _pull(self) -> bool:
        if self._stream is None:
            self._stream = iter(self.source.stream(0))
        for piece in self._stream:
            if not piece:
                continue
            for hasher, _expected in self._hashers:
                hasher.update(piece)
            self._pulled += len(piece)
            self.bytes_streamed += len(piece)
            if self._pulled > self.size:
                raise IntegrityError(f"Image {self.display_name}: the download is longer than the image's {self.size} bytes")
            self._pending.append(memoryview(piece))
            self._pending_bytes += len(piece)
            return True
        return False

    def _need(self, length: int) -> None:
        while self._pending_bytes < length:
            if not self._pull():
                raise IntegrityError(f"Image {self.display_name}: the download ended at byte {self._pulled} of {self.size}")

    def _drop(self, length: int) -> None:
        while length > 0:
            if not self._pending:
                self._need(1)
            head = self._pending[0]
            if len(head) <= length:
                self._pending.popleft()
                used = len(head)
            else:
                self._pending[0] = head[length:]
                used = length
            self._pending_bytes -= used
            self.cursor += used
            length -= used

    def skip_to(self, offset: int) -> None:
        """Consume (and so hash) every byte up to ``offset``."""
        if offset > self.cursor:
            if self.lookbehind:
                self._behind_start, self._behind = self.cursor, self._join_pending(min(self.lookbehind, offset - self.cursor))
            self._drop(offset - self.cursor)

    def _ranged(self, offset: int, length: int) -> bytes:
        self.require_inside(offset, length, "ranged read")
        kept = offset - self._behind_start
        if 0 <= kept and kept + length <= len(self._behind):
            return self._behind[kept:kept + length]
        parts = []
        while length > 0:
            step = min(length, MAX_RANGE_REQUEST)
            data = self.source.read_range(offset, step)
            self.range_requests += 1
            self.bytes_ranged += len(data)
            if len(data) != step:
                raise IntegrityError(f"Image {self.display_name}: ranged read at byte {offset} returned {len(data)} of {step} bytes")
            parts.append(data)
            offset += step
            length -= step
        return b"".join(parts)

    def _join_pending(self, length: int) -> bytes:
        self._need(length)
        head = self._pending[0]
        if len(head) >= length:
            return bytes(head[:length])
        parts, missing = [], length
        for piece in self._pending:
            parts.append(piece[:missing])
            missing -= len(parts[-1])
            if not missing:
                break
        return b"".join(parts)

    def peek(self, offset: int, length: int) -> bytes:
        """``length`` bytes at ``offset`` without consuming them: the cursor stops at ``offset``."""
        self.require_inside(offset, length, "read")
        if offset < self.cursor:
            return self.fetch(offset, length)
        self.skip_to(offset)
        return self._join_pending(length)

    def fetch(self, offset: int, length: int) -> bytes:
        """``length`` bytes at ``offset`` as one bytes object (metadata); consumes forward."""
        self.require_inside(offset, length, "read")
        if offset >= self.cursor:
            self.skip_to(offset)
            data = self._join_pending(length)
            self._drop(length)
            return data
        if offset + length <= self.cursor:
            return self._ranged(offset, length)
        behind = self.cursor - offset
        return self._ranged(offset, behind) + self.fetch(self.cursor, length - behind)

    def pieces(self, offset: int, length: int) -> t.Iterator[memoryview | bytes]:
        """``length`` bytes at ``offset`` as pieces (data), without copying what comes from the stream."""
        self.require_inside(offset, length, "data")
        if offset < self.cursor:
            behind = min(length, self.cursor - offset)
            for start in range(offset, offset + behind, MAX_RANGE_REQUEST):
                yield self._ranged(start, min(MAX_RANGE_REQUEST, offset + behind - start))
            offset += behind
            length -= behind
        self.skip_to(offset)
        while length > 0:
            if not self._pending:
                self._need(1)
            head = self._pending[0]
            piece = head if len(head) <= length else head[:length]
            self._drop(len(piece))
            length -= len(piece)
            yield piece

    def finish(self) -> None:
        """Drain the rest of the file into the hash, then check its length and digests."""
        self.skip_to(self.size)
        if self._pull():
            raise IntegrityError(f"Image {self.display_name}: the download is longer than the image's {self.size} bytes")
        for hasher, expected in self._hashers:
            actual = hasher.hexdigest()
            if not hmac.compare_digest(actual, expected):
                raise IntegrityError(
                    f"Image {self.display_name}: {hasher.name} of the downloaded image is {actual}, Glance says {expected}",
                    image=self.display_name, algorithm=hasher.name)

    def stats(self) -> dict[str, int]:
        return {"bytes_streamed": self.bytes_streamed, "bytes_ranged": self.bytes_ranged, "range_requests": self.range_requests}


def integer_table(data: bytes, typecode: str, big_endian: bool) -> array.array:
    """A table of unsigned integers (``typecode`` "I" or "Q") as the image stores it, in native order."""
    table = array.array(typecode, data)
    if (sys.byteorder == "little") == big_endian:
        table.byteswap()
    return table
