# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The naive Karbor path (its retired volume-glance plugin), one operation per process.

``python naive.py backup|restore ARGS_JSON`` prints one JSON line: the phases and what was moved.
Run in its own process so its peak RSS is its own (the race reads it with wait4 and VmHWM).

- backup: snapshot -> volume from the snapshot -> upload-to-image (raw, as Cinder streams the
  volume file) -> download the image into 32 MiB objects ``data_1..data_N`` in a Swift container of
  the bank, zeros included, one after the other, with a ``metadata`` object (md5, as Karbor had)
  -> delete the image, the clone and the snapshot.
- restore: a raw image whose data are the objects concatenated (one upload of known length) ->
  a volume from the image -> delete the image (at a site on RBD the volume is a clone of the raw
  image, Glance refuses that: the image is kept and deleted by the race after the volume).
Waits poll every 0.5 s (Karbor polled every 15 s with no deadline; here every wait has one), so
the figures are the path's, not its polling's.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time

import openstack

from common import MIB, POLL, BenchError, wait_until
from measure import Swift

OBJECT = 32 * MIB


def connect(cloud: dict):
    return openstack.connect(**cloud, load_yaml_config=False, load_envvars=False)


def status_is(get, status: str, what: str, timeout: float):
    def ready():
        resource = get()
        current = (resource.status or "").lower()
        if current.startswith("error") or current == "killed":
            raise BenchError(f"{what} went to {resource.status}")
        return resource if current == status else None

    return wait_until(f"{what} to be {status}", ready, timeout, POLL)


def gone(get, what: str, timeout: float) -> None:
    def check() -> bool:
        try:
            get()
        except openstack.exceptions.NotFoundException:
            return True
        return False

    wait_until(f"{what} to be deleted", check, timeout, POLL)


def backup(args: dict) -> dict:
    conn = connect(args["cloud"])
    swift = Swift(args["bank_swift"])
    storage = conn.block_storage
    name, timeout = args["name"], args["timeout"]
    phases: dict[str, float] = {}
    started = time.monotonic()

    def phase(label: str) -> None:
        nonlocal started
        phases[label] = round(time.monotonic() - started, 3)
        started = time.monotonic()

    snapshot = storage.create_snapshot(volume_id=args["volume_id"], name=f"{name}-snap")
    status_is(lambda: storage.get_snapshot(snapshot.id), "available", "snapshot", timeout)
    phase("snapshot")
    clone = storage.create_volume(name=f"{name}-clone", size=args["size_gib"], snapshot_id=snapshot.id)
    status_is(lambda: storage.get_volume(clone.id), "available", "clone volume", timeout)
    phase("clone_volume")
    upload = storage.upload_volume_to_image(clone, f"{name}-image", disk_format="raw", container_format="bare")
    image_id = upload["image_id"]
    status_is(lambda: conn.image.get_image(image_id), "active", "image", timeout)
    status_is(lambda: storage.get_volume(clone.id), "available", "clone volume after upload", timeout)
    phase("upload_to_image")
    image = conn.image.get_image(image_id)
    swift.create_container(args["container"])
    count, total, md5 = stream_into_objects(conn, image_id, swift, args["container"], args["prefix"])
    swift.put(args["container"], f"{args['prefix']}/metadata",
              json.dumps({"md5": md5, "size": total, "objects": count, "volume_id": args["volume_id"]}).encode())
    phase("download_and_put")
    conn.image.delete_image(image_id)
    storage.delete_volume(clone.id)
    gone(lambda: storage.get_volume(clone.id), "clone volume", timeout)
    storage.delete_snapshot(snapshot.id)
    gone(lambda: storage.get_snapshot(snapshot.id), "snapshot", timeout)
    phase("cleanup")
    return {"phases": phases, "objects": count, "bytes": total, "md5": md5, "image_size": image.size}


def stream_into_objects(conn, image_id: str, swift: Swift, container: str, prefix: str) -> tuple[int, int, str]:
    response = conn.image.download_image(image_id, stream=True)
    pending = bytearray()
    count = total = 0
    md5 = hashlib.md5(usedforsecurity=False)
    try:
        for piece in response.iter_content(MIB):
            pending += piece
            md5.update(piece)
            total += len(piece)
            while len(pending) >= OBJECT:
                count += 1
                swift.put(container, f"{prefix}/data_{count}", bytes(pending[:OBJECT]))
                del pending[:OBJECT]
        if pending:
            count += 1
            swift.put(container, f"{prefix}/data_{count}", bytes(pending))
    finally:
        response.close()
    return count, total, md5.hexdigest()


class Concatenated:
    """The backup's objects as one body of known length (Glance under uWSGI refuses big chunked pieces)."""

    def __init__(self, swift: Swift, container: str, prefix: str, count: int, size: int) -> None:
        self.swift, self.container, self.prefix = swift, container, prefix
        self.count, self.size = count, size

    def __len__(self) -> int:
        return self.size

    def __iter__(self):
        for index in range(1, self.count + 1):
            response = self.swift.request("GET", f"/{self.container}/{self.prefix}/data_{index}", stream=True)
            response.raise_for_status()
            yield from response.iter_content(MIB)


def restore(args: dict) -> dict:
    conn = connect(args["cloud"])
    swift = Swift(args["bank_swift"])
    name, timeout = args["name"], args["timeout"]
    phases: dict[str, float] = {}
    started = time.monotonic()
    image = conn.image.create_image(name=f"{name}-image", disk_format="raw", container_format="bare", visibility="private")
    body = Concatenated(swift, args["container"], args["prefix"], args["objects"], args["bytes"])
    response = conn.image.put(f"/images/{image.id}/file", data=body,
                              headers={"Content-Type": "application/octet-stream", "Content-Length": str(args["bytes"])})
    if response.status_code >= 300:
        raise BenchError(f"image upload: HTTP {response.status_code} {response.text[:300]}")
    status_is(lambda: conn.image.get_image(image.id), "active", "image", timeout)
    phases["image_upload"] = round(time.monotonic() - started, 3)
    started = time.monotonic()
    volume = conn.block_storage.create_volume(name=name, size=args["size_gib"], image_id=image.id)
    status_is(lambda: conn.block_storage.get_volume(volume.id), "available", "volume from image", timeout)
    phases["volume_from_image"] = round(time.monotonic() - started, 3)
    started = time.monotonic()
    result = {"phases": phases, "volume_id": volume.id, "image_size": args["bytes"]}
    try:
        conn.image.delete_image(image.id)
    except openstack.exceptions.ConflictException:
        # Glance's RBD store: the volume is a copy-on-write clone of the raw image, which Glance
        # refuses to delete while the volume exists. The race deletes it after the volume.
        result["image_kept"] = image.id
    phases["cleanup"] = round(time.monotonic() - started, 3)
    return result


def main(argv: list[str]) -> int:
    commands = {"backup": backup, "restore": restore}
    if len(argv) != 3 or argv[1] not in commands:
        sys.stderr.write(f"usage: {argv[0]} backup|restore ARGS_JSON\n")
        return 2
    try:
        result = commands[argv[1]](json.loads(argv[2]))
    except Exception as exc:  # pylint: disable=broad-except
        # The race reads the error from this line and removes what is left by its sweep.
        print(json.dumps({"failed": True, "error": f"{type(exc).__name__}: {exc}"}), flush=True)
        return 1
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
