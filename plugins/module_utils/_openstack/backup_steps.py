# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backup side: find and describe the volume, copy it into a temporary image, stream the image out.

The flow, top to bottom: find_volume -> describe_volume -> copy_volume_to_image (snapshot mode:
create_temporary_snapshot -> create_temporary_volume -> upload_volume_to_temporary_image; direct
mode: upload_volume_to_temporary_image on the volume itself) -> open_image_download. Every
temporary is recorded in the TemporaryResources tracker as soon as its create call returns.
"""

from __future__ import annotations

import typing as t

from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import InvalidInputError, OpenStackError
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack._sdk import api_errors, call, is_not_found, status_code
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack.connection import DEFAULT_STEP_TIMEOUT, cloud_location
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack.temporaries import TAG_KEYS, TemporaryResources
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack.waiters import (
    is_error_status,
    wait_image_active,
    wait_snapshot_status,
    wait_volume_status,
)

COPY_MODES = ("auto", "snapshot", "direct")
# Statuses in which a volume's data can be read: attached or not.
USABLE_VOLUME_STATUSES = frozenset({"available", "in-use"})
PIECE_SIZE = 1024 * 1024


def find_volume(conn: t.Any, name_or_id: str) -> t.Any:
    """The volume named or identified by `name_or_id`, in a status whose data can be copied.

    Raises InvalidInputError when unknown, ambiguous or in an unusable status (error, creating...).
    """
    if not name_or_id:
        raise InvalidInputError("No volume given")
    volume = None
    try:
        volume = conn.block_storage.get_volume(name_or_id)
    except api_errors() as error:
        # Cinder answers 404 for an unknown id and 400 ("Malformed request url") for a non-id.
        if not (is_not_found(error) or status_code(error) == 400):
            raise OpenStackError(f"Failed to look up volume {name_or_id!r}: {error}") from error
    if volume is None:
        # By name, filtered client-side: Cinder refuses a `name` filter unless its resource_filters allow it.
        volumes = call("list volumes", lambda: list(conn.block_storage.volumes(details=True)))
        named = [v for v in volumes if v.name == name_or_id]
        if len(named) > 1:
            raise InvalidInputError(
                f"Volume name {name_or_id!r} is ambiguous: {len(named)} volumes carry it ({', '.join(v.id for v in named)}); give the volume id",
                volume=name_or_id,
            )
        if not named:
            raise InvalidInputError(f"Volume {name_or_id!r} not found", volume=name_or_id)
        volume = named[0]
    if volume.status not in USABLE_VOLUME_STATUSES:
        raise InvalidInputError(
            f"Volume {volume.name or ''} ({volume.id}) is in status {volume.status!r}; only available or in-use volumes can be backed up",
            volume=volume.id, status=volume.status,
        )
    return volume


def describe_volume(conn: t.Any, volume: t.Any) -> dict[str, t.Any]:
    """Plain dict of everything a restore at another site needs (for the manifest)."""
    location = cloud_location(conn)
    image_metadata = dict(getattr(volume, "volume_image_metadata", None) or {})
    return {
        "id": volume.id,
        "name": volume.name,
        "size": volume.size,
        # Cinder's `volume_type` field carries the type NAME, which is what another site can match.
        "volume_type": volume.volume_type,
        "bootable": _as_bool(volume.is_bootable),
        "multiattach": _as_bool(getattr(volume, "is_multiattach", False)),
        "availability_zone": volume.availability_zone,
        "metadata": {k: v for k, v in dict(volume.metadata or {}).items() if k not in TAG_KEYS},
        # Our own tags would leak from a temporary image into a restored volume otherwise.
        "volume_image_metadata": {k: v for k, v in image_metadata.items() if k not in TAG_KEYS},
        "status": volume.status,
        "description": volume.description,
        "cloud": location["cloud"],
        "region": location["region"],
    }


def _as_bool(value: t.Any) -> bool:
    if isinstance(value, str):
        return value.lower() == "true"
    return bool(value)


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


def create_temporary_snapshot(conn: t.Any, temps: TemporaryResources, volume: t.Any, force: bool, timeout: float = DEFAULT_STEP_TIMEOUT) -> t.Any:
    """Temporary snapshot of `volume`, recorded at once, waited until available."""
    name = temps.name("snapshot")
    snapshot = call(
        f"create a snapshot of volume {volume.id}", conn.block_storage.create_snapshot,
        volume_id=volume.id, name=name, force=force, metadata=temps.tags,
        description=f"Temporary snapshot of openstack_dr.bank run {temps.run_id}",
    )
    temps.record("snapshot", snapshot.id, name)
    return wait_snapshot_status(conn, snapshot.id, ["available"], timeout)


def create_temporary_volume(conn: t.Any, temps: TemporaryResources, snapshot: t.Any, size: int, timeout: float = DEFAULT_STEP_TIMEOUT) -> t.Any:
    """Temporary volume cloned from `snapshot`, recorded at once, waited until available."""
    name = temps.name("volume")
    volume = call(
        f"create a volume from snapshot {snapshot.id}", conn.block_storage.create_volume,
        snapshot_id=snapshot.id, size=size, name=name, metadata=temps.tags,
        description=f"Temporary volume of openstack_dr.bank run {temps.run_id}",
    )
    temps.record("volume", volume.id, name)
    return wait_volume_status(conn, volume.id, ["available"], timeout)


def upload_volume_to_temporary_image(
    conn: t.Any, temps: TemporaryResources, volume: t.Any, timeout: float = DEFAULT_STEP_TIMEOUT, force: bool = False
) -> t.Any:
    """Cinder os-volume_upload_image of `volume` into a private raw/bare temporary image.

    The image is recorded from the response, tagged, then waited active; the volume waited back to
    its previous status (available or in-use). Returns the active image.
    """
    name = temps.name("image")
    before = volume.status
    response = call(
        f"upload volume {volume.id} to an image", conn.block_storage.upload_volume_to_image,
        volume, name, force=force, disk_format="raw", container_format="bare", visibility="private",
    )
    image_id = response.get("image_id") or response.get("id")
    if not image_id:
        raise OpenStackError(f"Cinder accepted the upload of volume {volume.id} but returned no image id: {response}")
    temps.record("image", image_id, name)
    # Cinder cannot pass custom properties: tag right away so a crash leaves a findable image.
    call(f"tag image {image_id}", conn.image.update_image, image_id, **temps.tags)
    image = wait_image_active(conn, image_id, timeout)
    back = ["in-use"] if before == "in-use" else ["available"]
    wait_volume_status(conn, volume.id, back, timeout, what="return to " + back[0] + " after the upload")
    return image


def copy_volume_to_image(
    conn: t.Any, temps: TemporaryResources, volume: t.Any, copy_mode: str = "auto", force: bool = False,
    timeout: float = DEFAULT_STEP_TIMEOUT,
) -> tuple[t.Any, str]:
    """Copy the volume's data into an active temporary image. Returns (image, copy mode used)."""
    mode = choose_copy_mode(volume, copy_mode, force)
    if mode == "direct":
        return upload_volume_to_temporary_image(conn, temps, volume, timeout), mode
    snapshot = create_temporary_snapshot(conn, temps, volume, force=volume.status == "in-use", timeout=timeout)
    temporary_volume = create_temporary_volume(conn, temps, snapshot, volume.size, timeout)
    return upload_volume_to_temporary_image(conn, temps, temporary_volume, timeout), mode


