# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the race measures besides wall time: peak RSS, bytes in the bank, bytes through Glance, load.

- Peak RSS: the kernel's high-water mark (``VmHWM`` in /proc/PID/status). For a contender's own
  short-lived processes (the ansible module worker, the naive path's process) a poller reads it
  every 0.2 s while they run (it only grows, so a late poll misses at most the last 0.2 s). For
  long-lived services (cinder-backup, cinder-volume, Glance) it is reset before the operation
  (``echo 5 > /proc/PID/clear_refs``) and read after it.
- Bytes in the bank: the sum of the object sizes listed in a Swift container (the S3 buckets of
  the s3 bank are Swift containers too; a multipart upload's ``+segments`` container is added).
- Bytes through Glance: the size of every new file in a site's Glance store directory while the
  operation runs (images of the race's project only), polled without any API call. At a site whose
  Glance store is RBD: every new RBD image in Glance's pool (``rbd ls -l``, once a second), sized
  by what Glance reports for the image (see ceph_rbd.py), the last RBD size seen when Glance never
  reported one (the image was gone before it was active; the row says so).
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

import psutil
import requests

from common import DEVCLOUD_STATE

HWM = re.compile(r"^VmHWM:\s+(\d+) kB", re.M)
RSS = re.compile(r"^VmRSS:\s+(\d+) kB", re.M)


def status_kib(pid: int, pattern: re.Pattern) -> int:
    try:
        match = pattern.search(Path(f"/proc/{pid}/status").read_text())
    except OSError:
        return 0
    return int(match.group(1)) if match else 0


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def tree(pid: int) -> list[int]:
    try:
        root = psutil.Process(pid)
        return [pid] + [child.pid for child in root.children(recursive=True)]
    except psutil.Error:
        return []


class TreePeak(threading.Thread):
    """Polls the process tree under ``root`` for each process's VmHWM and the tree's summed RSS; also the load."""

    def __init__(self, root: int, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.interval = interval
        self.peaks: dict[int, int] = {}
        self.commands: dict[int, str] = {}
        self.max_tree_rss_kib = 0
        self.max_load = 0.0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            self.sample()
            self._halt.wait(self.interval)

    def sample(self) -> None:
        total = 0
        for pid in tree(self.root):
            hwm = status_kib(pid, HWM)
            total += status_kib(pid, RSS)
            if hwm > self.peaks.get(pid, 0):
                self.peaks[pid] = hwm
                # The module's arguments (-a ...) hold the bank's keys and the passphrase: never recorded.
                self.commands.setdefault(pid, cmdline(pid).split(" -a ", 1)[0][:200])
        self.max_tree_rss_kib = max(self.max_tree_rss_kib, total)
        self.max_load = max(self.max_load, os.getloadavg()[0])

    def stop(self) -> dict:
        self._halt.set()
        self.join(timeout=5)
        return self.summary()

    def summary(self, match: str = "") -> dict:
        """Peak per process (MiB, with its command) and the largest; ``match`` selects processes by command."""
        chosen = {pid: kib for pid, kib in self.peaks.items() if match in self.commands.get(pid, "")}
        top = max(chosen.values(), default=0)
        return {
            "peak_rss_mib": round(top / 1024, 1),
            "tree_peak_sum_rss_mib": round(self.max_tree_rss_kib / 1024, 1),
            "processes": sorted(({"pid": pid, "peak_mib": round(kib / 1024, 1), "command": self.commands.get(pid, "")}
                                 for pid, kib in self.peaks.items()), key=lambda row: -row["peak_mib"]),
            "max_load_1m": round(self.max_load, 2),
        }


# --- long-lived services: reset and read the high-water mark ------------------------------------


def service_pids(name: str) -> list[int]:
    """Every process of a devcloud service (its pid file names a process group: uWSGI has workers)."""
    pid_file = DEVCLOUD_STATE / "pids" / f"{name}.pid"
    try:
        group = int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return []
    pids = []
    for process in psutil.process_iter(["pid"]):
        try:
            if os.getpgid(process.pid) == group:
                pids.append(process.pid)
        except OSError:
            continue
    return pids


def reset_peaks(pids: list[int]) -> None:
    for pid in pids:
        try:
            Path(f"/proc/{pid}/clear_refs").write_text("5")
        except OSError:
            continue


def read_peak_mib(pids: list[int]) -> float:
    return round(max((status_kib(pid, HWM) for pid in pids), default=0) / 1024, 1)


class ServicePeaks:
    """The devcloud services' peak RSS during one operation (reset before, read after)."""

    NAMES = ("site-a-cinder-volume", "site-a-glance", "site-b-cinder-volume", "site-b-glance")

    def __init__(self, extra: dict[str, list[int]] | None = None) -> None:
        self.groups = {name: service_pids(name) for name in self.NAMES}
        self.groups.update(extra or {})
        self.before: dict[str, float] = {}

    def __enter__(self) -> "ServicePeaks":
        # A long-lived service keeps what it allocated before: its RSS at the reset is the floor of its peak.
        self.before = {name: round(max((status_kib(pid, RSS) for pid in pids), default=0) / 1024, 1)
                       for name, pids in self.groups.items()}
        for pids in self.groups.values():
            reset_peaks(pids)
        return self

    def __exit__(self, *exc) -> None:
        pass

    def read(self) -> dict:
        return {name: read_peak_mib(pids) for name, pids in self.groups.items()}


# --- the bank: Swift container sizes ------------------------------------------------------------


class Swift:
    """The bank server's Swift API with its tempauth user (bank.yml ``swift``): sizes, listings, deletes."""

    def __init__(self, bank_swift: dict) -> None:
        auth = bank_swift["cloud"]["auth"]
        self.auth_url = auth["auth_url"]
        self.user = auth["username"]
        self.key = auth["password"]
        self.session = requests.Session()
        self.url = ""
        self.token = ""
        self.authenticate()

    def authenticate(self) -> None:
        response = self.session.get(self.auth_url, headers={"X-Auth-User": self.user, "X-Auth-Key": self.key}, timeout=30)
        response.raise_for_status()
        self.url = response.headers["X-Storage-Url"]
        self.token = response.headers["X-Auth-Token"]

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        kwargs.setdefault("timeout", 120)
        for attempt in (1, 2):
            headers = dict(kwargs.pop("headers", {}) or {}, **{"X-Auth-Token": self.token})
            response = self.session.request(method, f"{self.url}{path}", headers=headers, **kwargs)
            if response.status_code != 401 or attempt == 2:
                return response
            self.authenticate()  # the bank server was restarted (someone's `make test`): a new token
        return response

    def objects(self, container: str, prefix: str = "") -> list[dict]:
        listing: list[dict] = []
        marker = ""
        while True:
            response = self.request("GET", f"/{container}", params={"format": "json", "marker": marker, "prefix": prefix})
            if response.status_code == 404:
                return listing
            response.raise_for_status()
            page = response.json()
            if not page:
                return listing
            listing += page
            marker = page[-1]["name"]

    def bytes_in(self, container: str) -> int:
        """Bytes stored for a bucket or container, with the ``+segments`` container of S3 multipart uploads."""
        return sum(item["bytes"] for name in (container, f"{container}+segments") for item in self.objects(name))

    def containers(self, prefix: str) -> list[str]:
        response = self.request("GET", "", params={"format": "json", "prefix": prefix})
        response.raise_for_status()
        return [item["name"] for item in response.json()]

    def put(self, container: str, name: str, data: bytes) -> None:
        response = self.request("PUT", f"/{container}/{name}", data=data)
        response.raise_for_status()

    def create_container(self, container: str) -> None:
        self.request("PUT", f"/{container}").raise_for_status()

    def delete_container(self, container: str) -> int:
        """Delete every object, then the container; returns the objects removed. Missing is fine."""
        removed = 0
        for name in (container, f"{container}+segments"):
            for item in self.objects(name):
                response = self.request("DELETE", f"/{name}/{item['name']}")
                if response.status_code not in (204, 404):
                    response.raise_for_status()
                removed += 1
            response = self.request("DELETE", f"/{name}")
            if response.status_code not in (204, 404, 409):
                response.raise_for_status()
        return removed


# --- Glance: image bytes, read from the store directory ----------------------------------------


class GlanceStoreWatch(threading.Thread):
    """Largest size seen of every image file created in a site's Glance store while it runs.

    Only images of ``project_id`` count (other people share the devcloud): the owner is asked once
    per new file through ``owner_of`` (an admin GET), while the image still exists.
    """

    def __init__(self, site: str, project_id: str, owner_of, interval: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.store = DEVCLOUD_STATE / site / "glance-images"
        self.project_id = project_id
        self.owner_of = owner_of
        self.interval = interval
        self.before = set(self._files())
        self.sizes: dict[str, int] = {}
        self.owners: dict[str, str | None] = {}
        self._halt = threading.Event()

    def _files(self) -> dict[str, int]:
        found = {}
        try:
            with os.scandir(self.store) as entries:
                for entry in entries:
                    try:
                        found[entry.name] = entry.stat().st_size
                    except OSError:
                        continue
        except OSError:
            pass
        return found

    def run(self) -> None:
        while not self._halt.is_set():
            self.sample()
            self._halt.wait(self.interval)

    def sample(self) -> None:
        for name, size in self._files().items():
            if name in self.before:
                continue
            if name not in self.owners:
                self.owners[name] = self.owner_of(name)
            self.sizes[name] = max(size, self.sizes.get(name, 0))

    def stop(self) -> dict:
        self._halt.set()
        self.join(timeout=10)
        ours = {name: size for name, size in self.sizes.items() if self.owners.get(name) == self.project_id}
        return {"bytes": sum(ours.values()), "images": ours,
                "unattributed": {name: size for name, size in self.sizes.items() if self.owners.get(name) is None}}


class RbdGlanceWatch(threading.Thread):
    """The RBD store's counterpart of GlanceStoreWatch: new RBD images in Glance's pool while it runs.

    The owner and the size come from Glance (an admin GET per poll for an image not yet sized);
    Glance's image size is the bytes it took in, which is what the file store's file size counts.
    """

    def __init__(self, ceph, project_id: str, info_of, interval: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.ceph = ceph
        self.project_id = project_id
        self.info_of = info_of
        self.interval = interval
        self.errors: list[str] = []
        self.before = set(self._images())
        self.rbd_sizes: dict[str, int] = {}
        self.glance_sizes: dict[str, int] = {}
        self.owners: dict[str, str | None] = {}
        self._halt = threading.Event()

    def _images(self) -> dict[str, int]:
        try:
            return self.ceph.images()
        except Exception as exc:  # pylint: disable=broad-except
            if len(self.errors) < 3:
                self.errors.append(" ".join(str(exc).split())[:300])
            return {}

    def run(self) -> None:
        while not self._halt.is_set():
            self.sample()
            self._halt.wait(self.interval)

    def sample(self) -> None:
        for name, size in self._images().items():
            if name in self.before:
                continue
            if size or name not in self.rbd_sizes:
                self.rbd_sizes[name] = size
            if self.owners.get(name) is None or name not in self.glance_sizes:
                owner, glance_size = self.info_of(name)
                if owner is not None:
                    self.owners[name] = owner
                if glance_size:
                    self.glance_sizes[name] = glance_size

    def stop(self) -> dict:
        self._halt.set()
        self.join(timeout=10)
        self.sample()
        ours = {name: self.glance_sizes.get(name, self.rbd_sizes[name]) for name in self.rbd_sizes
                if self.owners.get(name) == self.project_id}
        result = {"bytes": sum(ours.values()), "images": ours, "store": "rbd",
                  "unattributed": {name: size for name, size in self.rbd_sizes.items() if self.owners.get(name) is None}}
        unsized = sorted(name for name in ours if name not in self.glance_sizes)
        if unsized:
            result["sized_from_rbd"] = unsized  # gone before Glance reported a size: the last RBD size seen
        if self.errors:
            result["errors"] = self.errors
        return result


def glance_watch(project):
    """The watch of a site's Glance store: its directory (file store) or its RBD pool."""
    if project.ceph is not None:
        return RbdGlanceWatch(project.ceph, project.project_id, project.image_info)
    return GlanceStoreWatch(project.site, project.project_id, project.image_owner)


class LoadWatch(threading.Thread):
    """The highest 1-minute load average seen while it runs (sampled every second)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.highest = os.getloadavg()[0]
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(1.0):
            self.highest = max(self.highest, os.getloadavg()[0])

    def stop(self) -> float:
        self._halt.set()
        self.join(timeout=5)
        return round(max(self.highest, os.getloadavg()[0]), 2)


def load_now() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]
