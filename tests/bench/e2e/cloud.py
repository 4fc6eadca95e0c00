# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The race's own project at both sites, its source volumes, and the byte-identity check.

Every contender works in one project, ``bench-e2e``, with one member user, made at both sites for
the run (and removed after it): the race's volumes never count against the quotas of project
``dr``, which other people's tests use at the same time, and the final sweep can remove everything
of the project without touching anyone else's resources.

A restored volume's bytes are read where the site keeps them (sites.yml ``backend``): the volume
file on the site's NFS share, or the RBD image ``volumes/volume-<id>`` through ``rbd export``
(ceph_rbd.py). Source volumes are made at site A, which is always on NFS.
"""

from __future__ import annotations

import hashlib
import os
import random
import secrets
import sys
from pathlib import Path

import openstack

import ceph_rbd
from common import GIB, MIB, PREFIX, BenchError, data_timeout, log, sites, wait_until

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench import BLOCK, PARAGRAPH, block_bytes  # noqa: E402  pylint: disable=wrong-import-position

PROJECT = PREFIX
MEMBER = f"{PREFIX}-member"
QUOTAS = {"volumes": 30, "snapshots": 20, "gigabytes": 400, "backups": 30, "backup_gigabytes": 800}


def admin(site: str) -> openstack.connection.Connection:
    info = sites()
    config = openstack.config.OpenStackConfig(config_files=[info["clouds_yaml"]], load_envvars=False)
    return openstack.connection.Connection(config=config.get_one(cloud=info["sites"][site]["admin_cloud"]))


class Project:
    """The race's project and member user at one site; ``cloud`` is the dict the modules get as ``cloud``."""

    def __init__(self, site: str, password: str) -> None:
        self.site = site
        self.admin = admin(site)
        info = sites()["sites"][site]
        self.backend = ceph_rbd.site_backend(site)
        self.share = Path(info["share_mount"]) if info.get("share_mount") else None
        self.ceph = ceph_rbd.Ceph(site) if self.backend == "rbd" else None
        self.cloud = {
            "auth": {"auth_url": info["endpoints"]["identity"], "username": MEMBER, "password": password,
                     "project_name": PROJECT, "user_domain_name": "Default", "project_domain_name": "Default"},
            "region_name": info["region"], "interface": "public", "identity_api_version": 3,
        }
        self.password = password
        self.project_id = ""
        self._member = None

    def create(self) -> None:
        ident = self.admin.identity
        domain = ident.find_domain("default")
        project = ident.find_project(PROJECT, domain_id=domain.id) or ident.create_project(
            name=PROJECT, domain_id=domain.id, description="make bench-e2e (removed when the race ends)")
        self.project_id = project.id
        user = ident.find_user(MEMBER, domain_id=domain.id)
        if user:
            ident.update_user(user, password=self.password)
        else:
            user = ident.create_user(name=MEMBER, password=self.password, domain_id=domain.id, default_project_id=project.id)
        for role in ("member", "reader"):
            self.admin.grant_role(role, user=user.id, project=project.id)
        response = self.admin.block_storage.put(f"/os-quota-sets/{project.id}", json={"quota_set": QUOTAS})
        if response.status_code >= 300:
            raise BenchError(f"{self.site}: setting the quotas of {PROJECT} failed: {response.status_code} {response.text}")

    @property
    def member(self) -> openstack.connection.Connection:
        if self._member is None:
            self._member = openstack.connect(**self.cloud, load_yaml_config=False, load_envvars=False)
        return self._member

    def image_owner(self, image_id: str) -> str | None:
        return self.image_info(image_id)[0]

    def image_info(self, image_id: str) -> tuple[str | None, int | None]:
        """(owner, size) of an image as Glance reports them; (None, None) once it is gone."""
        try:
            image = self.admin.image.get_image(image_id)
        except openstack.exceptions.NotFoundException:
            return None, None
        return image.owner, image.size

    def volume_file(self, volume_id: str) -> Path:
        if self.share is None:
            raise BenchError(f"{self.site} is on {self.backend}: its volumes have no file on an NFS share")
        return self.share / f"volume-{volume_id}"

    def remove(self) -> list[str]:
        """Delete the user and the project once nothing of the project is left; returns what is left."""
        left = self.leftovers()
        if left:
            return left
        ident = self.admin.identity
        user = ident.find_user(MEMBER, domain_id="default")
        if user:
            ident.delete_user(user)
        if self.project_id:
            ident.delete_project(self.project_id, ignore_missing=True)
        return []

    def leftovers(self) -> list[str]:
        conn = self.admin
        if not self.project_id:
            return []
        query = {"all_projects": True, "project_id": self.project_id}
        found = [f"volume {v.id} ({v.status})" for v in conn.block_storage.volumes(**query)]
        found += [f"snapshot {s.id} ({s.status})" for s in conn.block_storage.snapshots(**query)]
        found += [f"backup {b.id} ({b.status})" for b in conn.block_storage.backups(**query)]
        found += [f"image {i.id} ({i.status})" for i in conn.image.images(owner=self.project_id)]
        return found