class ImageDownload:
    """A streamed image download: `.pieces` yields bytes, never the whole image in memory.

    Use as a context manager (or call close()) so the HTTP response is always released.
    """

    def __init__(self, image: t.Any, response: t.Any, piece_size: int) -> None:
        self.image_id = image.id
        self.size = image.size
        self.os_hash_algo = getattr(image, "hash_algo", None)
        self.os_hash_value = getattr(image, "hash_value", None)
        self.checksum = getattr(image, "checksum", None)
        self.disk_format = image.disk_format
        self.container_format = image.container_format
        self.min_disk = image.min_disk
        self.min_ram = image.min_ram
        self._response = response
        self.pieces: t.Iterator[bytes] = self._iterate(piece_size)

    def _iterate(self, piece_size: int) -> t.Iterator[bytes]:
        try:
            for piece in self._response.iter_content(piece_size):
                if piece:
                    yield piece
        except api_errors() as error:
            raise OpenStackError(f"Failed to download image {self.image_id}: {error}") from error
        except OSError as error:
            raise OpenStackError(f"Failed to download image {self.image_id}: {error}") from error
        finally:
            self.close()

    def close(self) -> None:
        if self._response is not None:
            self._response.close()
            self._response = None

    def __enter__(self) -> ImageDownload:
        return self

    def __exit__(self, *exc_info: t.Any) -> None:
        self.close()


def open_image_download(conn: t.Any, image: t.Any, piece_size: int = PIECE_SIZE) -> ImageDownload:
    """Start streaming an active image; Glance's os_hash_* are exposed for the caller to verify."""
    image = call(f"get image {image.id if hasattr(image, 'id') else image}", conn.image.get_image, image)
    if image.status != "active":
        raise OpenStackError(f"Image {image.id} is {image.status!r}, not active: cannot download it")
    try:
        response = conn.image.download_image(image, stream=True)
    except api_errors() as error:
        if is_not_found(error):
            raise OpenStackError(f"Image {image.id} disappeared before its download") from error
        raise OpenStackError(f"Failed to start the download of image {image.id}: {error}") from error
    return ImageDownload(image, response, piece_size)


__all__ = [
    "COPY_MODES", "ImageDownload", "choose_copy_mode", "copy_volume_to_image", "create_temporary_snapshot",
    "create_temporary_volume", "describe_volume", "find_volume", "is_error_status", "open_image_download",
    "upload_volume_to_temporary_image",
]
