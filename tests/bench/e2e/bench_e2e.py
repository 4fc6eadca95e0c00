# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The end-to-end race of issue 10, item 6: ``make bench-e2e`` (tests/bench/e2e/run.sh), never ``make test``.

On the devcloud, in one run, contenders alternating: for each run, for each source volume, every
contender in turn (the order rotates from run to run) makes a backup at site A, a restore at
site B and an unchanged re-backup at site A. Options (environment variables):

- ``BENCH_E2E_RUNS`` (default 2): runs of every contender on every volume.
- ``BENCH_E2E_VOLUMES`` (default ``4g,16g``): ``Ng`` is the streaming.md image over N GiB (1/4
  random, 1/4 text, 1/2 zeros), ``16g`` and ``Ng-sparse`` hold N/16 GiB of data, the rest never written.
- ``BENCH_E2E_CONTENDERS`` (default all): ``ours-auto,ours-raw,cinder-zlib,cinder-zstd,naive``.
- ``BENCH_E2E_OPERATIONS`` (default ``backup,restore,rebackup``), run in that order whatever the
  order given. Without ``backup`` (e.g. ``restore``: race only the restore), each contender's
  backup is still made first, untimed and not reported (``prepared_backups`` in the results), as
  the restore and the re-backup need it.

Site B's backend is the one sites.yml names (``backend``: nfs or rbd); run.sh never switches it.
On RBD the restored bytes are read with ``rbd export``, Glance's bytes are the sizes Glance
reports for the new images of its RBD pool, and Cinder's contenders restore onto RBD (the site's
cinder-backup, os-brick's RBD connector with librbd in-process).
- ``BENCH_E2E_REVISION`` (default: the checkout as it is): a git revision of the collection to race
  instead, exported (``git archive``) into a temporary directory for the run.

Results: ``.cache/bench-e2e/results-<id>.json`` (every row, with our modules' whole results) and
``.cache/bench-e2e/report.md`` (medians and ratios, printed too). Everything the race makes
(project, volumes, snapshots, images, backups, buckets, containers, cinder-backup services) is
removed at the end, also after a failure, Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import cinder_backup
import cloud
import measure
import race_contenders
import report
from common import GIB, PREFIX, ROOT, WORK, BenchError, banks, log

ALL_CONTENDERS = ("ours-auto", "ours-raw", "cinder-zlib", "cinder-zstd", "naive")
OPERATIONS = ("backup", "restore", "rebackup")
# A cinder-backup's first report reaches the scheduler up to this long after its start.
SCHEDULER_GRACE = 150


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def options() -> dict:
    chosen = {
        "runs": int(os.environ.get("BENCH_E2E_RUNS", "2")),
        "volumes": env_list("BENCH_E2E_VOLUMES", "4g,16g"),
        "contenders": env_list("BENCH_E2E_CONTENDERS", ",".join(ALL_CONTENDERS)),
        "operations": env_list("BENCH_E2E_OPERATIONS", ",".join(OPERATIONS)),
        "revision": os.environ.get("BENCH_E2E_REVISION", ""),
    }
    unknown = [name for name in chosen["contenders"] if name not in ALL_CONTENDERS]
    unknown += [name for name in chosen["operations"] if name not in OPERATIONS]
    if unknown or chosen["runs"] < 1 or not chosen["operations"]:
        raise BenchError(f"bad options {chosen} (unknown: {unknown}); operations: some of {','.join(OPERATIONS)}")
    chosen["operations"] = [name for name in OPERATIONS if name in chosen["operations"]]
    for label in chosen["volumes"]:
        cloud.VolumeSpec(label)
    return chosen


def module_options(module: str, collections: Path) -> set[str]:
    """The options a module documents (ansible-doc), to tell whether transfer_format exists yet."""
    done = subprocess.run([str(ROOT / ".venv" / "bin" / "ansible-doc"), "-j", f"openstack_dr.bank.{module}"],
                          capture_output=True, text=True, timeout=120, check=False,
                          env=dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(collections)))
    try:
        return set(json.loads(done.stdout)[f"openstack_dr.bank.{module}"]["doc"]["options"])
    except (ValueError, KeyError):
        log(f"ansible-doc {module} failed: {done.stderr.strip()[-300:]}")
        return set()


def git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=False).stdout.strip()


def git_revision(revision: str) -> str:
    if revision:
        return git("rev-parse", "--short", revision) + f" (BENCH_E2E_REVISION={revision}, exported)"
    dirty = git("status", "--porcelain", "--", "plugins")
    return git("rev-parse", "--short", "HEAD") + (" + uncommitted changes in plugins/" if dirty else "")


