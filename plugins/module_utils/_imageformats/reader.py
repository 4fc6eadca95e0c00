# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The backup side's one entry point: an image file in, the volume's raw bytes out.

``open_raw_stream`` validates the image's header and tables before trusting them, and
``RawStream.pieces()`` yields the guest's bytes in order with bounded memory: zeros for
unallocated clusters (never downloaded), inflated compressed clusters, data passed through.
The iterator checks the image's own checksum over every byte of the file when it ends:
the consumer must treat the volume as read only once the iterator is exhausted.
"""

from __future__ import annotations

import typing as t

from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import IntegrityError, InvalidInputError
from ansible_collections.openstack_dr.bank.plugins.module_utils._imageformats.qcow2 import Qcow2Image
from ansible_collections.openstack_dr.bank.plugins.module_utils._imageformats.source import ImageSource, SequentialReader, is_shared_zero, new_hashers
from ansible_collections.openstack_dr.bank.plugins.module_utils._imageformats.vdi import VdiImage
from ansible_collections.openstack_dr.bank.plugins.module_utils._imageformats.vmdk import VmdkImage


class RawImage:
    """A ``raw`` image: the file is the volume."""

    def __init__(self, reader: SequentialReader) -> None:
        self.reader = reader
        self.virtual_size = reader.size

    def guest_pieces(self) -> t.Iterator[memoryview | bytes]:
        return self.reader.pieces(0, self.virtual_size)


FORMATS: dict[str, t.Callable[[SequentialReader], t.Any]] = {"raw": RawImage, "vdi": VdiImage, "qcow2": Qcow2Image, "vmdk": VmdkImage}
SUPPORTED_DISK_FORMATS = tuple(FORMATS)


class RawStream:
    """The raw volume inside an image; ``pieces()`` may be iterated once."""

    def __init__(self, disk_format: str, image: t.Any, reader: SequentialReader) -> None:
        self.disk_format = disk_format
        self.virtual_size: int = image.virtual_size
        self._image = image
        self._reader = reader
        self.zero_bytes = 0

    def pieces(self) -> t.Iterator[memoryview | bytes]:
        """The volume's bytes in guest order (bytes-like pieces); the checksum is checked at the end."""
        produced = 0
        for piece in self._image.guest_pieces():
            produced += len(piece)
            if is_shared_zero(piece):
                self.zero_bytes += len(piece)
            yield piece
        if produced != self.virtual_size:
            raise IntegrityError(f"Image {self._reader.display_name}: produced {produced} bytes, its virtual size is {self.virtual_size}")
        self._reader.finish()

    @property
    def stats(self) -> dict[str, int]:
        """Bytes streamed (hashed sequential download), bytes and requests of ranged reads, zeros never downloaded."""
        return {**self._reader.stats(), "zero_bytes": self.zero_bytes, "image_size": self._reader.size, "virtual_size": self.virtual_size}


def open_raw_stream(disk_format: str, source: ImageSource, display_name: str,
                    expected_hash: tuple[str, str] | None = None, expected_md5: str | None = None) -> RawStream:
    """Validate the image's header and return its raw volume as a stream.

    ``expected_hash`` is Glance's ``(os_hash_algo, os_hash_value)``, ``expected_md5`` its
    ``checksum``; either is checked over the whole image file when ``pieces()`` ends.
    Raises ImageFormatError (an IntegrityError) for a malformed or unsupported image.
    """
    if disk_format not in FORMATS:
        raise InvalidInputError(f"Image {display_name}: disk_format {disk_format!r} is not one of {', '.join(SUPPORTED_DISK_FORMATS)}")
    reader = SequentialReader(source, display_name, new_hashers(display_name, expected_hash, expected_md5))
    return RawStream(disk_format, FORMATS[disk_format](reader), reader)
