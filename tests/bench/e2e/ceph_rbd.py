# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Site B on Ceph RBD (sites.yml ``backend: rbd``): what the race reads from the cluster.

Through the ``rbd`` and ``ceph`` commands of Debian's ceph-common (the harness's own venv has no
rados/rbd bindings), with the site's ``ceph.conf`` and its cephx users from sites.yml: Cinder's
user (``profile rbd`` on ``volumes``) to read a restored volume, Glance's (``profile rbd`` on
``images``) to list the image store, the Ceph admin (ceph.conf's default keyring) for free space.

- A restored volume's bytes: ``rbd export volumes/volume-<id> -`` streamed into sha256, 8 MiB at
  a time (never the whole volume in memory).
- Glance's images: ``rbd ls -l images`` once a second (a process each time, about 0.06 CPU s);
  the bytes are the size Glance reports for the image (the RBD image is grown by doubling while
  Glance writes it and trimmed at the end, so the largest RBD size seen overshoots).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import tempfile

from common import MIB, BenchError, sites


def site_backend(site: str) -> str:
    info = sites()["sites"][site]
    return info.get("backend") or info.get("volume_backend") or "nfs"


class Ceph:
    """One site's Ceph as sites.yml describes it."""

    def __init__(self, site: str) -> None:
        info = sites()
        site_ceph = info["sites"][site].get("ceph")
        if not site_ceph:
            raise BenchError(f"sites.yml says {site} is on rbd but has no `ceph` section for it")
        self.site = site
        self.conf = site_ceph["conf"]
        self.volume_pool = site_ceph["volume_pool"]
        self.image_pool = site_ceph["image_pool"]
        users = info["ceph"]["users"]
        self.cinder = users[site_ceph["cinder_user"]]
        self.glance = users[site_ceph["glance_user"]]

    def rbd(self, user: dict | None, *args: str) -> list[str]:
        # No admin socket: Cinder's and Glance's own clients hold $run_dir/ceph-client.<user>.asok,
        # and a second client of the same name would fight over that path (and remove it at exit).
        command = ["rbd", "-c", self.conf, "--admin-socket", ""]
        if user:
            command += ["--id", user["name"].split(".", 1)[1], "--keyring", user["keyring"]]
        return command + list(args)

    def run(self, command: list[str], timeout: float = 60) -> str:
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            raise BenchError(f"{' '.join(command[:1] + command[-3:])}: no answer in {timeout:.0f} s") from exc
        if done.returncode != 0:
            raise BenchError(f"{' '.join(command[:1] + command[-3:])} failed ({done.returncode}): {done.stderr.strip()[-400:]}")
        return done.stdout

    def volume_spec(self, volume_id: str) -> str:
        return f"{self.volume_pool}/volume-{volume_id}"

    def volume_exists(self, volume_id: str) -> bool:
        try:
            self.run(self.rbd(self.cinder, "info", "--format", "json", self.volume_spec(volume_id)))
            return True
        except BenchError:
            return False

    def hash_volume(self, volume_id: str, timeout: float) -> tuple:
        """sha256 and length of ``rbd export volumes/volume-<id> -``, read from the pipe 8 MiB at a time."""
        digest = hashlib.sha256()
        size = 0
        command = self.rbd(self.cinder, "export", "--no-progress", self.volume_spec(volume_id), "-")
        with tempfile.TemporaryFile() as err:
            with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=err) as process:
                try:
                    while data := process.stdout.read(8 * MIB):
                        digest.update(data)
                        size += len(data)
                    process.wait(timeout=timeout)
                except BaseException:
                    process.kill()
                    raise
            if process.returncode != 0:
                err.seek(0)
                raise BenchError(f"rbd export {self.volume_spec(volume_id)} failed ({process.returncode}): "
                                 f"{err.read().decode(errors='replace').strip()[-400:]}")
        return digest, size

    def images(self) -> dict[str, int]:
        """Every RBD image of Glance's pool (image id -> current RBD size, 0 when unknown), snapshots left out.

        ``ls -l`` opens each image and fails when one is removed meanwhile (Glance deleting a restore
        image): the names alone (``ls``, which opens none) are then listed, with size 0.
        """
        try:
            listing = json.loads(self.run(self.rbd(self.glance, "ls", "-l", "--format", "json", self.image_pool), timeout=30) or "[]")
        except BenchError:
            names = json.loads(self.run(self.rbd(self.glance, "ls", "--format", "json", self.image_pool), timeout=30) or "[]")
            return {name: 0 for name in names}
        return {entry["image"]: int(entry.get("size", 0)) for entry in listing if "snapshot" not in entry}

    def avail_bytes(self) -> int:
        """Bytes the cluster can still store (``ceph df``: the OSD is a small file on the shared disk)."""
        output = self.run(["ceph", "-c", self.conf, "--admin-socket", "", "df", "--format", "json"], timeout=30)
        return int(json.loads(output)["stats"]["total_avail_bytes"])