def export_collection(revision: str, into: Path) -> Path:
    """The collection at ``revision`` as a collections path of its own (the checkout stays untouched)."""
    target = into / "collections" / "ansible_collections" / "openstack_dr" / "bank"
    target.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", revision], capture_output=True, check=False, timeout=120)
    if archive.returncode != 0:
        raise BenchError(f"git archive {revision} failed: {archive.stderr.decode(errors='replace').strip()}")
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True, timeout=120)
    return into / "collections"


class Race:
    def __init__(self, chosen: dict) -> None:
        self.options = chosen
        self.run_id = time.strftime("%m%d%H%M%S")
        WORK.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix="tmp-", dir=WORK))
        bank_config = banks()
        self.bank_s3 = bank_config["swift_s3"]
        self.bank_swift = bank_config["swift"]
        self.swift = measure.Swift(self.bank_swift)
        password = cloud.new_password()
        self.a = cloud.Project("site-a", password)
        self.b = cloud.Project("site-b", password)
        self.passphrase = cloud.new_password()
        self.backup_services: dict[str, cinder_backup.BackupService] = {}
        self.supports_transfer_format: dict[str, bool] = {}
        self.sources: dict[str, dict] = {}
        self.rows: list[dict] = []
        self.facts: dict = {"run_id": self.run_id, "options": chosen, "revision": git_revision(chosen["revision"]),
                            "backends": {p.site: p.backend for p in (self.a, self.b)}}
        self.prepared: list[dict] = []
        self.collections = ROOT / ".cache" / "collections"

    # -- setup -----------------------------------------------------------------------------------

    def setup(self) -> None:
        log(f"run {self.run_id}: {self.options}; site B on {self.b.backend}")
        if self.options["revision"]:
            self.collections = export_collection(self.options["revision"], self.tmp)
        for project in (self.a, self.b):
            project.create()
        for module in ("volume_glance_backup", "volume_glance_restore"):
            self.supports_transfer_format[module] = "transfer_format" in module_options(module, self.collections)
        self.facts["transfer_format_supported"] = dict(self.supports_transfer_format)
        log(f"transfer_format option: {self.supports_transfer_format}")
        self.start_backup_services()
        # The source volumes are made while the new cinder-backups wait for the scheduler.
        for label in self.options["volumes"]:
            self.source(label)
        self.probe_backup_services()

    def start_backup_services(self) -> None:
        compressions = [name[len("cinder-"):] for name in self.options["contenders"] if name.startswith("cinder-")]
        if not compressions:
            return
        specs = [("site-a", f"a-{c}", c, f"{PREFIX}-{c}", c) for c in compressions]
        specs.append(("site-b", "b", "zlib", "nova", "site-b"))
        for site, label, compression, zone, key in specs:
            service = cinder_backup.BackupService(site, label, compression, zone, self.bank_swift, self.tmp)
            self.backup_services[key] = service
            service.start()
        for key, service in self.backup_services.items():
            service.wait_up(self.project(service.site).admin)

    def project(self, site: str) -> cloud.Project:
        return self.a if site == "site-a" else self.b

    def probe_backup_services(self) -> None:
        """One throw-away backup through each service at site A, untimed, before any contender runs.

        A new cinder-backup is scheduled only once its periodic report reached the scheduler (about
        60 s after its start); until then a backup goes to error at once. The probe retries until
        one succeeds, so no measured backup meets that. (Site B's import and restore do not go
        through the scheduler.)
        """
        services = [s for s in self.backup_services.values() if s.site == "site-a"]
        if not services:
            return
        conn = self.a.member
        volume = conn.block_storage.create_volume(name=f"{PREFIX}-{self.run_id}-probe", size=1)
        cloud.wait_status(lambda: conn.block_storage.get_volume(volume.id), "available", "probe volume", 300)
        container = f"{PREFIX}-{self.run_id}-probe"
        for service in services:
            started = time.monotonic()
            while True:
                backup_id = cinder_backup.create_backup(conn, volume.id, f"{container}-{service.compression}", container,
                                                        service.zone, incremental=False)
                try:
                    cinder_backup.wait_backup(conn, backup_id, f"probe backup through {service.host}", 300)
                    break
                except BenchError as exc:
                    if "not found" not in str(exc).lower() or time.monotonic() - started > SCHEDULER_GRACE:
                        raise
                    time.sleep(2)  # a poll: the scheduler learns of the service at its next report
                finally:
                    cloud.delete_backup(conn, backup_id)
                    cloud.wait_status(lambda: conn.block_storage.get_volume(volume.id), "available", "probe volume", 300)
            log(f"cinder-backup {service.host} is scheduled ({time.monotonic() - service.started_at:.0f} s after its start)")
        cloud.delete_volume(conn, volume.id, "probe volume")
        self.swift.delete_container(container)

    def service_peak(self, service: cinder_backup.BackupService) -> float:
        return measure.read_peak_mib(service.pids())

    def source(self, label: str) -> dict:
        if label not in self.sources:
            spec = cloud.VolumeSpec(label)
            self.sources[label] = dict(cloud.create_source_volume(self.a, spec, self.run_id), label=label)
        return self.sources[label]

    # -- the race --------------------------------------------------------------------------------

    def race(self) -> None:
        contenders = self.options["contenders"]
        for run in range(1, self.options["runs"] + 1):
            for label in self.options["volumes"]:
                source = self.source(label)
                shift = (run - 1) % len(contenders)
                for name in contenders[shift:] + contenders[:shift]:
                    self.one(race_contenders.make(self, name, source, run))

    def one(self, contender) -> None:
        try:
            if "backup" not in self.options["operations"] and not self.prepare_backup(contender):
                return
            for operation in self.options["operations"]:
                self.check_disk(contender.source)
                row = self.measure(contender, operation)
                if not row["ok"]:
                    break
        finally:
            contender.cleanup()

    def prepare_backup(self, contender) -> bool:
        """The backup a restore-only race needs, made before it, untimed and not a row of the race."""
        self.check_disk(contender.source)
        row = {"contender": contender.name, "operation": "backup", "volume": contender.source["label"],
               "run": contender.run, "notes": [], "prepared": True}
        started = time.monotonic()
        try:
            contender.backup(row)
            row["ok"] = True
        except Exception as exc:  # pylint: disable=broad-except
            row["ok"] = False
            row["error"] = f"{type(exc).__name__}: {exc}"
        row["prepared_in_s"] = round(time.monotonic() - started, 1)
        row.pop("result", None)
        self.prepared.append(row)
        state = "made" if row["ok"] else f"FAILED: {row['error'][:300]}"
        log(f"{contender.name:12} backup of {contender.source['label']} for the restore (not raced) {state} "
            f"in {row['prepared_in_s']} s")
        if not row["ok"]:
            self.rows.append(dict(row, operation=self.options["operations"][0], error=f"its backup failed: {row['error']}"))
        self.save()
        return row["ok"]

    def measure(self, contender, operation: str) -> dict:
        row = {"contender": contender.name, "operation": operation, "volume": contender.source["label"],
               "run": contender.run, "started_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
               "notes": [], "ok": False, "load_1m_start": measure.load_now()[0]}
        watches = [measure.glance_watch(p) for p in (self.a, self.b)]
        extra = {f"cinder-backup {s.host}": s.pids() for s in self.backup_services.values()}
        peaks = measure.ServicePeaks(extra)
        load = measure.LoadWatch()
        for watch in watches + [load]:
            watch.start()
        with peaks:
            try:
                getattr(contender, operation)(row)
                row["ok"] = True
            except BenchError as exc:
                row["error"] = str(exc)
            except Exception as exc:  # pylint: disable=broad-except
                row["error"] = f"{type(exc).__name__}: {exc}"
                row["traceback"] = traceback.format_exc()[-2000:]
            finally:
                glance = [watch.stop() for watch in watches]
                row["max_load_1m"] = load.stop()
        row["glance_bytes"] = {p.site: g["bytes"] for p, g in zip((self.a, self.b), glance)}
        row["glance_images"] = {p.site: g["images"] for p, g in zip((self.a, self.b), glance)}
        for p, g in zip((self.a, self.b), glance):
            if g.get("errors"):
                row["notes"].append(f"Glance bytes at {p.site} not fully measured: {'; '.join(g['errors'])}")
            if g.get("sized_from_rbd"):
                row["notes"].append(f"Glance bytes at {p.site}: {len(g['sized_from_rbd'])} image(s) sized by their RBD image")
        row["service_peak_rss_mib"] = peaks.read()
        row["service_rss_before_mib"] = peaks.before
        row["load_1m_end"] = measure.load_now()[0]
        self.rows.append(row)
        race_contenders.log_row(row)
        self.save()
        return row

    def check_disk(self, source: dict) -> None:
        # Glance's image, Cinder's conversion file and the naive bank copy can all exist at once.
        need = 3 * source["size_gib"] * GIB + 8 * GIB
        free = shutil.disk_usage(ROOT).free
        if free < need:
            raise BenchError(f"only {free / GIB:.1f} GiB free on the disk, {need / GIB:.0f} GiB needed for a "
                             f"{source['size_gib']} GiB volume: stopping the race (the disk is shared)")
        if self.b.ceph is not None:
            # Site B's restored volume and Glance's image live on Ceph's one small OSD file; both hold
            # the data only (Glance's thin provisioning, Cinder's and rbd import's zero skipping).
            ceph_need = 2 * source["allocated_bytes"] + GIB
            ceph_free = self.b.ceph.avail_bytes()
            if ceph_free < ceph_need:
                raise BenchError(f"Ceph has {ceph_free / GIB:.1f} GiB available, {ceph_need / GIB:.1f} GiB needed to restore a "
                                 f"{source['size_gib']} GiB volume at site B on RBD (its OSD file is "
                                 f"DEVCLOUD_CEPH_OSD_GIB, 8 GiB by default): stopping the race")

    # -- results and cleanup ---------------------------------------------------------------------

    def results_path(self):
        return WORK / f"results-{self.run_id}.json"

    def save(self) -> None:
        document = {"facts": self.facts, "sources": self.sources, "rows": self.rows, "prepared_backups": self.prepared}
        self.results_path().write_text(json.dumps(document, indent=1, sort_keys=True, default=str))

    def teardown(self) -> None:
        # Backups are deleted through a running cinder-backup: sweep first, stop the services after.
        for project in (self.a, self.b):
            cloud.try_step(f"sweep {project.site}", cloud.sweep, project)
        cloud.try_step("sweep the admin project at site B", self.sweep_admin_project_b)
        for service in self.backup_services.values():
            cloud.try_step(f"stop cinder-backup {service.host}", service.stop)
        cloud.try_step("delete the race's containers", self.delete_containers)
        for project in (self.a, self.b):
            cloud.try_step(f"remove project {cloud.PROJECT} at {project.site}", self.remove_project, project)
        shutil.rmtree(self.tmp, ignore_errors=True)

    @staticmethod
    def remove_project(project: cloud.Project) -> None:
        left = project.remove()
        if left:
            log(f"{project.site}: project {cloud.PROJECT} kept: still holds {left}; the next run removes them")

    def delete_containers(self) -> None:
        for container in self.swift.containers(f"{PREFIX}-{self.run_id}"):
            cloud.try_step(f"delete container {container}", self.swift.delete_container, container)

    def sweep_admin_project_b(self) -> None:
        """Cinder's restores and imported backups live in the admin project at site B: ours by name."""
        conn = self.b.admin
        mine = f"{PREFIX}-{self.run_id}"
        for backup in conn.block_storage.backups():
            if (backup.container or "").startswith(mine) or (backup.name or "").startswith(mine):
                cloud.try_step(f"delete backup {backup.id}", cloud.delete_backup, conn, backup.id)
        for volume in conn.block_storage.volumes():
            if (volume.name or "").startswith(mine):
                cloud.try_step(f"delete volume {volume.id}", cloud.delete_volume, conn, volume.id)

    def finish(self) -> None:
        self.facts.update({
            "finished_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "cpus": os.cpu_count(), "python": platform.python_version(),
            "bank": self.bank_s3["endpoint_url"] + " (Swift 2.38; ours through its S3 API, Cinder and naive through Swift)",
        })
        self.save()
        text = report.render(self.facts, self.sources, self.rows, self.results_path())
        (WORK / "report.md").write_text(text)
        print()
        print(text)
        log(f"results: {self.results_path()}; report: {WORK / 'report.md'}")