# --- deletions, each waited for with a deadline -------------------------------------------------


BUSY = ("uploading", "backing-up", "restoring-backup", "creating", "downloading", "attaching", "detaching", "extending")


def delete_volume(conn, volume_id: str, what: str = "volume") -> None:
    """Delete a volume; one still busy (an interrupted upload or backup) is waited for first, forced last."""
    try:
        volume = conn.block_storage.get_volume(volume_id)
    except openstack.exceptions.NotFoundException:
        return
    if volume.status in BUSY:
        try:
            wait_until(f"{what} {volume_id} to settle", lambda: conn.block_storage.get_volume(volume_id).status not in BUSY, 600)
        except BenchError as exc:
            log(f"{exc}: forcing its deletion")
    try:
        conn.block_storage.delete_volume(volume_id, force=False)
    except openstack.exceptions.NotFoundException:
        return
    except openstack.exceptions.HttpException as exc:
        # Still refused (left attaching or in error): an admin's force-delete is what an operator would do.
        log(f"deleting {what} {volume_id}: {exc}; forcing")
        conn.block_storage.delete_volume(volume_id, force=True)
    wait_gone(lambda: conn.block_storage.get_volume(volume_id), f"{what} {volume_id}")


def delete_snapshot(conn, snapshot_id: str) -> None:
    try:
        conn.block_storage.delete_snapshot(snapshot_id)
    except openstack.exceptions.NotFoundException:
        return
    wait_gone(lambda: conn.block_storage.get_snapshot(snapshot_id), f"snapshot {snapshot_id}")


def delete_backup(conn, backup_id: str) -> None:
    try:
        conn.block_storage.delete_backup(backup_id)
    except openstack.exceptions.NotFoundException:
        return
    except openstack.exceptions.HttpException:
        conn.block_storage.delete_backup(backup_id, force=True)
    wait_gone(lambda: conn.block_storage.get_backup(backup_id), f"backup {backup_id}", timeout=600)


def delete_image(conn, image_id: str) -> None:
    conn.image.delete_image(image_id, ignore_missing=True)


def wait_gone(get, what: str, timeout: float = 300) -> None:
    def gone() -> bool:
        try:
            resource = get()
        except openstack.exceptions.NotFoundException:
            return True
        if (resource.status or "").lower() in ("error_deleting", "error"):
            raise BenchError(f"{what} went to {resource.status} while being deleted")
        return False

    wait_until(f"deletion of {what}", gone, timeout)


def wait_status(get, status: str, what: str, timeout: float) -> object:
    def ready():
        resource = get()
        current = (resource.status or "").lower()
        if current.startswith("error"):
            raise BenchError(f"{what} went to {resource.status}")
        return resource if current == status else None

    return wait_until(f"{what} to be {status}", ready, timeout)


def sweep(project: Project) -> None:
    """Remove everything the race's project holds at this site (after a failure or Ctrl-C too)."""
    conn = project.admin
    if not project.project_id:
        return
    query = {"all_projects": True, "project_id": project.project_id}
    for backup in sorted(conn.block_storage.backups(**query), key=lambda b: not b.is_incremental):
        try_step(f"delete backup {backup.id}", delete_backup, conn, backup.id)
    for volume in conn.block_storage.volumes(**query):
        try_step(f"delete volume {volume.id}", delete_volume, conn, volume.id)
    for snapshot in conn.block_storage.snapshots(**query):
        try_step(f"delete snapshot {snapshot.id}", delete_snapshot, conn, snapshot.id)
    for volume in conn.block_storage.volumes(**query):  # clones made from the snapshots just removed
        try_step(f"delete volume {volume.id}", delete_volume, conn, volume.id)
    for image in conn.image.images(owner=project.project_id):
        try_step(f"delete image {image.id}", delete_image, conn, image.id)


def try_step(what: str, function, *args) -> bool:
    try:
        function(*args)
        return True
    except Exception as exc:  # pylint: disable=broad-except
        log(f"cleanup: {what} failed: {exc}")
        return False


# --- the source volumes -------------------------------------------------------------------------


