"""Proves each devcloud site is a real OpenStack: image -> volume -> snapshot -> volume -> image -> bytes.

For each site, as the member user of project dr (not admin): an image holding known bytes, a volume
from it, a snapshot, a volume from the snapshot, that volume uploaded to an image
(os-volume_upload_image), the image downloaded and compared with the original (the volume is
rounded up to 1 GiB: the prefix must match and the rest must be zeros), then everything deleted and
checked gone. Both sites run side by side in threads.
"""
from __future__ import annotations

import hashlib
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from devcloud_fixtures import SITE_NAMES, connect, wait_for, wait_for_gone, wait_for_status

PAYLOAD_SIZE = 3 * 1024 * 1024 + 12345
GIB = 1024 ** 3
STEP_TIMEOUT = 90


def make_payload(seed: str, size: int = PAYLOAD_SIZE) -> bytes:
    """Non-zero, non-repeating bytes: a SHA-256 counter stream."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


def project_leftovers(conn, project_id: str, tag: str, ids: set[str]) -> dict[str, list[str]]:
    """The project's volumes, snapshots and images that this run made (by id or by its name tag).

    The whole project is listed; only this run's resources count, because other tests (and other
    people's runs on a shared devcloud) may own resources in project dr at the same time.
    """
    def ours(resource) -> bool:
        return resource.id in ids or (resource.name or "").startswith(tag)

    return {
        "volumes": [f"{v.name} ({v.status})" for v in conn.block_storage.volumes() if ours(v)],
        "snapshots": [f"{s.name} ({s.status})" for s in conn.block_storage.snapshots() if ours(s)],
        "images": [f"{i.name} ({i.status})" for i in conn.image.images(owner=project_id) if ours(i)],
    }


def check_download(conn, image_id: str, payload: bytes) -> tuple[int, str]:
    """Streams the image; returns (size, sha256 of the prefix); fails if anything after the prefix is not zero."""
    prefix = hashlib.sha256()
    seen = 0
    nonzero_at = None
    response = conn.image.download_image(image_id, stream=True)
    try:
        for chunk in response.iter_content(chunk_size=4 * 1024 * 1024):
            if seen < len(payload):
                head = chunk[: len(payload) - seen]
                prefix.update(head)
                tail = chunk[len(head):]
            else:
                tail = chunk
            if nonzero_at is None and tail.count(0) != len(tail):
                nonzero_at = seen + (len(chunk) - len(tail))
            seen += len(chunk)
    finally:
        response.close()
    assert nonzero_at is None, f"non-zero bytes after the payload, in the chunk at offset {nonzero_at}"
    return seen, prefix.hexdigest()


def site_workflow(site: str, sites: dict[str, Any]) -> dict[str, float]:
    conn = connect(site, sites)
    timings: dict[str, float] = {}
    t_start = time.monotonic()
    tag = f"smoke-{site}-{uuid.uuid4().hex[:8]}"
    payload = make_payload(tag)
    created: dict[str, Any] = {}
    project_id = conn.current_project_id
    try:
        image = conn.image.create_image(
            f"{tag}-source", data=payload, disk_format="raw", container_format="bare",
            allow_duplicates=True, wait=True, timeout=STEP_TIMEOUT)
        created["source_image"] = image.id
        image = wait_for_status(lambda: conn.image.get_image(created["source_image"]), "active", STEP_TIMEOUT,
                                f"{site} source image")
        assert image.size == len(payload), f"{site}: image size {image.size} != {len(payload)}"
        if image.hash_algo and image.hash_value:
            assert image.hash_value == hashlib.new(image.hash_algo, payload).hexdigest()
        timings["image"] = time.monotonic() - t_start

        vol1 = conn.block_storage.create_volume(name=f"{tag}-from-image", size=1, image_id=image.id)
        created["vol1"] = vol1.id
        vol1 = wait_for_status(lambda: conn.block_storage.get_volume(vol1.id), "available", STEP_TIMEOUT,
                               f"{site} volume from image")
        assert vol1.volume_type == sites["sites"][site]["volume_types"]["default"]
        timings["volume_from_image"] = time.monotonic() - t_start

        snap = conn.block_storage.create_snapshot(volume_id=vol1.id, name=f"{tag}-snap")
        created["snap"] = snap.id
        wait_for_status(lambda: conn.block_storage.get_snapshot(snap.id), "available", STEP_TIMEOUT,
                        f"{site} snapshot")
        timings["snapshot"] = time.monotonic() - t_start

        vol2 = conn.block_storage.create_volume(name=f"{tag}-from-snap", size=1, snapshot_id=snap.id)
        created["vol2"] = vol2.id
        wait_for_status(lambda: conn.block_storage.get_volume(vol2.id), "available", STEP_TIMEOUT,
                        f"{site} volume from snapshot")
        timings["volume_from_snapshot"] = time.monotonic() - t_start

        result = conn.block_storage.upload_volume_to_image(
            vol2.id, f"{tag}-uploaded", disk_format="raw", container_format="bare")
        created["uploaded_image"] = result["image_id"]
        uploaded = wait_for_status(lambda: conn.image.get_image(created["uploaded_image"]), "active",
                                   STEP_TIMEOUT, f"{site} uploaded image", failures=("killed", "deleted"))
        wait_for_status(lambda: conn.block_storage.get_volume(vol2.id), "available", STEP_TIMEOUT,
                        f"{site} volume after upload")
        assert uploaded.size == GIB, f"{site}: uploaded image is {uploaded.size} bytes, expected 1 GiB"
        timings["upload_to_image"] = time.monotonic() - t_start

        size, prefix_hash = check_download(conn, uploaded.id, payload)
        assert size == GIB, f"{site}: downloaded {size} bytes, expected 1 GiB"
        assert prefix_hash == hashlib.sha256(payload).hexdigest(), f"{site}: downloaded bytes differ"
        timings["download"] = time.monotonic() - t_start
    finally:
        cleanup(conn, created, site)
    timings["cleanup"] = time.monotonic() - t_start
    leftovers = project_leftovers(conn, project_id, tag, set(created.values()))
    assert leftovers == {"volumes": [], "snapshots": [], "images": []}, f"{site}: left behind: {leftovers}"
    conn.close()
    return timings


def cleanup(conn, created: dict[str, Any], site: str) -> None:
    """Deletes in dependency order: the snapshot's child volume, the snapshot, its volume, then the images
    (on RBD a volume made from an image is its copy-on-write child: Glance refuses the image before it)."""
    if "uploaded_image" in created:
        conn.image.delete_image(created["uploaded_image"], ignore_missing=True)
    if "vol2" in created:
        wait_for(lambda: conn.block_storage.get_volume(created["vol2"]).status != "uploading", STEP_TIMEOUT,
                 f"{site} volume to leave 'uploading'")
        conn.block_storage.delete_volume(created["vol2"], ignore_missing=True)
        # On RBD this volume is the snapshot's clone: the snapshot goes only once it is gone. Without this wait,
        # one run (2026-12-03) ended with Glance refusing the source image (409, in use in the backend store).
        wait_for_gone(lambda: conn.block_storage.get_volume(created["vol2"]), STEP_TIMEOUT, f"{site} vol2")
    if "snap" in created:
        conn.block_storage.delete_snapshot(created["snap"], ignore_missing=True)
        wait_for_gone(lambda: conn.block_storage.get_snapshot(created["snap"]), STEP_TIMEOUT, f"{site} snapshot")
    if "vol1" in created:
        conn.block_storage.delete_volume(created["vol1"], ignore_missing=True)
    for key in ("vol2", "vol1"):
        if key in created:
            wait_for_gone(lambda key=key: conn.block_storage.get_volume(created[key]), STEP_TIMEOUT, f"{site} {key}")
    if "source_image" in created:
        conn.image.delete_image(created["source_image"], ignore_missing=True)
    for key in ("uploaded_image", "source_image"):
        if key in created:
            wait_for_gone(lambda key=key: conn.image.get_image(created[key]), STEP_TIMEOUT, f"{site} {key}")


def test_sites_are_distinct(devcloud_sites, devcloud_connect):
    """Two separate Keystones: the dr projects differ, the member is no admin, the quotas are set."""
    project_ids = set()
    for site in SITE_NAMES:
        info = devcloud_sites["sites"][site]
        conn = devcloud_connect(info["cloud"])
        project_ids.add(conn.current_project_id)
        roles = conn.session.auth.get_access(conn.session).role_names
        assert "member" in roles and "admin" not in roles, f"{site}: member user has roles {roles}"
        admin = devcloud_connect(info["admin_cloud"])
        quotas = admin.block_storage.get_quota_set(conn.current_project_id)
        for key, value in info["quotas"].items():
            assert getattr(quotas, key) == value, f"{site}: quota {key}"
        types = {vtype.name for vtype in conn.block_storage.types()}
        assert set(info["volume_types"]["all"]) <= types, f"{site}: member sees types {types}"
        assert list(admin.block_storage.backend_pools()), f"{site}: no Cinder backend pool"
    assert len(project_ids) == 2


def test_each_site_roundtrips_bytes(devcloud_sites):
    """The full workflow at both sites at once, within 2 minutes."""
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(SITE_NAMES)) as pool:
        futures = {site: pool.submit(site_workflow, site, devcloud_sites) for site in SITE_NAMES}
        results = {site: future.result() for site, future in futures.items()}
    elapsed = time.monotonic() - started
    print(f"smoke workflow timings (s since start, per site): {results}; both sites: {elapsed:.1f} s")
    assert elapsed <= 120, f"the smoke workflow took {elapsed:.0f} s for both sites (limit 120 s)"


def allocated_bytes(path: str) -> int:
    """What a (sparse) file holds on the disk under it."""
    os.sync()
    return os.stat(path).st_blocks * 512


def test_an_nfs_share_image_shrinks_back_when_a_volume_is_deleted(devcloud_sites, devcloud_connect):
    """The share is a loop-mounted ext4 image mounted with discard: the blocks of a deleted volume file
    are punched out of the image, so a day of tests no longer leaves it holding every block ever written."""
    written = 64 * 1024 * 1024
    nfs_sites = [site for site in SITE_NAMES if devcloud_sites["sites"][site]["backend"] == "nfs"]
    assert nfs_sites, "site A always runs on NFS"
    for site in nfs_sites:
        info = devcloud_sites["sites"][site]
        mounts = [line.split() for line in Path("/proc/mounts").read_text().splitlines()]
        options = [fields[3].split(",") for fields in mounts if fields[1] == info["share_mount"]]
        assert options and "discard" in options[-1], f"{site}'s share is mounted with {options}"
        conn = devcloud_connect(info["cloud"])
        volume = conn.block_storage.create_volume(size=1, name=f"smoke-discard-{uuid.uuid4().hex[:8]}")
        try:
            wait_for_status(lambda: conn.block_storage.get_volume(volume.id), "available", STEP_TIMEOUT,
                            f"{site} volume")
            with open(Path(info["share_mount"]) / f"volume-{volume.id}", "r+b") as handle:
                handle.write(os.urandom(written))
                handle.flush()
                os.fsync(handle.fileno())
            holding = allocated_bytes(info["share_image"])
        finally:
            conn.block_storage.delete_volume(volume.id, ignore_missing=True)
            wait_for_gone(lambda: conn.block_storage.get_volume(volume.id), STEP_TIMEOUT, f"{site} volume")
        # ext4 discards at its journal commit; sync forces one, so this is a bounded poll, not a sleep.
        wait_for(lambda: allocated_bytes(info["share_image"]) <= holding - written * 3 // 4, 30,
                 f"{site}'s share image to give back the deleted volume's {written} bytes")