def on_sigterm(signum, frame):  # pylint: disable=unused-argument
    raise KeyboardInterrupt(f"signal {signum}")


def rerender(results: Path) -> int:
    """``bench_e2e.py --report RESULTS.json``: write report.md again from a run's results."""
    document = json.loads(results.read_text())
    text = report.render(document["facts"], document["sources"], document["rows"], results.resolve())
    (WORK / "report.md").write_text(text)
    print(text)
    return 0


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--report":
        return rerender(Path(sys.argv[2]))
    signal.signal(signal.SIGTERM, on_sigterm)
    race = Race(options())
    started = time.monotonic()
    try:
        race.setup()
        race.race()
    except KeyboardInterrupt:
        log("interrupted: cleaning up")
        race.facts["interrupted"] = True
    except BenchError as exc:
        log(f"stopped: {exc}")
        race.facts["stopped"] = str(exc)
    finally:
        # A second Ctrl-C during the cleanup would leave resources behind: ignore it until done.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        race.facts["wall_s"] = round(time.monotonic() - started, 1)
        race.teardown()
        race.finish()
    failed = [row for row in race.rows if not row["ok"]]
    return 1 if failed or "stopped" in race.facts or race.facts.get("interrupted") else 0


if __name__ == "__main__":
    sys.exit(main())
