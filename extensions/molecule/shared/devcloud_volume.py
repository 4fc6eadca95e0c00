# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Test helper of the molecule scenarios: create or delete a devcloud volume by name.

python devcloud_volume.py create CLOUD NAME [--random-mib N] [KEY=VALUE ...]
    a 1 GiB volume with that metadata; with --random-mib, its first N MiB are random bytes (written
    through a temporary Glance image, removed once the volume exists), so a backup has chunks to store
python devcloud_volume.py delete CLOUD NAME
    every volume of that name
Prints {"changed": bool, "ids": [...]} as JSON. Both are idempotent.
"""

from __future__ import annotations

import io
import json
import os
import sys

import openstack


def create(conn, name: str, pairs: list[str]) -> dict:
    existing = [v for v in conn.block_storage.volumes() if v.name == name]
    if existing:
        return {"changed": False, "ids": [v.id for v in existing]}
    random_mib = 0
    if pairs[:1] == ["--random-mib"]:
        random_mib, pairs = int(pairs[1]), pairs[2:]
    metadata = dict(pair.split("=", 1) for pair in pairs)
    image = None
    if random_mib:
        image = conn.image.create_image(name=f"{name}-data", data=io.BytesIO(os.urandom(random_mib * 1024 * 1024)),
                                        disk_format="raw", container_format="bare", visibility="private", validate_checksum=False)
        image = conn.image.wait_for_status(image, "active", failures=["killed", "deleted"], interval=2, wait=300)
    try:
        source = {"image_id": image.id} if image is not None else {}
        volume = conn.block_storage.create_volume(name=name, size=1, metadata=metadata, **source)
        volume = conn.block_storage.wait_for_status(volume, "available", failures=["error"], interval=2, wait=300)
    finally:
        if image is not None:
            conn.image.delete_image(image, ignore_missing=True)
    return {"changed": True, "ids": [volume.id]}


def delete(conn, name: str) -> dict:
    doomed = [v for v in conn.block_storage.volumes() if v.name == name]
    for volume in doomed:
        conn.block_storage.delete_volume(volume)
    for volume in doomed:
        conn.block_storage.wait_for_delete(volume, interval=2, wait=300)
    return {"changed": bool(doomed), "ids": [v.id for v in doomed]}


def main() -> None:
    action, cloud, name = sys.argv[1:4]
    conn = openstack.connect(cloud=cloud)
    result = create(conn, name, sys.argv[4:]) if action == "create" else delete(conn, name)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
