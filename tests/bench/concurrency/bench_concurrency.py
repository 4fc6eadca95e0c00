# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Many volumes at once (issue 11, item 4): ``make bench-concurrency`` (run.sh), never ``make test``.

At site A of the devcloud, in one run: N source volumes of 1 GiB with distinct data, then for each
concurrency level, the ``openstack_dr.bank.volume_backup`` role backs all of them up into a fresh
file bank and the ``openstack_dr.bank.volume_restore`` role restores all of them at site A again,
both at that concurrency. Per role run: wall time of the whole ``ansible-playbook``, peak RSS of
the control node's processes (sampled from /proc), bank requests, load average before and after.
Options (environment variables):

- ``BENCH_CONCURRENCY_LEVELS`` (default ``1,2,4``), ``BENCH_CONCURRENCY_VOLUMES`` (default 8),
- ``BENCH_CONCURRENCY_POLL`` (default 2): the roles' poll interval in seconds.

Everything runs in a project of its own (``bench-concurrency``, with its own quotas, so project
``dr``'s quotas, which the e2e tests share, are neither used nor changed); it, its volumes, images
and snapshots, the banks and the scratch directory are removed at the end, also after a failure.
Results: ``.cache/bench/concurrency/results-<id>.json``; the table is printed.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import openstack
import yaml

# The end-to-end race's deadline-bounded wait and its error, shared rather than written again.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from common import BenchError, wait_until  # noqa: E402  pylint: disable=wrong-import-position

ROOT = Path(__file__).resolve().parents[3]
HERE = Path(__file__).resolve().parent
WORK = ROOT / ".cache" / "bench" / "concurrency"
VENV_BIN = ROOT / ".venv" / "bin"
SITE = "site-a"
PROJECT = "bench-concurrency"
MEMBER = f"{PROJECT}-member"
# 8 sources + 8 restores + one snapshot and one temporary volume per running backup, with room to spare.
QUOTAS = {"volumes": 40, "snapshots": 20, "gigabytes": 60}
MIB = 1024 * 1024
GIB = 1024 * MIB
TAG = {"openstack_dr_bank_bench": PROJECT}


def log(message: str) -> None:
    print(f"bench-concurrency {time.strftime('%H:%M:%S')}: {message}", flush=True)


def load_now() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def phase_means(results: list[dict]) -> dict:
    """Mean seconds per phase over one role run's modules: which step stretches as jobs share the cores."""
    totals: dict[str, float] = {}
    for result in results:
        for phase, seconds in ((result.get("stats") or {}).get("seconds_per_phase") or {}).items():
            totals[phase] = totals.get(phase, 0.0) + seconds
    return {phase: round(seconds / max(len(results), 1), 1) for phase, seconds in totals.items()}


# --- the source data ----------------------------------------------------------------------------


def source_regions(index: int) -> list[tuple[int, bytes]]:
    """About 300 MiB of data in 1 GiB, different for every volume (seeded random, numbered text).

    The text carries the volume's number in every line, so no chunk of one volume equals a chunk of
    another: each backup into a fresh bank is a first backup of all its data.
    """
    rng = random.Random(1000 + index)
    line = f"volume {index} of the concurrency benchmark: lorem ipsum dolor sit amet, consectetur. ".encode()
    text = bytearray()
    number = 0
    while len(text) < 96 * MIB:
        text += line + f"{number:012d}\n".encode()
        number += 1
    return [
        (0, rng.randbytes(192 * MIB)),            # random: incompressible
        (256 * MIB, bytes(text[:96 * MIB])),      # text: compresses
        (700 * MIB, rng.randbytes(8 * MIB)),      # an island in the zeros
        (GIB - MIB, rng.randbytes(MIB)),          # data up to the very end
    ]


def regions_sha256(regions: list[tuple[int, bytes]], size: int) -> str:
    digest = hashlib.sha256()
    position = 0
    for offset, data in regions:
        digest.update(bytes(offset - position))
        digest.update(data)
        position = offset + len(data)
    while position < size:
        step = min(64 * MIB, size - position)
        digest.update(bytes(step))
        position += step
    return digest.hexdigest()


def file_sha256(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while data := handle.read(8 * MIB):
            digest.update(data)
            size += len(data)
    return digest.hexdigest(), size


# --- the control node's memory ------------------------------------------------------------------


def proc_stat(pid: int) -> tuple[int, int] | None:
    """(ppid, rss KiB) of a process, None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return int(fields[1]), int(fields[21]) * (os.sysconf("SC_PAGE_SIZE") // 1024)


def proc_cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


class TreeSampler(threading.Thread):
    """Sums the RSS of ansible-playbook and every process of this run, every ``interval`` s.

    An async job leaves the process tree (async_wrapper daemonizes: its parent becomes init), so a
    process belongs to the run when it descends from ansible-playbook OR from a process whose
    command line names the run's own remote_tmp directory (every AnsiballZ wrapper and async_wrapper
    runs from there). Module processes are those of the second kind.
    """

    def __init__(self, root_pid: int, marker: str, interval: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.root_pid = root_pid
        self.marker = marker
        self.interval = interval
        self.commands: dict[int, str] = {}
        self.peak_sum_kib = 0
        self.peak_modules_sum_kib = 0
        self.peak_single_kib = 0
        self.peak_single_command = ""
        self.peak_modules_running = 0
        self.samples = 0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            self.sample()
            self._halt.wait(self.interval)

    def sample(self) -> None:
        table: dict[int, tuple[int, int]] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                found = proc_stat(int(entry))
                if found:
                    table[int(entry)] = found
        marked = set()
        for pid in table:
            if pid not in self.commands:
                self.commands[pid] = proc_cmdline(pid)
            if self.marker in self.commands[pid]:
                marked.add(pid)
        children: dict[int, list[int]] = {}
        for pid, (ppid, dummy) in table.items():
            children.setdefault(ppid, []).append(pid)

        def descendants(roots) -> set[int]:
            seen, stack = set(), list(roots)
            while stack:
                pid = stack.pop()
                if pid in seen or pid not in table:
                    continue
                seen.add(pid)
                stack += children.get(pid, [])
            return seen

        modules = descendants(marked)
        everything = descendants([self.root_pid]) | modules
        total = sum(table[pid][1] for pid in everything)
        self.peak_sum_kib = max(self.peak_sum_kib, total)
        self.peak_modules_sum_kib = max(self.peak_modules_sum_kib, sum(table[pid][1] for pid in modules))
        running = sum(1 for pid in modules if "AnsiballZ_volume_glance" in self.commands.get(pid, "")
                      and "async_wrapper" not in self.commands.get(pid, ""))
        self.peak_modules_running = max(self.peak_modules_running, running)
        for pid in everything:
            if table[pid][1] > self.peak_single_kib:
                self.peak_single_kib = table[pid][1]
                # Only the program and the file it runs: a module's arguments could hold secrets.
                self.peak_single_command = " ".join(Path(word).name for word in self.commands.get(pid, "").split()[:2])
        self.samples += 1
        # Forget the command lines of processes gone (pids are reused).
        for pid in [pid for pid in self.commands if pid not in table]:
            del self.commands[pid]

    def stop(self) -> dict:
        self._halt.set()
        self.join(timeout=10)
        return {"peak_sum_rss_mib": round(self.peak_sum_kib / 1024, 1),
                "peak_modules_sum_rss_mib": round(self.peak_modules_sum_kib / 1024, 1),
                "peak_single_rss_mib": round(self.peak_single_kib / 1024, 1),
                "peak_single_process": self.peak_single_command,
                "peak_module_processes": self.peak_modules_running, "samples": self.samples}


# --- the project at site A ----------------------------------------------------------------------


class Site:
    """The benchmark's own project and member user at site A, and a clouds.yaml naming it."""

    def __init__(self, work: Path) -> None:
        with (ROOT / ".devcloud" / "sites.yml").open() as handle:
            self.sites = yaml.safe_load(handle)
        info = self.sites["sites"][SITE]
        config = openstack.config.OpenStackConfig(config_files=[self.sites["clouds_yaml"]], load_envvars=False)
        self.admin = openstack.connection.Connection(config=config.get_one(cloud=info["admin_cloud"]))
        self.share = Path(info["share_mount"])
        self.password = secrets.token_urlsafe(18)
        self.cloud = {
            "auth": {"auth_url": info["endpoints"]["identity"], "username": MEMBER, "password": self.password,
                     "project_name": PROJECT, "user_domain_name": "Default", "project_domain_name": "Default"},
            "region_name": info["region"], "interface": "public", "identity_api_version": 3,
        }
        self.clouds_yaml = work / "clouds.yaml"
        self.project_id = ""
        self.member = None

    def create(self) -> None:
        ident = self.admin.identity
        domain = ident.find_domain("default")
        project = ident.find_project(PROJECT, domain_id=domain.id) or ident.create_project(
            name=PROJECT, domain_id=domain.id, description="make bench-concurrency (removed when it ends)")
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
            raise BenchError(f"setting the quotas of {PROJECT} failed: {response.status_code} {response.text}")
        fd = os.open(self.clouds_yaml, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            yaml.safe_dump({"clouds": {PROJECT: self.cloud}}, handle)
        self.member = openstack.connect(**self.cloud, load_yaml_config=False, load_envvars=False)

    def volume_file(self, volume_id: str) -> Path:
        return self.share / f"volume-{volume_id}"

    def wait_status(self, volume_id: str, status: str, timeout: float):
        def ready():
            volume = self.member.block_storage.get_volume(volume_id)
            if (volume.status or "").startswith("error"):
                raise BenchError(f"volume {volume_id} went to {volume.status}")
            return volume if volume.status == status else None

        return wait_until(f"volume {volume_id} to be {status}", ready, timeout)

    def delete_volume(self, volume_id: str) -> None:
        conn = self.admin
        try:
            volume = conn.block_storage.get_volume(volume_id)
        except openstack.exceptions.NotFoundException:
            return
        busy = ("creating", "downloading", "uploading", "attaching", "detaching", "extending")
        if volume.status in busy:
            try:
                wait_until(f"volume {volume_id} to settle",
                           lambda: conn.block_storage.get_volume(volume_id).status not in busy, 300)
            except BenchError as exc:
                log(f"{exc}: forcing its deletion")
        try:
            conn.block_storage.delete_volume(volume_id, force=volume.status in busy)
        except openstack.exceptions.NotFoundException:
            return
        except openstack.exceptions.HttpException:
            conn.block_storage.delete_volume(volume_id, force=True)
        self.wait_gone(lambda: conn.block_storage.get_volume(volume_id), f"volume {volume_id}")

    @staticmethod
    def wait_gone(get, what: str, timeout: float = 300) -> None:
        def gone() -> bool:
            try:
                resource = get()
            except openstack.exceptions.NotFoundException:
                return True
            if (resource.status or "").lower() == "error_deleting":
                raise BenchError(f"{what} went to error_deleting")
            return False

        wait_until(f"deletion of {what}", gone, timeout)

    def leftovers(self) -> list:
        query = {"all_projects": True, "project_id": self.project_id}
        found = [("volume", v.id) for v in self.admin.block_storage.volumes(**query)]
        found += [("snapshot", s.id) for s in self.admin.block_storage.snapshots(**query)]
        found += [("image", i.id) for i in self.admin.image.images(owner=self.project_id)]
        return found

    def sweep(self) -> list:
        """Remove everything the project holds (snapshots before their volumes); returns what is left."""
        if not self.project_id:
            return []
        conn = self.admin
        for kind, ident in self.leftovers():
            try:
                if kind == "snapshot":
                    conn.block_storage.delete_snapshot(ident, ignore_missing=True)
                    self.wait_gone(lambda ident=ident: conn.block_storage.get_snapshot(ident), f"snapshot {ident}")
                elif kind == "image":
                    conn.image.delete_image(ident, ignore_missing=True)
            except Exception as exc:  # pylint: disable=broad-except
                log(f"cleanup: {kind} {ident}: {exc}")
        for kind, ident in self.leftovers():
            if kind == "volume":
                try:
                    self.delete_volume(ident)
                except Exception as exc:  # pylint: disable=broad-except
                    log(f"cleanup: volume {ident}: {exc}")
        left = self.leftovers()
        if not left:
            user = self.admin.identity.find_user(MEMBER, domain_id="default")
            if user:
                self.admin.identity.delete_user(user)
            self.admin.identity.delete_project(self.project_id, ignore_missing=True)
        return left


# --- the benchmark ------------------------------------------------------------------------------


class Bench:
    def __init__(self) -> None:
        self.levels = [int(item) for item in os.environ.get("BENCH_CONCURRENCY_LEVELS", "1,2,4").split(",") if item.strip()]
        self.count = int(os.environ.get("BENCH_CONCURRENCY_VOLUMES", "8"))
        self.poll = int(os.environ.get("BENCH_CONCURRENCY_POLL", "2"))
        if not self.levels or min(self.levels) < 1 or self.count < 1 or self.poll < 1:
            raise BenchError("levels, volumes and poll must be 1 or more")
        self.run_id = time.strftime("%m%d%H%M%S")
        self.work = WORK / f"run-{self.run_id}"
        self.work.mkdir(parents=True, exist_ok=False)
        self.site = Site(self.work)
        self.sources: list[dict] = []
        self.rows: list[dict] = []
        self.facts: dict = {"run_id": self.run_id, "levels": self.levels, "volumes": self.count, "poll_s": self.poll,
                            "cpus": os.cpu_count(), "load_at_start": load_now(),
                            "started_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}

    def name(self, what: str) -> str:
        return f"{PROJECT}-{self.run_id}-{what}"

    # -- setup -----------------------------------------------------------------------------------

    def setup(self) -> None:
        free = shutil.disk_usage(self.site.share).free
        need = 2 * self.count * GIB + 4 * GIB
        if free < need:
            raise BenchError(f"{self.site.share}: {free / GIB:.1f} GiB free, {need / GIB:.0f} GiB needed")
        self.site.create()
        for index in range(self.count):
            self.sources.append(self.source(index))

    def source(self, index: int) -> dict:
        """An empty volume, filled by writing its file on the NFS share (as root, quicker than any upload)."""
        conn = self.site.member
        name = self.name(f"src{index}")
        volume = conn.block_storage.create_volume(name=name, size=1, metadata=dict(TAG))
        self.site.wait_status(volume.id, "available", 300)
        path = self.site.volume_file(volume.id)
        if not path.exists():
            raise BenchError(f"{path} does not exist: is the NFS share of {SITE} where sites.yml says?")
        regions = source_regions(index)
        with open(path, "r+b") as out:
            for offset, data in regions:
                out.seek(offset)
                out.write(data)
            out.flush()
            os.fsync(out.fileno())
        sha = regions_sha256(regions, GIB)
        log(f"source {name} ({volume.id}): {sum(len(data) for dummy, data in regions) // MIB} MiB of data in 1 GiB")
        return {"id": volume.id, "name": name, "sha256": sha, "bytes": GIB}

    # -- one role run ----------------------------------------------------------------------------

    def playbook(self, role: str, variables: dict, label: str) -> dict:
        """ansible-playbook of one role at localhost, measured; returns the row and the role's results."""
        run_dir = self.work / label
        run_dir.mkdir()
        results_file = run_dir / "results.json"
        varsfile = run_dir / "vars.json"
        varsfile.write_text(json.dumps(dict(variables, bench_role=role, bench_results_file=str(results_file),
                                            ansible_python_interpreter=str(VENV_BIN / "python"))))
        remote_tmp = run_dir / "remote-tmp"
        env = dict(os.environ, OS_CLIENT_CONFIG_FILE=str(self.site.clouds_yaml),
                   ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".cache" / "collections"), ANSIBLE_REMOTE_TMP=str(remote_tmp),
                   ANSIBLE_ASYNC_DIR=str(run_dir / "async"), ANSIBLE_LOCAL_TEMP=str(run_dir / "local-tmp"),
                   ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0",
                   ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"))
        command = [str(VENV_BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(HERE / "role.yml"),
                   "-e", f"@{varsfile}"]
        row = {"label": label, "load_1m_start": load_now()[0]}
        with open(run_dir / "ansible.log", "wb") as output:
            started = time.monotonic()
            process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
            sampler = TreeSampler(process.pid, str(remote_tmp))
            sampler.start()
            try:
                code = process.wait(timeout=3600)
            except subprocess.TimeoutExpired as exc:
                process.kill()
                raise BenchError(f"{label}: ansible-playbook still running after an hour") from exc
            finally:
                row["wall_s"] = round(time.monotonic() - started, 1)
                row.update(sampler.stop())
        row["load_1m_end"] = load_now()[0]
        if code != 0:
            tail = (run_dir / "ansible.log").read_text(errors="replace")[-3000:]
            raise BenchError(f"{label}: ansible-playbook exited {code}:\n{tail}")
        return row, json.loads(results_file.read_text())

    def level(self, concurrency: int) -> None:
        bank_dir = self.work / f"bank-c{concurrency}"
        bank = {"type": "file", "path": str(bank_dir), "create": True}
        suffix = f"c{concurrency}"
        common = {"cloud": PROJECT, "bank": bank, "concurrency": concurrency, "poll": self.poll}
        row, results = self.playbook("volume_backup", dict(common, volumes=[s["id"] for s in self.sources], suffix=suffix),
                                     f"backup-c{concurrency}")
        failed = [r for r in results if r.get("failed")]
        if failed:
            raise BenchError(f"backups failed: {[r.get('msg') for r in failed]}")
        requests: dict[str, int] = {}
        for result in results:
            for kind, number in (result.get("stats") or {}).get("requests", {}).items():
                requests[kind] = requests.get(kind, 0) + number
        objects = [p for p in bank_dir.rglob("*") if p.is_file()]
        row.update({"operation": "backup", "concurrency": concurrency, "requests": requests,
                    "requests_total": sum(requests.values()), "bank_objects": len(objects),
                    "bank_bytes": sum(p.stat().st_size for p in objects),
                    "module_seconds": [round((r.get("stats") or {}).get("seconds", 0), 1) for r in results],
                    "phase_means_s": phase_means(results)})
        self.rows.append(row)
        log(f"backup  c={concurrency}: {row['wall_s']} s, peak RSS sum {row['peak_sum_rss_mib']} MiB "
            f"(modules {row['peak_modules_sum_rss_mib']}, single {row['peak_single_rss_mib']}), "
            f"{row['requests_total']} requests, load {row['load_1m_start']} -> {row['load_1m_end']}")
        self.save()

        backups = [{"backup": r["backup"]["name"], "restore_name": self.name(f"{suffix}-restored{index}"),
                    "source": self.sources[index]} for index, r in enumerate(results)]
        entries = [{"backup": b["backup"], "restore_name": b["restore_name"]} for b in backups]
        try:
            row, results = self.playbook("volume_restore", dict(common, backups=entries, metadata=dict(TAG)),
                                         f"restore-c{concurrency}")
            failed = [r for r in results if r.get("failed")]
            if failed:
                raise BenchError(f"restores failed: {[r.get('msg') for r in failed]}")
            row.update({"operation": "restore", "concurrency": concurrency,
                        # The restore module reports no request counts: each chunk object is read once,
                        # plus the manifest, bank.json and the listing of bank_backup_info.
                        "requests_total": None, "chunk_objects_read_estimate": len(objects),
                        "module_seconds": [round((r.get("stats") or {}).get("seconds", 0), 1) for r in results],
                        "phase_means_s": phase_means(results)})
            by_name = {r["restore_name"]: r for r in results}
            identical = 0
            for entry in backups:
                volume = by_name[entry["restore_name"]]["volume"]
                digest, size = file_sha256(self.site.volume_file(volume["id"]))
                identical += digest == entry["source"]["sha256"] and size == GIB
            row["identical"] = f"{identical}/{len(backups)}"
            self.rows.append(row)
            log(f"restore c={concurrency}: {row['wall_s']} s, peak RSS sum {row['peak_sum_rss_mib']} MiB "
                f"(modules {row['peak_modules_sum_rss_mib']}, single {row['peak_single_rss_mib']}), "
                f"identical {row['identical']}, load {row['load_1m_start']} -> {row['load_1m_end']}")
            self.save()
            if identical != len(backups):
                raise BenchError(f"restores at c={concurrency}: only {identical}/{len(backups)} identical to their source")
        finally:
            self.remove_restored(suffix)
            shutil.rmtree(bank_dir, ignore_errors=True)

    def remove_restored(self, suffix: str) -> None:
        prefix = self.name(f"{suffix}-restored")
        for volume in self.site.member.block_storage.volumes():
            if (volume.name or "").startswith(prefix):
                self.site.delete_volume(volume.id)

    # -- results ---------------------------------------------------------------------------------

    def save(self) -> None:
        path = WORK / f"results-{self.run_id}.json"
        path.write_text(json.dumps({"facts": self.facts, "rows": self.rows}, indent=1, sort_keys=True))

    def report(self) -> str:
        lines = ["| operation | concurrency | wall s | x sequential | peak RSS, all (MiB) | modules (MiB) | single (MiB) "
                 "| bank requests | load 1m start -> end |", "|---|---|---|---|---|---|---|---|---|"]
        sequential = {row["operation"]: row["wall_s"] for row in self.rows if row["concurrency"] == 1}
        for row in self.rows:
            ratio = f"{row['wall_s'] / sequential[row['operation']]:.2f}" if row["operation"] in sequential else "-"
            requests = row.get("requests_total")
            requests = f"{requests} ({', '.join(f'{k} {v}' for k, v in sorted(row['requests'].items()))})" if requests else \
                f"~{row.get('chunk_objects_read_estimate')} reads (est.)"
            lines.append(f"| {row['operation']} | {row['concurrency']} | {row['wall_s']} | {ratio} | {row['peak_sum_rss_mib']} "
                         f"| {row['peak_modules_sum_rss_mib']} | {row['peak_single_rss_mib']} ({row['peak_single_process']}) "
                         f"| {requests} | {row['load_1m_start']} -> {row['load_1m_end']} |")
        return "\n".join(lines)

    def teardown(self) -> None:
        try:
            left = self.site.sweep()
            if left:
                log(f"cleanup: project {PROJECT} kept, still holds {left}")
        except Exception as exc:  # pylint: disable=broad-except
            log(f"cleanup failed: {exc}")
        shutil.rmtree(self.work, ignore_errors=True)


def on_sigterm(signum, frame):  # pylint: disable=unused-argument
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> int:
    signal.signal(signal.SIGTERM, on_sigterm)
    bench = Bench()
    ok = False
    try:
        log(f"run {bench.run_id}: {bench.count} volumes of 1 GiB at {SITE}, concurrency {bench.levels}, load {load_now()}")
        bench.setup()
        for concurrency in bench.levels:
            bench.level(concurrency)
        ok = True
    except KeyboardInterrupt:
        log("interrupted: cleaning up")
    except BenchError as exc:
        log(f"stopped: {exc}")
        bench.facts["stopped"] = str(exc)[:2000]
    except Exception as exc:  # pylint: disable=broad-except
        # A service that went away (the devcloud is shared): say so in one line, clean up all the same.
        log(f"stopped: {type(exc).__name__}: {exc}")
        bench.facts["stopped"] = f"{type(exc).__name__}: {exc}"[:2000]
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        bench.facts["load_at_end"] = load_now()
        bench.facts["finished_at"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        bench.save()
        bench.teardown()
    print(bench.report())
    log(f"load average at start {bench.facts['load_at_start']}, at end {bench.facts['load_at_end']}; "
        f"results: {WORK / f'results-{bench.run_id}.json'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
