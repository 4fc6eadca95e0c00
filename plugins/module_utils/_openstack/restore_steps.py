# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restore side: a private image fed from a stream, a volume from it, its properties restored.

In the order a restore runs them: resolve_volume_type -> create_restore_image -> upload_image_data ->
create_volume_from_image -> set_volume_bootable -> set_volume_image_metadata -> mark_restore_complete ->
remove_volume_metadata.
The image and the volume are registered as temporaries the moment their create call returns.
"""

from __future__ import annotations

import typing as t

from ansible_collections.openstack_dr.bank.plugins.module_utils import _notices as notices
from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import InvalidInputError, OpenStackError
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack._sdk import (
    api_errors,
    call,
    is_not_found,
    sdk_exceptions,
    status_code,
)
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack.tags import PARENT_OF_TAG, RESTORE_COMPLETE_TAG, TAG_KEYS, TAG_RUN
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack.temporaries import Temporaries, Temporary
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack.waiters import Deadline, wait_image_active, wait_volume_status

UPLOAD_PIECE_SIZE = 1024 * 1024
# Image metadata that Glance or Cinder compute for the image a volume was really made from: restoring
# the source site's values would describe an image that does not exist here, so they are skipped.
MANAGED_IMAGE_METADATA_KEYS = frozenset({
    "checksum", "size", "virtual_size", "image_id", "image_name", "id", "name", "status", "owner", "visibility",
    "protected", "container_format", "disk_format", "min_disk", "min_ram", "os_hash_algo", "os_hash_value",
    "created_at", "updated_at", "locations", "direct_url", "stores", "tags", "file", "schema", "self",
    "signature_verified",
})
# owner_specified.openstack.*: openstacksdk's md5, sha256 and object name of the source's seed image,
# which describe that file, not the restored volume.
MANAGED_IMAGE_METADATA_PREFIXES = ("os_glance_", "owner_specified.openstack.")
_QUOTA_MARKERS = ("OverLimit", "VolumeSizeExceedsAvailableQuota", "VolumeLimitExceeded", "quota", "Quota")


def create_restore_image(conn: t.Any, temps: Temporaries, *, disk_format: str, min_disk: int, min_ram: int = 0) -> tuple[t.Any, Temporary]:
    """Private image record of `disk_format` (no data yet), tagged temporary and registered at once.

    Returns (image, its registration), so the caller can remove it as a step once the volume exists.
    """
    name = temps.name("image")
    body: dict[str, t.Any] = {
        "name": name, "disk_format": disk_format, "container_format": "bare", "visibility": "private",
        "min_disk": int(min_disk), "min_ram": int(min_ram or 0),
    }
    body.update({k: str(v) for k, v in temps.tags.items()})
    response = call(f"create image {name!r}", conn.image.post, "/images", json=body, headers={"Accept": "application/json"})
    raise_for_response(f"create image {name!r}", response)
    image_id = response.json()["id"]
    registration = temps.register_image(image_id, name)
    return call(f"get image {image_id}", conn.image.get_image, image_id), registration


class _SizedBody:
    """Request body of a known length: requests sends Content-Length, never chunked encoding.

    Glance under uWSGI stalls on chunked pieces over ~4 MB. Exceptions from `read` are stored so
    the caller re-raises them as they are, not as the HTTP library's wrapping of them.
    """

    def __init__(self, fileobj: t.Any, size: int, piece_size: int) -> None:
        self.fileobj = fileobj
        self.size = size
        self.piece_size = piece_size
        self.sent = 0
        self.error: BaseException | None = None

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> t.Iterator[bytes]:
        while self.sent < self.size:
            try:
                piece = self.fileobj.read(min(self.piece_size, self.size - self.sent))
            except BaseException as error:
                self.error = error
                raise
            if not piece:
                self.error = OpenStackError(f"The image data ended after {self.sent} of the {self.size} bytes announced")
                raise self.error
            self.sent += len(piece)
            if self.sent > self.size:
                self.error = OpenStackError(f"The image data source returned more than the {self.size} bytes announced")
                raise self.error
            yield piece
        try:
            # One more read: a longer source is an error, and the reader may verify its end here.
            extra = self.fileobj.read(1)
        except BaseException as error:
            self.error = error
            raise
        if extra:
            self.error = OpenStackError(f"The image data source holds more than the {self.size} bytes announced")
            raise self.error


def upload_image_data(conn: t.Any, image: t.Any, fileobj: t.Any, size: int, *, deadline: Deadline,
                      piece_size: int = UPLOAD_PIECE_SIZE) -> t.Any:
    """PUT /v2/images/{id}/file from `fileobj.read(n)` with Content-Length = size; wait active.

    An exception raised by `fileobj.read` propagates as it is. Returns the active image.
    """
    image_id = getattr(image, "id", image)
    body = _SizedBody(fileobj, int(size), piece_size)
    headers = {
        "Content-Type": "application/octet-stream",
        "Accept": "",
        "Content-Length": str(int(size)),
        "X-OpenStack-Image-Size": str(int(size)),
    }
    try:
        # connect_retries=0: a retry would resend a half-consumed stream.
        response = conn.image.put(f"/images/{image_id}/file", data=body, headers=headers, connect_retries=0)
    except BaseException as error:
        if body.error is not None and body.error is not error:
            raise body.error from None
        if isinstance(error, api_errors()):
            raise OpenStackError(f"Failed to upload data to image {image_id}: {error}") from error
        raise
    if body.error is not None:
        raise body.error
    raise_for_response(f"upload data to image {image_id}", response)
    return wait_image_active(conn, image_id, deadline)


def resolve_volume_type(conn: t.Any, requested: str | None, source_type_name: str | None) -> tuple[str | None, str]:
    """(type name or None for the target's default, reason). Requested wins, then the source's, then the default."""
    types = call("list volume types", lambda: list(conn.block_storage.types()))
    by_name = {vt.name: vt for vt in types}
    by_id = {vt.id: vt for vt in types}
    if requested:
        found = by_name.get(requested) or by_id.get(requested)
        if found is None:
            raise InvalidInputError(
                f"unknown volume_type {requested}; available: {', '.join(sorted(by_name)) or 'none'}", volume_type=requested
            )
        return found.name, f"volume type {found.name} as requested"
    if source_type_name and source_type_name in by_name:
        return source_type_name, f"volume type {source_type_name} of the source volume, which exists here"
    default = _default_volume_type(conn)
    what = f"the target's default volume type ({default})" if default else "the target's default volume type"
    if source_type_name:
        return None, f"the source volume type {source_type_name} does not exist here: using {what}"
    return None, f"the source volume had no type: using {what}"


def _default_volume_type(conn: t.Any) -> str | None:
    try:
        return conn.block_storage.get_type("default").name
    except api_errors():
        # Older Cinder or policy: the name is only for the message.
        return None


def create_volume_from_image(conn: t.Any, temps: Temporaries, image: t.Any, *, name: str, size: int, deadline: Deadline,
                             volume_type: str | None = None, availability_zone: str | None = None,
                             metadata: t.Mapping[str, str] | None = None, description: str | None = None) -> tuple[t.Any, Temporary]:
    """New volume (size in GiB) from `image`, tagged and registered as a temporary at once, waited available.

    Returns (volume, its registration): the caller keeps it (Temporaries.keep) once it is complete,
    so a failure, a timeout or SIGTERM during the wait removes it. A quota refusal raises
    OpenStackError("... quota exceeded ...") with nothing created.
    """
    image_id = getattr(image, "id", image)
    request: dict[str, t.Any] = {"name": name, "size": int(size), "image_id": image_id,
                                 "metadata": {k: str(v) for k, v in dict(metadata or {}, **temps.tags).items()}}
    optional = {"volume_type": volume_type, "availability_zone": availability_zone, "description": description}
    request.update({key: value for key, value in optional.items() if value is not None})
    try:
        volume = conn.block_storage.create_volume(**request)
    except api_errors() as error:
        if _is_quota_error(error):
            raise OpenStackError(
                f"Cannot create volume {name!r} of {size} GiB: quota exceeded ({error}); nothing was created",
                http_status=status_code(error), reason="quota",
            ) from error
        raise OpenStackError(f"Failed to create volume {name!r} from image {image_id}: {error}", http_status=status_code(error)) from error
    registration = temps.register_volume(volume.id, name)
    return wait_volume_status(conn, volume.id, ["available"], deadline), registration


def _is_quota_error(error: BaseException) -> bool:
    if status_code(error) == 413:
        return True
    text = " ".join(str(part) for part in (error, getattr(error, "details", ""), getattr(getattr(error, "response", None), "text", "")))
    return any(marker in text for marker in _QUOTA_MARKERS)


def set_volume_bootable(conn: t.Any, volume: t.Any, bootable: bool) -> None:
    volume_id = getattr(volume, "id", volume)
    call(f"set the bootable flag of volume {volume_id}", conn.block_storage.set_volume_bootable_status, volume_id, bool(bootable))


def restorable_image_metadata(metadata: t.Mapping[str, t.Any] | None) -> dict[str, str]:
    """The keys of a source volume's image metadata that set_volume_image_metadata restores."""
    kept = {}
    for key, value in (metadata or {}).items():
        if key in MANAGED_IMAGE_METADATA_KEYS or key in TAG_KEYS or key.startswith(MANAGED_IMAGE_METADATA_PREFIXES):
            continue
        kept[key] = str(value)
    return kept


def set_volume_image_metadata(conn: t.Any, volume: t.Any, metadata: t.Mapping[str, t.Any] | None) -> dict[str, list[str]]:
    """Restore the source's volume_image_metadata (hw_*, os_*, custom keys) and drop our temporary tags.

    Keys Glance/Cinder manage themselves (checksum, size, image_id, image_name, formats, min_*,
    os_hash_*, os_glance_*) keep the values of the image the volume was really made from.
    Returns {"set": [...], "skipped": [...], "removed": [...]}.
    """
    volume_id = getattr(volume, "id", volume)
    wanted = restorable_image_metadata(metadata)
    skipped = sorted(set(metadata or {}) - set(wanted))
    if wanted:
        call(f"set image metadata on volume {volume_id}", conn.block_storage.set_volume_image_metadata, volume_id, **wanted)
    current = call(f"get volume {volume_id}", conn.block_storage.get_volume, volume_id)
    # The volume inherited the restore image's properties, our temporary tags included.
    ours = sorted(k for k in (current.volume_image_metadata or {}) if k in TAG_KEYS)
    if ours:
        call(f"remove temporary tags from volume {volume_id}", conn.block_storage.delete_volume_image_metadata, volume_id, keys=ours)
    return {"set": sorted(wanted), "skipped": skipped, "removed": ours}


def remove_volume_metadata(conn: t.Any, volume: t.Any, keys: t.Iterable[str]) -> None:
    volume_id = getattr(volume, "id", volume)
    keys = list(keys)
    call(f"remove metadata {', '.join(keys)} from volume {volume_id}", conn.block_storage.delete_volume_metadata, volume, keys=keys)


def mark_restore_complete(conn: t.Any, volume: t.Any, completed_at: str) -> None:
    """The restore's completion mark: set last, once the bytes, the bootable flag and the image metadata are in place."""
    volume_id = getattr(volume, "id", volume)
    call(f"mark volume {volume_id} as restored", conn.block_storage.set_volume_metadata, volume, **{RESTORE_COMPLETE_TAG: completed_at})


def made_from_image_of_run(volume: t.Any) -> bool:
    """True when the volume's bytes came from the restore image of the run that created it.

    A restore image becomes active only after its whole upload passed every chunk check, and the
    volume inherits that image's properties (the run's tag among them): an available volume whose
    inherited run tag matches its own was filled with verified bytes.
    """
    own_run = (getattr(volume, "metadata", None) or {}).get(TAG_RUN)
    inherited_run = (getattr(volume, "volume_image_metadata", None) or {}).get(TAG_RUN)
    return bool(own_run) and own_run == inherited_run


def raise_for_response(what: str, response: t.Any) -> None:
    try:
        sdk_exceptions.raise_from_response(response)
    except api_errors() as error:
        if is_not_found(error):
            raise OpenStackError(f"Failed to {what}: not found ({error})", http_status=404) from error
        raise OpenStackError(f"Failed to {what}: {error}", http_status=status_code(error)) from error


def keep_as_parent(conn: t.Any, temps: Temporaries, registration: t.Any, volume_id: str) -> dict[str, str]:
    """Keep the restore image Glance cannot delete because ``volume_id`` is its copy-on-write clone.

    On Ceph, Cinder clones a raw image instead of copying it, and the image must then live as long as
    the volume. It stays tagged as a temporary, marked with the volume it serves: the cleanup tools
    leave it while that volume exists and remove it after.
    """
    parent = mark_as_parent(conn, registration.id, volume_id)
    temps.keep(registration)
    return parent


def mark_as_parent(conn: t.Any, image_id: str, volume_id: str) -> dict[str, str]:
    """Mark ``image_id`` as the parent ``volume_id`` was cloned from, and tell the operator."""
    call(f"mark image {image_id} as the parent of volume {volume_id}", conn.image.update_image, image_id, **{PARENT_OF_TAG: volume_id})
    notices.add(f"The restore image {image_id} stays as the parent of volume {volume_id}: the cloud cloned the volume from it "
                "(Ceph, raw transfer), so Glance cannot delete it while the volume exists. The cleanup role removes it after "
                "the volume is deleted; transfer_format auto (qcow2) restores without a parent.")
    return {"id": image_id, "parent_of": volume_id}
