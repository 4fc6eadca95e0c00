# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Cinder's own backup service, Swift driver, into the bank's Swift: started for the race, stopped after it.

Started as tests/devcloud/devcloud.py starts cinder-volume (own session, the mount.nfs stub first
on PATH, the devcloud venv whose .pth loads the sqlite hook), with the site's cinder.conf and a
second ``--config-file`` holding the backup settings (glance-path.md). Each service has a host
name of its own (``bench-e2e-...``), so its rows and its RPC topic are the race's alone.

Site A runs two services at once, zlib and zstd, each in an availability zone of its own; a
backup asks for its zone (API 3.51), which is how the scheduler picks the compression without a
restart (a restarted cinder-backup is scheduled only after its first periodic report, 60 s).
Site B runs one, for backup-import and restore; at a site B on RBD that service restores onto
the RBD volume through os-brick's RBD connector with librbd in its own process (Cinder's keyring
in /etc/ceph, as the devcloud links it), no local attach (smoke-run 2026-12-03). After stopping them the race tells the scheduler
they are gone (it keeps the last report of a backup service forever and would send other
people's backups to a dead host) and removes their service rows (``cinder-manage service remove``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import openstack

from common import DEVCLOUD_STATE, DEVCLOUD_VENV, PREFIX, WORK, BenchError, log, wait_until
import measure

DRIVER = "cinder.backup.drivers.swift.SwiftBackupDriver"

# Told to the site's scheduler, with the devcloud venv's Python, once a service is stopped.
RETIRE = r"""
import sys
from oslo_config import cfg
from cinder import context, objects, rpc
from cinder.common import config  # noqa: F401  (registers the options)
objects.register_all()
cfg.CONF(["--config-file", sys.argv[1]], project="cinder")
rpc.init(cfg.CONF)
from cinder.scheduler import rpcapi
rpcapi.SchedulerAPI().update_service_capabilities(
    context.get_admin_context(), "backup", sys.argv[2],
    {"backend_state": False, "driver_name": sys.argv[3], "availability_zone": sys.argv[4]}, None)
rpc.cleanup()
"""


def cinder_conf(site: str) -> Path:
    return DEVCLOUD_STATE / site / "etc" / "cinder" / "cinder.conf"


def service_env() -> dict:
    env = dict(os.environ)
    env["PATH"] = f"{DEVCLOUD_STATE / 'bin'}:{DEVCLOUD_VENV / 'bin'}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    for key in ("OS_CLOUD", "OS_CLIENT_CONFIG_FILE", "PYTHONPATH", "VIRTUAL_ENV"):
        env.pop(key, None)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONWARNINGS"] = "ignore::DeprecationWarning"
    return env


class BackupService:
    """One cinder-backup process of the race."""

    def __init__(self, site: str, label: str, compression: str, zone: str, bank_swift: dict, run_dir: Path) -> None:
        self.site = site
        self.host = f"{PREFIX}-{label}"
        self.compression = compression
        self.zone = zone
        self.bank_swift = bank_swift
        self.config = run_dir / f"{self.host}.conf"
        self.log = WORK / "logs" / f"{self.host}.log"
        self.process: subprocess.Popen | None = None
        self.started_at = 0.0

    def write_config(self) -> None:
        auth = self.bank_swift["cloud"]["auth"]
        storage_url = auth["auth_url"].replace("/auth/v1.0", "/v1/AUTH_test")
        values = {
            "host": self.host,
            "storage_availability_zone": self.zone,
            "backup_driver": DRIVER,
            "backup_swift_auth": "single_user",
            "backup_swift_auth_version": "1",
            "backup_swift_auth_url": auth["auth_url"],
            "backup_swift_url": storage_url,
            "backup_swift_user": auth["username"],
            "backup_swift_key": auth["password"],
            "backup_swift_container": f"{PREFIX}-cinder-default",
            "backup_compression_algorithm": self.compression,
        }
        self.config.write_text("[DEFAULT]\n" + "".join(f"{key} = {value}\n" for key, value in values.items()))
        self.config.chmod(0o600)

    def start(self) -> None:
        self.write_config()
        self.log.parent.mkdir(parents=True, exist_ok=True)
        command = [str(DEVCLOUD_VENV / "bin" / "cinder-backup"), "--config-file", str(cinder_conf(self.site)),
                   "--config-file", str(self.config)]
        # The log of the latest run only (they are kept for diagnosis, not accumulated).
        with self.log.open("wb") as out:
            out.write(f"\n=== {time.strftime('%H:%M:%S')} {' '.join(command)}\n".encode())
            out.flush()
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,  # pylint: disable=consider-using-with
                                            env=service_env(), cwd=str(DEVCLOUD_STATE / self.site), start_new_session=True)
        self.started_at = time.monotonic()
        log(f"started cinder-backup {self.host} at {self.site} ({self.compression}, zone {self.zone}), pid {self.process.pid}")

    def wait_up(self, conn, timeout: float = 180) -> None:
        """Until the service row says up (the scheduler learns of it separately: see ``Race.cinder_backup``)."""
        def up() -> bool:
            if self.process.poll() is not None:
                raise BenchError(f"cinder-backup {self.host} exited with {self.process.returncode}; log: {self.log}")
            response = conn.block_storage.get("/os-services", params={"binary": "cinder-backup", "host": self.host})
            return any(row.get("state") == "up" for row in response.json().get("services", []))

        wait_until(f"cinder-backup {self.host} up", up, timeout, interval=1)

    def pids(self) -> list[int]:
        return measure.tree(self.process.pid) if self.process else []

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=30)
        log(f"stopped cinder-backup {self.host}")
        python = str(DEVCLOUD_VENV / "bin" / "python")
        for what, command in (
            ("tell the scheduler", [python, "-c", RETIRE, str(cinder_conf(self.site)), self.host, DRIVER, self.zone]),
            ("remove the service row", [str(DEVCLOUD_VENV / "bin" / "cinder-manage"), "--config-file", str(cinder_conf(self.site)),
                                        "service", "remove", "cinder-backup", self.host]),
        ):
            done = subprocess.run(command, capture_output=True, text=True, env=service_env(), timeout=120, check=False)
            if done.returncode != 0:
                log(f"cinder-backup {self.host}: could not {what}: {done.stderr.strip()[-400:]}")
        self.process = None
        self.config.unlink(missing_ok=True)


