# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The contenders of the race. Each runs three operations on one source volume, in one bank of its own:

backup at site A; restore at site B (byte identity checked, untimed, on B's NFS share or with
``rbd export`` of the volume's RBD image when site B is on RBD); an unchanged
re-backup at site A (ours: a new backup name into the same bank; Cinder: its incremental; naive: a
full copy again). Each operation fills a row (see ``bench_e2e.Race.measure``) with its wall time,
the contender's peak RSS, its phases and its raw result; ``cleanup`` removes everything it made.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cinder_backup
import cloud
from common import HERE, PREFIX, ROOT, BenchError, log
from measure import TreePeak

VENV_BIN = ROOT / ".venv" / "bin"


def run_process(command: list[str], env: dict, timeout: float, match: str) -> dict:
    """Run a contender's process in its own session; wall time, its peak RSS (VmHWM polled), its output.

    ``match`` picks the contender's own process out of its tree by command line (the ansible module
    worker is ``AnsiballZ_...``; the ansible controller around it is not the contender). On Ctrl-C the
    process group gets SIGTERM, as a job supervisor would send (our modules then remove their
    temporaries), and is waited for before the interrupt goes on.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.monotonic()
        process = subprocess.Popen(command, stdout=out, stderr=err, env=env, start_new_session=True)  # pylint: disable=consider-using-with
        poller = TreePeak(process.pid)
        poller.start()
        try:
            status, usage = wait_process(process, timeout)
        except BaseException:
            stop_group(process)
            poller.stop()
            raise
        wall = time.monotonic() - started
        peaks = poller.stop()
        out.seek(0)
        err.seek(0)
        return {"status": status, "wall_s": round(wall, 2), "stdout": out.read().decode(errors="replace"),
                "stderr": err.read().decode(errors="replace"), "peaks": peaks, "own": poller.summary(match),
                "wait4_maxrss_mib": round(usage.ru_maxrss / 1024, 1),
                "cpu_s": round(usage.ru_utime + usage.ru_stime, 1)}


def wait_process(process: subprocess.Popen, timeout: float):
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            process.returncode = os.waitstatus_to_exitcode(status)
            return process.returncode, usage
        if time.monotonic() > deadline:
            raise BenchError(f"{' '.join(command_head(process))}: still running after {timeout:.0f} s")
        time.sleep(0.2)


def command_head(process: subprocess.Popen) -> list[str]:
    return [str(part) for part in process.args[:6]]


def stop_group(process: subprocess.Popen, grace: float = 180) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


class Contender:
    name = ""

    def __init__(self, race, source: dict, run: int) -> None:
        self.race = race
        self.source = source
        self.run = run
        # One bank (bucket or container) per contender, volume and run: every backup starts empty.
        self.bank_name = f"{PREFIX}-{race.run_id}-{self.name}-{source['label']}-r{run}"
        self.restored: list[tuple[str, str]] = []  # (site connection kind, volume id)
        self.kept_images: list[str] = []  # RBD parents of restored volumes at site B, deleted after them

    @property
    def timeout(self) -> float:
        return cloud.timeout_for(self.source)

    def bank_bytes(self) -> int:
        return self.race.swift.bytes_in(self.bank_name)

    def check_restore(self, project: cloud.Project, volume_id: str, row: dict) -> None:
        row["identity"] = cloud.restored_identity(project, volume_id, self.source)
        row["identical"] = row["identity"]["identical"]

    def delete_kept_images(self) -> None:
        """Images kept as a restored volume's RBD parent (site B on RBD), deleted once the volume is gone."""
        while self.kept_images:
            image_id = self.kept_images[-1]
            cloud.try_step(f"delete image {image_id}", cloud.delete_image, self.race.b.member, image_id)
            self.kept_images.pop()

    def cleanup(self) -> None:
        self.delete_kept_images()
        self.race.swift.delete_container(self.bank_name)


# --- this collection --------------------------------------------------------------------------


class Ours(Contender):
    """openstack_dr.bank's modules, through ``ansible`` as an operator runs them."""

    def __init__(self, race, source: dict, run: int, transfer_format: str) -> None:
        self.name = f"ours-{transfer_format}"
        self.transfer_format = transfer_format
        super().__init__(race, source, run)
        self.bank = dict(race.bank_s3, bucket=self.bank_name, create=True)
        self.backup_name = f"{source['label']}-r{run}"

    def module_args(self, module: str, args: dict) -> tuple[dict, list[str]]:
        notes = []
        if self.race.supports_transfer_format.get(module):
            args["transfer_format"] = self.transfer_format
        else:
            notes.append(f"{module} has no transfer_format option yet: ran without it")
        return dict(args, bank=self.bank, encryption_passphrase=self.race.passphrase), notes

    def ansible(self, module: str, args: dict, row: dict) -> dict:
        args, notes = self.module_args(module, args)
        row["notes"] += notes
        with tempfile.TemporaryDirectory(dir=self.race.tmp) as tree:
            command = [str(VENV_BIN / "ansible"), "localhost", "-i", "localhost,", "-c", "local",
                       "-m", f"openstack_dr.bank.{module}", "-a", json.dumps(args),
                       "-e", f"ansible_python_interpreter={VENV_BIN / 'python'}"]
            # The tree callback writes the module's own result as JSON (as tests/e2e/module_runner.py).
            env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(self.race.collections), ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
                       ANSIBLE_CALLBACKS_ENABLED="ansible.builtin.tree", ANSIBLE_CALLBACK_TREE_DIR=tree,
                       ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0")
            done = run_process(command, env, self.timeout, match="AnsiballZ")
            try:
                result = json.loads((Path(tree) / "localhost").read_text())
            except (OSError, ValueError):
                result = {}
        fill_process_row(row, done, result)
        row["ansible_controller_peak_rss_mib"] = max(
            (p["peak_mib"] for p in done["peaks"]["processes"] if "AnsiballZ" not in p["command"]), default=0)
        stats = result.get("stats") or {}
        row["phases"] = stats.get("seconds_per_phase", {})
        used = result.get("transfer_format")
        row["transfer_format_used"] = used
        if isinstance(used, dict) and used.get("format"):
            row["notes"].append(f"transfer format used: {used['format']}")
        if done["status"] != 0 or result.get("failed"):
            raise BenchError(f"{module} failed: {result.get('msg') or done['stderr'][-600:] or done['stdout'][-600:]}")
        return result

    def backup(self, row: dict) -> None:
        self.ansible("volume_glance_backup", {"cloud": self.race.a.cloud, "volume": self.source["id"],
                                              "backup_name": self.backup_name}, row)
        row["bank_bytes"] = self.bank_bytes()

    def restore(self, row: dict) -> None:
        result = self.ansible("volume_glance_restore", {"cloud": self.race.b.cloud, "backup": self.backup_name,
                                                        "restore_name": f"{self.bank_name}-restored"}, row)
        volume_id = result["volume"]["id"]
        self.restored.append(("b-member", volume_id))
        parent = result.get("parent_image")
        if parent:
            # A raw restore at a site on RBD: the volume is a clone of the restore image (docs/devcloud.md).
            self.kept_images.append(parent["id"] if isinstance(parent, dict) else str(parent))
            row["notes"].append("the restore image is kept as the restored volume's RBD parent (deleted after it, untimed)")
        self.check_restore(self.race.b, volume_id, row)
        cloud.delete_volume(self.race.b.member, volume_id, "restored volume")
        self.restored.pop()
        self.delete_kept_images()

    def rebackup(self, row: dict) -> None:
        before = self.bank_bytes()
        self.ansible("volume_glance_backup", {"cloud": self.race.a.cloud, "volume": self.source["id"],
                                              "backup_name": f"{self.backup_name}-again"}, row)
        row["bank_bytes"] = self.bank_bytes()
        row["bank_bytes_added"] = row["bank_bytes"] - before


def fill_process_row(row: dict, done: dict, result: dict) -> None:
    row["wall_s"] = done["wall_s"]
    row["peak_rss_mib"] = done["own"]["peak_rss_mib"]
    row["rss_processes"] = done["peaks"]["processes"][:6]
    row["wait4_maxrss_mib"] = done["wait4_maxrss_mib"]
    row["cpu_s"] = done["cpu_s"]
    row["result"] = result


# --- Cinder's own backup service ------------------------------------------------------------------


class Cinder(Contender):
    """Cinder's backup service, Swift driver, into the bank's Swift; restore at B via export and import."""

    def __init__(self, race, source: dict, run: int, compression: str) -> None:
        self.name = f"cinder-{compression}"
        super().__init__(race, source, run)
        self.service = race.backup_services[compression]
        self.full_id = ""
        self.incremental_id = ""
        self.imported_id = ""

    def make_backup(self, row: dict, incremental: bool) -> None:
        conn = self.race.a.member
        name = f"{self.bank_name}-{'incr' if incremental else 'full'}"
        started = time.monotonic()
        backup_id = cinder_backup.create_backup(conn, self.source["id"], name, self.bank_name, self.service.zone, incremental)
        if incremental:
            self.incremental_id = backup_id
        else:
            self.full_id = backup_id
        backup = cinder_backup.wait_backup(conn, backup_id, f"Cinder backup {name}", self.timeout)
        row["wall_s"] = round(time.monotonic() - started, 2)
        cloud.wait_status(lambda: conn.block_storage.get_volume(self.source["id"]), "available", "source volume", 300)
        row["peak_rss_mib"] = self.race.service_peak(self.service)
        row["result"] = {"id": backup.id, "size_gib": backup.size, "object_count": backup.object_count,
                         "is_incremental": backup.is_incremental, "container": backup.container}

    def backup(self, row: dict) -> None:
        self.make_backup(row, incremental=False)
        row["bank_bytes"] = self.bank_bytes()

    def restore(self, row: dict) -> None:
        admin_a, admin_b = self.race.a.admin, self.race.b.admin
        phases = {}
        started = mark = time.monotonic()
        record = cinder_backup.export_record(admin_a, self.full_id)
        phases["export_record"] = round(time.monotonic() - mark, 3)
        mark = time.monotonic()
        self.imported_id = cinder_backup.import_record(admin_b, record)
        cinder_backup.wait_backup(admin_b, self.imported_id, "imported backup at site B", 600)
        phases["import_record"] = round(time.monotonic() - mark, 3)
        mark = time.monotonic()
        volume_id = cinder_backup.restore(admin_b, self.imported_id, f"{self.bank_name}-restored")
        self.restored.append(("b-admin", volume_id))
        cloud.wait_status(lambda: admin_b.block_storage.get_volume(volume_id), "available", "Cinder's restored volume", self.timeout)
        phases["restore"] = round(time.monotonic() - mark, 3)
        row["wall_s"] = round(time.monotonic() - started, 2)
        row["phases"] = phases
        row["peak_rss_mib"] = self.race.service_peak(self.race.backup_services["site-b"])
        row["result"] = {"record": {"backup_service": record.get("backup_service")}, "imported_backup": self.imported_id,
                         "volume_id": volume_id}
        cinder_backup.wait_backup(admin_b, self.imported_id, "imported backup after the restore", 300)
        self.check_restore(self.race.b, volume_id, row)
        cloud.delete_volume(admin_b, volume_id, "restored volume")
        self.restored.pop()

    def rebackup(self, row: dict) -> None:
        before = self.bank_bytes()
        self.make_backup(row, incremental=True)
        row["bank_bytes"] = self.bank_bytes()
        row["bank_bytes_added"] = row["bank_bytes"] - before
        row["notes"].append("Cinder's incremental backup (parent: the full backup)")

    def cleanup(self) -> None:
        member_a, admin_b = self.race.a.member, self.race.b.admin
        for conn, backup_id in ((member_a, self.incremental_id), (member_a, self.full_id), (admin_b, self.imported_id)):
            if backup_id:
                cloud.try_step(f"delete Cinder backup {backup_id}", cloud.delete_backup, conn, backup_id)
        for kind, volume_id in self.restored:
            conn = admin_b if kind == "b-admin" else self.race.b.member
            cloud.try_step(f"delete volume {volume_id}", cloud.delete_volume, conn, volume_id)
        super().cleanup()


# --- the naive Karbor path ------------------------------------------------------------------------


class Naive(Contender):
    name = "naive"

    def __init__(self, race, source: dict, run: int) -> None:
        super().__init__(race, source, run)
        self.objects = 0
        self.bytes = 0

    def child(self, command: str, args: dict, row: dict) -> dict:
        args = dict(args, bank_swift=self.race.bank_swift, timeout=self.timeout, size_gib=self.source["size_gib"],
                    container=self.bank_name)
        env = dict(os.environ, PYTHONPATH=str(HERE))
        done = run_process([sys.executable, str(HERE / "naive.py"), command, json.dumps(args)], env, self.timeout, match="naive.py")
        lines = [line for line in done["stdout"].splitlines() if line.startswith("{")]
        result = json.loads(lines[-1]) if lines else {}
        fill_process_row(row, done, result)
        row["phases"] = result.get("phases", {})
        if done["status"] != 0 or result.get("failed"):
            raise BenchError(f"naive {command} failed: {result.get('error') or done['stderr'][-600:]}")
        return result

    def backup(self, row: dict) -> None:
        result = self.child("backup", {"cloud": self.race.a.cloud, "volume_id": self.source["id"],
                                       "name": f"{self.bank_name}-b", "prefix": "backup-1"}, row)
        self.objects, self.bytes = result["objects"], result["bytes"]
        row["bank_bytes"] = self.bank_bytes()

    def restore(self, row: dict) -> None:
        result = self.child("restore", {"cloud": self.race.b.cloud, "name": f"{self.bank_name}-restored", "prefix": "backup-1",
                                        "objects": self.objects, "bytes": self.bytes}, row)
        self.restored.append(("b-member", result["volume_id"]))
        if result.get("image_kept"):
            self.kept_images.append(result["image_kept"])
            row["notes"].append("the raw image is the restored volume's RBD parent: deleted after the volume, untimed")
        self.check_restore(self.race.b, result["volume_id"], row)
        cloud.delete_volume(self.race.b.member, result["volume_id"], "restored volume")
        self.restored.pop()
        self.delete_kept_images()

    def rebackup(self, row: dict) -> None:
        # Karbor has no incremental: a full copy again. The first copy goes first (disk is shared and
        # a 16 GiB volume is 16 GiB in the bank each time); what the re-backup adds is what it wrote.
        self.race.swift.delete_container(self.bank_name)
        self.child("backup", {"cloud": self.race.a.cloud, "volume_id": self.source["id"],
                              "name": f"{self.bank_name}-b2", "prefix": "backup-2"}, row)
        row["bank_bytes"] = row["bank_bytes_added"] = self.bank_bytes()
        row["notes"].append("a full copy again (no incremental); the first copy was deleted before it to save disk")

    def cleanup(self) -> None:
        for dummy, volume_id in self.restored:
            cloud.try_step(f"delete volume {volume_id}", cloud.delete_volume, self.race.b.member, volume_id)
        super().cleanup()


def make(race, name: str, source: dict, run: int) -> Contender:
    if name.startswith("ours-"):
        return Ours(race, source, run, name[len("ours-"):])
    if name.startswith("cinder-"):
        return Cinder(race, source, run, name[len("cinder-"):])
    if name == "naive":
        return Naive(race, source, run)
    raise BenchError(f"unknown contender {name!r}")


def log_row(row: dict) -> None:
    status = "ok" if row["ok"] else f"FAILED: {row.get('error', '')[:300]}"
    extra = ""
    if "identical" in row:
        extra = " identical" if row["identical"] else f" NOT identical ({row['identity']})"
    log(f"{row['contender']:12} {row['operation']:8} {row['volume']:9} run {row['run']}: {row.get('wall_s', 0):7.1f} s  "
        f"RSS {row.get('peak_rss_mib', 0):6.1f} MiB  bank {row.get('bank_bytes', 0) / 2**20:8.1f} MiB  "
        f"glance {sum(row.get('glance_bytes', {}).values()) / 2**20:7.1f} MiB  {status}{extra}")
