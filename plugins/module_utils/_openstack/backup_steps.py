# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backup side: copy a volume into a temporary image, and read that image back from Glance.

Snapshot mode: create_temporary_snapshot -> create_temporary_volume -> upload_volume_to_image;
direct mode: upload_volume_to_image on the volume itself. Each create step registers the removal
of what it made as soon as the create call returns, before it waits. GlanceImageSource reads the
image: sequentially from an offset, or one byte range at a time (Glance honours `Range`).
"""

from __future__ import annotations

import typing as t

from ansible_collections.openstack_dr.bank.plugins.module_utils import _notices as notices
from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import InvalidInputError, OpenStackError
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack._sdk import api_errors, call, is_not_found, status_code
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack.temporaries import Temporaries
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack.waiters import (
    Deadline,
    wait_image_active,
    wait_snapshot_status,
    wait_volume_status,
)

COPY_MODES = ("auto", "snapshot", "direct")
PIECE_SIZE = 1024 * 1024


def choose_copy_mode(volume: t.Any, copy_mode: str, force: bool) -> str:
    """`auto` -> direct for an available volume, snapshot otherwise; raises InvalidInputError on impossible choices."""
    if copy_mode not in COPY_MODES:
        raise InvalidInputError(f"copy_mode must be one of {', '.join(COPY_MODES)}, not {copy_mode!r}")
    mode = copy_mode
    if mode == "auto":
        mode = "direct" if volume.status == "available" else "snapshot"
    if mode == "direct" and volume.status != "available":
        raise InvalidInputError(
            f"copy_mode direct needs a detached, available volume; volume {volume.id} is {volume.status!r} (use snapshot)",
            volume=volume.id, status=volume.status,
        )
    if mode == "snapshot" and volume.status == "in-use" and not force:
        raise InvalidInputError(f"Volume {volume.id} is in-use: set force to snapshot an attached volume", volume=volume.id)
    return mode


def create_temporary_snapshot(conn: t.Any, temps: Temporaries, volume: t.Any, *, force: bool, deadline: Deadline) -> t.Any:
    """Temporary snapshot of `volume`, registered at once, waited until available."""
    name = temps.name("snapshot")
    snapshot = call(f"create a snapshot of volume {volume.id}", conn.block_storage.create_snapshot, volume_id=volume.id, force=force,
                    **_temporary_fields(temps, name, "snapshot"))
    temps.register_snapshot(snapshot.id, name)
    return wait_snapshot_status(conn, snapshot.id, ["available"], deadline)


def create_temporary_volume(conn: t.Any, temps: Temporaries, snapshot: t.Any, size: int, *, deadline: Deadline) -> t.Any:
    """Temporary volume cloned from `snapshot`, registered at once, waited until available."""
    name = temps.name("volume")
    volume = call(f"create a volume from snapshot {snapshot.id}", conn.block_storage.create_volume, snapshot_id=snapshot.id, size=size,
                  **_temporary_fields(temps, name, "volume"))
    temps.register_volume(volume.id, name, made_from=snapshot.id)
    return wait_volume_status(conn, volume.id, ["available"], deadline)


def _temporary_fields(temps: Temporaries, name: str, kind: str) -> dict[str, t.Any]:
    return {"name": name, "metadata": temps.tags, "description": f"Temporary {kind} of openstack_dr.bank run {temps.run_id}"}


def upload_volume_to_image(conn: t.Any, temps: Temporaries, volume: t.Any, *, disk_format: str, deadline: Deadline) -> t.Any:
    """Cinder os-volume_upload_image of `volume` into a private temporary image of `disk_format`.

    The image is registered from the response, tagged, then waited active; the volume waited back
    to its previous status (available or in-use). Returns the active image.
    """
    name = temps.name("image")
    before = volume.status
    response = call(
        f"upload volume {volume.id} to a {disk_format} image", conn.block_storage.upload_volume_to_image,
        volume, name, force=before == "in-use", disk_format=disk_format, container_format="bare", visibility="private",
    )
    image_id = response.get("image_id") or response.get("id")
    if not image_id:
        raise OpenStackError(f"Cinder accepted the upload of volume {volume.id} but returned no image id: {response}")
    temps.register_image(image_id, name)
    # Cinder cannot pass custom properties: tag right away so a crash leaves a findable image.
    call(f"tag image {image_id}", conn.image.update_image, image_id, **temps.tags)
    image = wait_image_active(conn, image_id, deadline)
    back = ["in-use"] if before == "in-use" else ["available"]
    wait_volume_status(conn, volume.id, back, deadline, what="return to " + back[0] + " after the upload")
    return image


class _RangeRefusedError(OpenStackError):
    """Glance refused a byte range (400): the image's store cannot seek."""