# --- the REST calls -----------------------------------------------------------------------------


def api_json(response, what: str) -> dict:
    if response.status_code >= 300:
        raise BenchError(f"{what}: HTTP {response.status_code} {response.text[:400]}")
    return response.json() if response.content else {}


def get_backup(conn, backup_id: str):
    return conn.block_storage.get_backup(backup_id)


def create_backup(conn, volume_id: str, name: str, container: str, zone: str, incremental: bool) -> str:
    body = {"backup": {"volume_id": volume_id, "name": name, "container": container, "incremental": incremental,
                       "availability_zone": zone}}
    # availability_zone needs 3.51; openstacksdk's create_backup does not send it.
    response = conn.block_storage.post("/backups", json=body, microversion="3.51")
    return api_json(response, f"create backup {name}")["backup"]["id"]


def wait_backup(conn, backup_id: str, what: str, timeout: float):
    def ready():
        backup = get_backup(conn, backup_id)
        if backup.status == "error":
            raise BenchError(f"{what} went to error: {backup.fail_reason}")
        return backup if backup.status == "available" else None

    return wait_until(f"{what} to be available", ready, timeout)


def export_record(conn, backup_id: str) -> dict:
    return api_json(conn.block_storage.get(f"/backups/{backup_id}/export_record"), "export_record")["backup-record"]


def import_record(conn, record: dict) -> str:
    # openstacksdk 4.22's import is broken (glance-path.md): the REST API, as the race did.
    response = conn.block_storage.post("/backups/import_record", json={"backup-record": record})
    return api_json(response, "import_record")["backup"]["id"]


def restore(conn, backup_id: str, name: str) -> str:
    response = conn.block_storage.post(f"/backups/{backup_id}/restore", json={"restore": {"name": name}})
    return api_json(response, "restore")["restore"]["volume_id"]


def not_found(exc: Exception) -> bool:
    return isinstance(exc, openstack.exceptions.NotFoundException)