class VolumeSpec:
    """A source volume's layout. ``Ng``: the streaming image of streaming.md (1/4 random, 1/4 text,
    1/2 zeros) over N GiB; ``Ng-sparse`` (and ``16g``): N GiB with N/16 GiB of data, one 4 MiB block in
    16 written (alternately random and text), the rest never written, as a typical volume is."""

    def __init__(self, label: str) -> None:
        self.label = label
        name = label[:-len("-sparse")] if label.endswith("-sparse") else label
        if not name.endswith("g") or not name[:-1].isdigit():
            raise BenchError(f"unknown volume {label!r}: use e.g. 1g, 4g, 16g, 2g-sparse")
        self.size_gib = int(name[:-1])
        self.sparse = label.endswith("-sparse") or label == "16g"

    def block(self, index: int) -> bytes | None:
        if not self.sparse:
            return block_bytes(index)
        if index % 16:
            return None
        if index % 32 == 0:
            return random.Random(index).randbytes(BLOCK)
        paragraph = PARAGRAPH.format(i=index).encode("ascii")
        return (paragraph * (BLOCK // len(paragraph) + 1))[:BLOCK]

    def describe(self) -> str:
        data = sum(1 for index in range(self.size_gib * GIB // BLOCK) if self.block_kind(index)) * BLOCK
        return f"{self.size_gib} GiB, {data // MIB} MiB of data" + (" (sparse layout)" if self.sparse else " (streaming.md layout)")

    def block_kind(self, index: int) -> bool:
        if self.sparse:
            return index % 16 == 0
        return index % 4 in (0, 2)


def create_source_volume(project: Project, spec: VolumeSpec, run_id: str) -> dict:
    """An empty volume at site A, filled by writing its file on the NFS share (as root, as an admin could).

    Writing the file is quicker than any upload and leaves it sparse where the layout has zeros.
    Returns id, name, size and the sha256 of the whole volume.
    """
    conn = project.member
    name = f"{PREFIX}-{run_id}-src-{spec.label}"
    volume = conn.block_storage.create_volume(name=name, size=spec.size_gib)
    volume = wait_status(lambda: conn.block_storage.get_volume(volume.id), "available", f"source volume {name}", 300)
    path = project.volume_file(volume.id)
    if not path.exists():
        raise BenchError(f"{path} does not exist: is the NFS share of {project.site} where sites.yml says?")
    digest = hashlib.sha256()
    zero = bytes(BLOCK)
    with open(path, "r+b") as out:
        for index in range(spec.size_gib * GIB // BLOCK):
            data = spec.block(index)
            digest.update(zero if data is None else data)
            if data is not None:
                out.seek(index * BLOCK)
                out.write(data)
        out.flush()
        os.fsync(out.fileno())
    allocated = os.stat(path).st_blocks * 512
    log(f"source volume {name} ({volume.id}): {spec.describe()}, sha256 {digest.hexdigest()[:16]}..., "
        f"{allocated // MIB} MiB allocated on the share")
    return {"id": volume.id, "name": name, "size_gib": spec.size_gib, "sha256": digest.hexdigest(),
            "bytes": spec.size_gib * GIB, "allocated_bytes": allocated, "layout": spec.describe()}


def identity(path: Path, expected_sha256: str, expected_size: int) -> dict:
    """sha256 of a restored volume's file against the source; a short file is also checked zero-padded."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while data := handle.read(8 * MIB):
            digest.update(data)
            size += len(data)
    return compare(digest, size, expected_sha256, expected_size)


def compare(digest, size: int, expected_sha256: str, expected_size: int) -> dict:
    result = {"identical": digest.hexdigest() == expected_sha256 and size == expected_size,
              "size": size, "expected_size": expected_size, "sha256": digest.hexdigest()}
    if size < expected_size:
        # Cinder's restores onto NFS came out 4 MiB short (glance-path.md): is the data right otherwise?
        padded = digest.copy()
        missing = expected_size - size
        zero = bytes(8 * MIB)
        while missing:
            padded.update(zero[:min(missing, len(zero))])
            missing -= min(missing, len(zero))
        result["short_by_bytes"] = expected_size - size
        result["identical_when_zero_padded"] = padded.hexdigest() == expected_sha256
    return result


def restored_identity(project: Project, volume_id: str, source: dict) -> dict:
    if project.ceph is not None:
        ceph = project.ceph
        # The RBD image exists once Cinder made the volume; wait only for it to exist (bounded).
        wait_until(f"RBD image {ceph.volume_spec(volume_id)} to exist", lambda: ceph.volume_exists(volume_id), 60, interval=1)
        digest, size = ceph.hash_volume(volume_id, timeout_for(source))
        return dict(compare(digest, size, source["sha256"], source["bytes"]), read_from=f"rbd export {ceph.volume_spec(volume_id)}")
    path = project.volume_file(volume_id)
    # The file appears when Cinder creates the volume; wait only for it to exist (bounded).
    wait_until(f"{path} to exist", path.exists, 60)
    return dict(identity(path, source["sha256"], source["bytes"]), read_from=str(path))


def new_password() -> str:
    return secrets.token_urlsafe(18)


def timeout_for(source: dict) -> float:
    return data_timeout(source["size_gib"])
