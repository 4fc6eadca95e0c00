# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restore side: a private image fed from a stream, a volume from it, its properties restored.

The flow, top to bottom: create_restore_image -> upload_image_data -> resolve_volume_type ->
create_volume_from_image -> set_volume_bootable -> set_volume_image_metadata -> delete_image_and_wait.
"""

from __future__ import annotations

import typing as t

from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import InvalidInputError, OpenStackError
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack._sdk import (
    api_errors,
    call,
    is_not_found,
    sdk_exceptions,
    status_code,
)
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack.connection import DEFAULT_STEP_TIMEOUT
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack.temporaries import (
    DEFAULT_REMOVAL_TIMEOUT,
    TAG_KEYS,
    remove_temporary,
)
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack.waiters import wait_image_active, wait_volume_status

UPLOAD_PIECE_SIZE = 1024 * 1024
# Image metadata that Glance or Cinder compute for the image a volume was really made from: restoring
# the source site's values would describe an image that does not exist here, so they are skipped.
MANAGED_IMAGE_METADATA_KEYS = frozenset({
    "checksum", "size", "virtual_size", "image_id", "image_name", "id", "name", "status", "owner", "visibility",
    "protected", "container_format", "disk_format", "min_disk", "min_ram", "os_hash_algo", "os_hash_value",
    "created_at", "updated_at", "locations", "direct_url", "stores", "tags", "file", "schema", "self",
    "signature_verified",
})
MANAGED_IMAGE_METADATA_PREFIXES = ("os_glance_",)
_QUOTA_MARKERS = ("OverLimit", "VolumeSizeExceedsAvailableQuota", "VolumeLimitExceeded", "quota", "Quota")


def create_restore_image(
    conn: t.Any, name: str, size: int, min_disk: int | None = None, min_ram: int | None = None,
    tags: t.Mapping[str, str] | None = None,
) -> t.Any:
    """Private raw/bare image record (no data yet), tagged with `tags` (the temporary tags).

    `size` (bytes) only sets min_disk when none is given; upload_image_data announces it to Glance.
    The caller records the returned image in its TemporaryResources at once.
    """
    if min_disk is None:
        min_disk = -(-int(size) // (1024 ** 3))
    body: dict[str, t.Any] = {
        "name": name, "disk_format": "raw", "container_format": "bare", "visibility": "private",
        "min_disk": int(min_disk), "min_ram": int(min_ram or 0),
    }
    body.update({k: str(v) for k, v in (tags or {}).items()})
    response = call(f"create image {name!r}", conn.image.post, "/images", json=body, headers={"Accept": "application/json"})
    _raise_for_response(f"create image {name!r}", response)
    image_id = response.json()["id"]
    return call(f"get image {image_id}", conn.image.get_image, image_id)


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


def upload_image_data(
    conn: t.Any, image: t.Any, fileobj: t.Any, size: int, timeout: float = DEFAULT_STEP_TIMEOUT,
    piece_size: int = UPLOAD_PIECE_SIZE,
) -> t.Any:
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
    _raise_for_response(f"upload data to image {image_id}", response)
    return wait_image_active(conn, image_id, timeout)


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


def create_volume_from_image(
    conn: t.Any, name: str, size: int, image: t.Any, volume_type: str | None = None, availability_zone: str | None = None,
    metadata: t.Mapping[str, str] | None = None, description: str | None = None, timeout: float = DEFAULT_STEP_TIMEOUT,
    delete_on_failure: bool = True,
) -> t.Any:
    """New volume (size in GiB) from `image`, waited available.

    A quota refusal raises OpenStackError("... quota exceeded ...") with nothing created. When the
    volume goes to error or the wait times out, it is deleted (unless delete_on_failure is False)
    and the error's details say whether it was left behind.
    """
    image_id = getattr(image, "id", image)
    kwargs: dict[str, t.Any] = {"name": name, "size": int(size), "image_id": image_id}
    if volume_type:
        kwargs["volume_type"] = volume_type
    if availability_zone:
        kwargs["availability_zone"] = availability_zone
    if metadata:
        kwargs["metadata"] = {k: str(v) for k, v in metadata.items()}
    if description is not None:
        kwargs["description"] = description
    try:
        volume = conn.block_storage.create_volume(**kwargs)
    except api_errors() as error:
        if _is_quota_error(error):
            raise OpenStackError(
                f"Cannot create volume {name!r} of {size} GiB: quota exceeded ({error}); nothing was created",
                http_status=status_code(error), reason="quota",
            ) from error
        raise OpenStackError(f"Failed to create volume {name!r} from image {image_id}: {error}", http_status=status_code(error)) from error
    try:
        return wait_volume_status(conn, volume.id, ["available"], timeout)
    except OpenStackError as error:
        if delete_on_failure:
            try:
                delete_volume_and_wait(conn, volume.id, DEFAULT_REMOVAL_TIMEOUT)
                error.details["left_behind"] = []
            except Exception as cleanup_error:  # pylint: disable=broad-exception-caught
                error.details["left_behind"] = [{"type": "volume", "id": volume.id, "name": name, "error": str(cleanup_error)}]
                error.message += f"; volume {volume.id} could not be removed: {cleanup_error}"
        else:
            error.details["left_behind"] = [{"type": "volume", "id": volume.id, "name": name, "error": "kept on request"}]
        raise


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


def find_volumes_by_name(conn: t.Any, name: str) -> list[t.Any]:
    """Every volume of the project named exactly `name` (names are not unique in Cinder)."""
    # Filtering client-side: Cinder refuses a `name` filter unless its resource_filters allow it.
    volumes = call(f"list volumes named {name!r}", lambda: list(conn.block_storage.volumes(details=True)))
    return [v for v in volumes if v.name == name]


def volume_carries_tag(volume: t.Any, key: str, value: str | None = None) -> bool:
    """True when the volume's metadata has `key` (equal to `value` when given): idempotency checks."""
    metadata = dict(getattr(volume, "metadata", None) or {})
    if key not in metadata:
        return False
    return value is None or str(metadata[key]) == str(value)


def delete_volume_and_wait(conn: t.Any, volume: t.Any, timeout: float = DEFAULT_REMOVAL_TIMEOUT) -> None:
    """Delete a volume (after it leaves creating/downloading...) and wait until it is gone."""
    remove_temporary(conn, "volume", getattr(volume, "id", volume), timeout)


def delete_image_and_wait(conn: t.Any, image: t.Any, timeout: float = DEFAULT_REMOVAL_TIMEOUT) -> None:
    remove_temporary(conn, "image", getattr(image, "id", image), timeout)


def _raise_for_response(what: str, response: t.Any) -> None:
    try:
        sdk_exceptions.raise_from_response(response)
    except api_errors() as error:
        if is_not_found(error):
            raise OpenStackError(f"Failed to {what}: not found ({error})", http_status=404) from error
        raise OpenStackError(f"Failed to {what}: {error}", http_status=status_code(error)) from error


__all__ = [
    "MANAGED_IMAGE_METADATA_KEYS", "create_restore_image", "create_volume_from_image", "delete_image_and_wait",
    "delete_volume_and_wait", "find_volumes_by_name", "resolve_volume_type", "restorable_image_metadata",
    "set_volume_bootable", "set_volume_image_metadata", "upload_image_data", "volume_carries_tag",
]