class GlanceImageSource:
    """An active image's bytes: a sequential stream from any offset, or one byte range.

    Counts what crossed Glance, so results can say how many bytes the transfer cost.
    """

    def __init__(self, conn: t.Any, image: t.Any, piece_size: int = PIECE_SIZE) -> None:
        self.conn = conn
        self.image = image
        self.size = int(image.size)
        self.piece_size = piece_size
        self.bytes_streamed = 0
        self.bytes_ranged = 0
        self.range_requests = 0
        # False once Glance refused a byte range: its store cannot seek (the RBD store answers 400).
        self.ranges_served = True

    def _get(self, first: int, last: int | None) -> t.Any:
        headers = {"Range": f"bytes={first}-{'' if last is None else last}"} if first or last is not None else {}
        try:
            response = self.conn.image.get(f"/images/{self.image.id}/file", headers=headers, stream=True)
        except api_errors() as error:
            if is_not_found(error):
                raise OpenStackError(f"Image {self.image.id} disappeared during its download") from error
            raise OpenStackError(f"Failed to download image {self.image.id}: {error}", http_status=status_code(error)) from error
        if headers and response.status_code == 400:
            response.close()
            raise _RangeRefusedError(f"Glance answered 400 to a range request for image {self.image.id}: its store cannot seek")
        if headers and response.status_code != 206:
            response.close()
            # A server that ignores Range would hand us the wrong bytes at the wrong offset.
            raise OpenStackError(f"Glance answered {response.status_code} to a range request for image {self.image.id}, not 206")
        return response

    def _refused(self) -> None:
        if self.ranges_served:
            self.ranges_served = False
            notices.add(f"Glance cannot serve byte ranges of image {self.image.id} (its store cannot seek, as the RBD store): "
                        "what was needed behind the stream was read again from the image's start")

    def _cut_from_start(self, offset: int, length: int) -> bytes:
        """``length`` bytes at ``offset``, cut from a download from the image's start."""
        response = self._get(0, None)
        end = offset + length
        position = 0
        parts = []
        try:
            for piece in response.iter_content(self.piece_size):
                start, stop = max(offset - position, 0), min(end - position, len(piece))
                position += len(piece)
                self.bytes_ranged += len(piece)
                if start < stop:
                    parts.append(piece[start:stop])
                if position >= end:
                    break
        except (OSError, *api_errors()) as error:
            raise OpenStackError(f"Failed to download image {self.image.id}: {error}") from error
        finally:
            response.close()
        return b"".join(parts)

    def stream(self, offset: int = 0) -> t.Iterator[bytes]:
        """The image's bytes from `offset` to its end, in pieces of about `piece_size`."""
        if offset >= self.size:
            return
        response = self._get(offset, None)
        try:
            for piece in response.iter_content(self.piece_size):
                if piece:
                    self.bytes_streamed += len(piece)
                    yield piece
        except (OSError, *api_errors()) as error:
            raise OpenStackError(f"Failed to download image {self.image.id}: {error}") from error
        finally:
            response.close()

    def read_range(self, offset: int, length: int) -> bytes:
        if self.ranges_served:
            try:
                response = self._get(offset, offset + length - 1)
            except _RangeRefusedError:
                self._refused()
            else:
                return self._ranged_content(response, offset, length)
        data = self._cut_from_start(offset, length)
        self.range_requests += 1
        if len(data) != length:
            raise OpenStackError(f"Glance returned {len(data)} bytes of image {self.image.id} at {offset}, not {length}")
        return data

    def _ranged_content(self, response: t.Any, offset: int, length: int) -> bytes:
        try:
            data = response.content
        except (OSError, *api_errors()) as error:
            raise OpenStackError(f"Failed to download bytes {offset}+{length} of image {self.image.id}: {error}") from error
        finally:
            response.close()
        if len(data) != length:
            raise OpenStackError(f"Glance returned {len(data)} bytes of image {self.image.id} at {offset}, not {length}")
        self.bytes_ranged += length
        self.range_requests += 1
        return data


def image_facts(image: t.Any) -> dict[str, t.Any]:
    """What the manifest records of the temporary image the backup was read from."""
    return {
        "disk_format": image.disk_format, "container_format": image.container_format, "min_disk": image.min_disk,
        "min_ram": image.min_ram, "size": image.size, "os_hash_algo": getattr(image, "hash_algo", None),
        "os_hash_value": getattr(image, "hash_value", None),
    }


def get_active_image(conn: t.Any, image_id: str) -> t.Any:
    image = call(f"get image {image_id}", conn.image.get_image, image_id)
    if image.status != "active":
        raise OpenStackError(f"Image {image.id} is {image.status!r}, not active: cannot download it")
    return image
