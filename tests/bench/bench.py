# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The benchmark of issue 2, item 8: run by ``make bench`` (tests/bench/run.sh), never by ``make test``.

Every contender runs in its own process, one after the other in ONE run, on the same image served
by the same local HTTP server and into the same bank (Swift through its S3 API):

- our engine: backup, unchanged re-backup, restore (sha256 of everything read, to prove identity);
- (a) a plain copy as 4 MiB objects with boto3, 4 threads, no hashing, compression or zero detection;
- (b) restic from Debian: ``backup --stdin`` (fed by curl from the same URL), unchanged re-backup,
  ``restore`` and ``dump``;
- peak RSS of our backup and restore for a 1 GiB and a 16 GiB image, and parallelism 8.

Peak RSS and CPU seconds come from ``os.wait4`` on each contender's own process; the Swift
servers' CPU seconds are read with psutil before and after each step. Results go to
``.cache/bench/results-<time>.json`` and a Markdown table on stdout. Images and buckets are
removed at the end (``--keep-images`` keeps the images for a next run).
"""

from __future__ import annotations

import argparse
import datetime
import functools
import hashlib
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORK = ROOT / ".cache" / "bench"
CONTENDERS = Path(__file__).resolve().parent / "contenders.py"
BANK_YML = ROOT / ".devcloud" / "bank.yml"
PIDS = ROOT / ".devcloud" / "bank-pids"
MIB = 1024 * 1024
GIB = 1024 * MIB
BLOCK = 4 * MIB
RESTIC_PASSWORD = "bench-not-a-secret"
DOCUMENTED_SHA256 = "005d0fd1fb1639db1ff77f0b575d7e276d7ea30a7ce9424a77a73526713098b7"
# The peers' paragraph is not published (only "a repeated text paragraph starting `Block {i}:`"): ours.
PARAGRAPH = (
    "Block {i}: the quick brown fox jumps over the lazy dog while the backup engine cuts the volume "
    "into chunks, skips the zeros, hashes, compresses and stores the rest in the bank.\n"
)


def log(message: str) -> None:
    print(f"bench: {message}", flush=True)


# --- the image ----------------------------------------------------------------------------------


def block_bytes(index: int) -> bytes | None:
    """Block ``index`` of the documented generator; None for an all-zero block."""
    kind = index % 4
    if kind == 0:
        return random.Random(index).randbytes(BLOCK)
    if kind == 2:
        paragraph = PARAGRAPH.format(i=index).encode("ascii")
        return (paragraph * (BLOCK // len(paragraph) + 1))[:BLOCK]
    return None


def make_image(path: Path, size: int) -> str:
    """Write a sparse image of ``size`` bytes (whole 4 MiB blocks) and return its sha256, cached.

    Its sha512 (what Glance publishes as ``os_hash_value``) is kept next to it: see ``image_sha512``.
    """
    stamp = path.with_suffix(".sha256")
    stamp512 = path.with_suffix(".sha512")
    if path.exists() and stamp.exists() and stamp512.exists() and path.stat().st_size == size:
        return stamp.read_text().strip()
    log(f"generating {path.name}: {size // MIB} MiB sparse")
    started = time.monotonic()
    zero = bytes(BLOCK)
    digest = hashlib.sha256()
    digest512 = hashlib.sha512()
    with open(path, "wb") as out:
        for index in range(size // BLOCK):
            data = block_bytes(index)
            if data is None:
                digest.update(zero)
                digest512.update(zero)
                out.seek(BLOCK, os.SEEK_CUR)
            else:
                digest.update(data)
                digest512.update(data)
                out.write(data)
        out.truncate(size)
    stamp.write_text(digest.hexdigest() + "\n")
    stamp512.write_text(digest512.hexdigest() + "\n")
    log(f"generated {path.name} in {time.monotonic() - started:.1f} s, sha256 {digest.hexdigest()}, "
        f"{os.stat(path).st_blocks * 512 // MIB} MiB allocated on disk")
    return digest.hexdigest()


def image_sha512(path: Path) -> str:
    """The sha512 make_image computed: what Glance would give as ``os_hash_value`` for this image."""
    return path.with_suffix(".sha512").read_text().strip()


def remove_image(path: Path) -> None:
    for name in (path, path.with_suffix(".sha256"), path.with_suffix(".sha512")):
        name.unlink(missing_ok=True)


# --- processes and measurements -----------------------------------------------------------------


def bank_server_pids() -> list[int]:
    pids = []
    for pid_file in PIDS.glob("swift-*.pid"):
        try:
            pids.append(int(pid_file.read_text().split()[0]))
        except (OSError, ValueError, IndexError):
            continue
    return pids


def server_cpu_seconds() -> float:
    """CPU seconds used so far by the Swift servers and their workers."""
    total = 0.0
    for pid in bank_server_pids():
        try:
            parent = psutil.Process(pid)
            for process in [parent] + parent.children(recursive=True):
                times = process.cpu_times()
                total += times.user + times.system
        except psutil.Error:
            continue
    return total


PROXY_LOG = ROOT / ".devcloud" / "logs" / "swift-proxy.log"


def proxy_log_offset() -> int:
    try:
        return PROXY_LOG.stat().st_size
    except OSError:
        return 0


def foreign_requests(offset: int) -> int:
    """Client requests other people sent to the shared Swift since ``offset`` (noise we cannot stop)."""
    count = 0
    try:
        with open(PROXY_LOG, "rb") as log_file:
            log_file.seek(offset)
            for line in log_file:
                fields = line.split(b" ", 7)
                # Subrequests Swift makes to itself log "- -" as client and remote address.
                if len(fields) > 6 and fields[1] != b"-" and not fields[5].startswith(b"/bench-"):
                    count += 1
    except OSError:
        return -1
    return count


def swift_healthy(bank: dict) -> bool:
    try:
        with urllib.request.urlopen(bank["endpoint_url"] + "/healthcheck", timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def retry_if_bank_restarted(method):
    """Run a measurement again, once, when it failed because someone stopped the shared bank servers.

    ``make test`` stops them when it ends, and other engineers run it on this machine: the step
    is measured again after ``make bank-up`` and its note says so.
    """
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except RuntimeError:
            if swift_healthy(self.bank):
                raise
            log("the shared Swift went down during this step (someone else's `make test` ends with bank-down): "
                "waiting for it, then measuring the step again")
            deadline = time.monotonic() + 180
            while not swift_healthy(self.bank) and time.monotonic() < deadline:
                time.sleep(5)  # whoever stopped it may be starting it again
            if not swift_healthy(self.bank):
                subprocess.run(["make", "-s", "-C", str(ROOT), "bank-up"], check=False)
            row = method(self, *args, **kwargs)
            row["note"] = (row["note"] + "; " if row["note"] else "") + "measured again after the shared Swift was restarted"
            return row
    return wrapper


def wait_for(process: subprocess.Popen) -> tuple[int, object]:
    """Reap ``process`` with wait4: (exit status, its own rusage)."""
    dummy, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, usage


class Bench:
    def __init__(self, options: argparse.Namespace) -> None:
        self.options = options
        self.run_id = time.strftime("%m%d%H%M%S")
        self.rows: list[dict] = []
        self.facts: dict = {}
        self.buckets: list[str] = []
        self.env = dict(os.environ, PYTHONPATH=str(ROOT / ".cache" / "collections"))
        banks = yaml.safe_load(BANK_YML.read_text())
        self.bank = banks["moto" if options.moto else "swift_s3"]
        self.server = None
        self.url = ""

    # -- helpers -----------------------------------------------------------------------------

    def bucket(self, label: str) -> str:
        name = f"bench-{self.run_id}-{label}"
        self.buckets.append(name)
        return name

    def s3(self):
        import boto3  # pylint: disable=import-outside-toplevel
        from botocore.config import Config  # pylint: disable=import-outside-toplevel

        return boto3.client("s3", endpoint_url=self.bank["endpoint_url"], region_name=self.bank.get("region", "us-east-1"),
                            aws_access_key_id=self.bank["access_key"], aws_secret_access_key=self.bank["secret_key"],
                            config=Config(s3={"addressing_style": "path"}))

    def bucket_bytes(self, bucket: str) -> int:
        total = 0
        for page in self.s3().get_paginator("list_objects_v2").paginate(Bucket=bucket):
            total += sum(item["Size"] for item in page.get("Contents", []))
        return total

    def start_server(self, image: Path) -> None:
        self.stop_server()
        self.server = subprocess.Popen(  # pylint: disable=consider-using-with
            [sys.executable, str(CONTENDERS), "serve", json.dumps({"path": str(image)})], stdout=subprocess.PIPE, env=self.env)
        port = json.loads(self.server.stdout.readline())["port"]
        self.url = f"http://127.0.0.1:{port}/{image.name}"

    def stop_server(self) -> None:
        if self.server is not None:
            self.server.terminate()
            self.server.wait(timeout=10)
            self.server = None

    def record(self, contender: str, operation: str, image_size: int, started: float, usage, server_before: tuple[float, int],
               result: dict | None = None, note: str = "", **extra) -> dict:
        wall = time.monotonic() - started
        row = {
            "contender": contender, "operation": operation, "image_gib": image_size / GIB,
            "wall_s": round(wall, 2), "mib_s": round(image_size / MIB / wall, 1) if image_size else 0.0,
            "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
            "server_cpu_s": round(server_cpu_seconds() - server_before[0], 1),
            "foreign_requests": foreign_requests(server_before[1]),
            "note": note, "result": result or {},
        }
        row.update(extra)
        self.rows.append(row)
        log(f"{contender:8} {operation:18} {row['image_gib']:5.1f} GiB {row['wall_s']:7.2f} s {row['mib_s']:7.1f} MiB/s "
            f"RSS {row['peak_rss_mib']:6.1f} MiB  cpu {row['cpu_s']:5.1f} s  swift cpu {row['server_cpu_s']:5.1f} s  "
            f"others' requests {row['foreign_requests']}  {note}")
        return row

    @retry_if_bank_restarted
    def child(self, contender: str, operation: str, image_size: int, command: str, args: dict, note: str = "",
              wrapper: list[str] | None = None) -> dict:
        """Run one contenders.py command in its own process and record it."""
        server_before = (server_cpu_seconds(), proxy_log_offset())
        started = time.monotonic()
        argv = (wrapper or []) + [sys.executable, str(CONTENDERS), command, json.dumps(args)]
        with subprocess.Popen(argv, stdout=subprocess.PIPE, env=self.env) as process:
            output = process.stdout.read()
            status, usage = wait_for(process)
        lines = [line for line in output.decode().splitlines() if line.startswith("{")]  # py-spy prints too
        if status != 0 or not lines:
            raise RuntimeError(f"{contender} {operation} failed with status {status}")
        return self.record(contender, operation, image_size, started, usage, server_before, json.loads(lines[-1]), note)

    @retry_if_bank_restarted
    def restic(self, operation: str, image_size: int, argv: list[str], repository: str, note: str = "",
               stdin_url: str | None = None, stdout_sink: bool = False) -> dict:
        env = dict(self.env, RESTIC_REPOSITORY=repository, RESTIC_PASSWORD=RESTIC_PASSWORD,
                   AWS_ACCESS_KEY_ID=self.bank["access_key"], AWS_SECRET_ACCESS_KEY=self.bank["secret_key"],
                   AWS_DEFAULT_REGION=self.bank.get("region", "us-east-1"), RESTIC_CACHE_DIR=str(WORK / "restic-cache"))
        server_before = (server_cpu_seconds(), proxy_log_offset())
        started = time.monotonic()
        feeder = sink = None
        stdin = subprocess.DEVNULL
        if stdin_url:
            feeder = subprocess.Popen(["curl", "-sSf", stdin_url], stdout=subprocess.PIPE)  # pylint: disable=consider-using-with
            stdin = feeder.stdout
        with subprocess.Popen(["restic", "--quiet", *argv], stdin=stdin, env=env,  # pylint: disable=consider-using-with
                              stdout=subprocess.PIPE if stdout_sink else subprocess.DEVNULL) as process:
            if stdout_sink:
                sink = subprocess.Popen([sys.executable, str(CONTENDERS), "hash-sink", "{}"],  # pylint: disable=consider-using-with
                                        stdin=process.stdout, stdout=subprocess.PIPE, env=self.env)
                process.stdout.close()
            if feeder:
                feeder.stdout.close()
            status, usage = wait_for(process)
            result = {}
            if sink:
                result = json.loads(sink.communicate()[0].decode().strip().splitlines()[-1])
            if feeder:
                feeder.wait()
        if status != 0:
            raise RuntimeError(f"restic {operation} failed with status {status}")
        return self.record("restic", operation, image_size, started, usage, server_before, result, note)

    # -- the run -----------------------------------------------------------------------------

    def main_run(self) -> None:
        size = self.options.main_size * GIB
        image = WORK / f"image-{self.options.main_size}g.raw"
        sha = make_image(image, size)
        self.facts[f"image_{self.options.main_size}g_sha256"] = sha
        self.facts["image_matches_documented_sha256"] = sha == DOCUMENTED_SHA256
        self.start_server(image)
        parallelism = self.options.parallelism

        self.child("http", "download only", size, "download", {"url": self.url}, "requests iter_content(1 MiB) to a sink")

        bucket = self.bucket("ours")
        bank = dict(self.bank, bucket=bucket)
        row = self.child("ours", "backup", size, "ours-backup", {"url": self.url, "bank": bank, "name": "img", "parallelism": parallelism},
                         f"parallelism {parallelism}, zstd-3")
        if row["result"]["hashes"]["sha256"] != sha:
            raise RuntimeError("our backup's sha256 differs from the image's")
        self.facts["ours_stored_bytes"] = self.bucket_bytes(bucket)
        self.child("ours", "re-backup unchanged", size, "ours-backup",
                   {"url": self.url, "bank": bank, "name": "img-again", "parallelism": parallelism}, "every chunk already in the bank")
        row = self.child("ours", "restore", size, "ours-restore", {"bank": bank, "name": "img", "parallelism": parallelism},
                         "read(1 MiB) to a sink that sha256s it")
        if row["result"]["sha256"] != sha:
            raise RuntimeError("our restore is not byte-identical")

        if not self.options.skip_sha512:
            # A real backup gets Glance's os_hash_value and checks it: the stream's sha512 is then computed too.
            bucket = self.bucket("ours-sha512")
            sha512 = image_sha512(image)
            row = self.child("ours", "backup, Glance sha512", size, "ours-backup",
                             {"url": self.url, "bank": dict(self.bank, bucket=bucket), "name": "img", "parallelism": parallelism,
                              "extra_hash": ["sha512", sha512]},
                             f"parallelism {parallelism}, zstd-3, extra_hash=(sha512, the image's): as with Glance")
            if row["result"]["hashes"].get("sha512") != sha512:
                raise RuntimeError("our backup did not check the image's sha512")
            self.cleanup_bucket(bucket)

        bucket = self.bucket("plain")
        bank = dict(self.bank, bucket=bucket)
        row = self.child("plain", "backup", size, "plain-backup", {"url": self.url, "bank": bank, "bucket": bucket, "prefix": "img"},
                         "4 MiB objects, 4 threads")
        self.facts["plain_stored_bytes"] = self.bucket_bytes(bucket)
        self.child("plain", "restore", size, "plain-restore", {"bank": bank, "bucket": bucket, "prefix": "img", "objects": row["result"]["objects"]},
                   "4 threads, to a sink, no hashing")

        if not self.options.skip_restic:
            bucket = self.bucket("restic")
            endpoint = self.bank["endpoint_url"].split("://", 1)[1]
            repository = f"s3:http://{endpoint}/{bucket}"
            self.restic("init", 0, ["init"], repository)
            self.rows.pop()  # not a measurement
            self.restic("backup", size, ["backup", "--stdin", "--stdin-filename", "image.raw"], repository, "curl URL | restic backup --stdin",
                        stdin_url=self.url)
            self.facts["restic_stored_bytes"] = self.bucket_bytes(bucket)
            self.restic("re-backup unchanged", size, ["backup", "--stdin", "--stdin-filename", "image.raw"], repository,
                        "same, second snapshot", stdin_url=self.url)
            target = WORK / "restic-restore"
            shutil.rmtree(target, ignore_errors=True)
            self.restic("restore", size, ["restore", "latest", "--target", str(target)], repository, "to a file on disk; sha256 checked after")
            restored = hashlib.sha256()
            with open(target / "image.raw", "rb") as handle:
                while data := handle.read(4 * MIB):
                    restored.update(data)
            shutil.rmtree(target, ignore_errors=True)
            if restored.hexdigest() != sha:
                raise RuntimeError("restic restore is not byte-identical")
            row = self.restic("dump", size, ["dump", "latest", "/image.raw"], repository, "to a pipe into a sha256 sink", stdout_sink=True)
            if row["result"].get("sha256") != sha:
                raise RuntimeError("restic dump is not byte-identical")

        if not self.options.skip_p8:
            bucket = self.bucket("ours-p8")
            bank = dict(self.bank, bucket=bucket)
            self.child("ours", "backup", size, "ours-backup", {"url": self.url, "bank": bank, "name": "img", "parallelism": 8}, "parallelism 8")
            self.child("ours", "restore", size, "ours-restore", {"bank": bank, "name": "img", "parallelism": 8}, "parallelism 8")

        self.stop_server()
        if not self.options.keep_images and not self.options.profile:
            remove_image(image)

    def profile_run(self) -> None:
        """Our backup and restore of the main image again, under py-spy: where the time goes."""
        py_spy = WORK / "tools" / "bin" / "py-spy"
        if not py_spy.exists():
            log("py-spy is not installed: no profile")
            return
        size = self.options.main_size * GIB
        image = WORK / f"image-{self.options.main_size}g.raw"
        make_image(image, size)
        self.start_server(image)
        bucket = self.bucket("prof")
        bank = dict(self.bank, bucket=bucket)
        for operation in ("backup", "restore"):
            out = WORK / f"profile-{operation}.txt"
            args = {"url": self.url, "bank": bank, "name": "img", "parallelism": self.options.parallelism}
            self.child("ours", f"{operation} (py-spy)", size, f"ours-{operation}", args, "under py-spy record --rate 50 (slower)",
                       wrapper=[str(py_spy), "record", "--rate", "50", "--format", "raw", "--output", str(out), "--"])
            self.facts[f"profile_{operation}"] = summarise_profile(out)
        self.stop_server()
        self.cleanup_bucket(bucket)
        if not self.options.keep_images:
            remove_image(image)

    def what_if_run(self) -> None:
        """Backups that test the report's ideas without changing the engine, with restic as the anchor."""
        size = self.options.main_size * GIB
        image = WORK / f"image-{self.options.main_size}g.raw"
        make_image(image, size)
        self.start_server(image)
        variants = [
            ("backup", {}, "as shipped: 4 MiB chunks, one listing of the bank's chunks"),
            ("backup, 16 MiB chunks", {"chunk_size": 16 * MIB}, "chunk_size 16 MiB"),
        ]
        for label, extra, note in variants:
            bucket = self.bucket("whatif")
            bank = dict(self.bank, bucket=bucket)
            args = {"url": self.url, "bank": bank, "name": "img", "parallelism": self.options.parallelism}
            args.update(extra)
            self.child("ours", label, size, "ours-backup", args, note)
            self.cleanup_bucket(bucket)
        bucket = self.bucket("whatif-restic")
        endpoint = self.bank["endpoint_url"].split("://", 1)[1]
        repository = f"s3:http://{endpoint}/{bucket}"
        self.restic("init", 0, ["init"], repository)
        self.rows.pop()  # not a measurement
        self.restic("backup", size, ["backup", "--stdin", "--stdin-filename", "image.raw"], repository, "the anchor of this group",
                    stdin_url=self.url)
        self.cleanup_bucket(bucket)
        shutil.rmtree(WORK / "restic-cache", ignore_errors=True)
        self.stop_server()
        if not self.options.keep_images:
            remove_image(image)

    def probe_run(self) -> None:
        """What boto3's checksum setting costs Swift: the same 4 MiB PUTs with each setting."""
        bucket = self.bucket("probe")
        for checksum in ("when_supported", "when_required"):
            self.child("s3 put", f"checksum {checksum}", GIB, "put-probe",
                       {"bank": self.bank, "bucket": bucket, "checksum": checksum, "objects": 256},
                       "256 x 4 MiB random PUTs, 4 threads" + (" (the s3 bank's default)" if checksum == "when_supported" else ""))
        self.cleanup_bucket(bucket)

    def rss_run(self) -> None:
        for gib in self.options.rss_sizes:
            size = gib * GIB
            image = WORK / f"image-{gib}g.raw"
            sha = make_image(image, size)
            self.start_server(image)
            if self.options.rss_bank == "file":
                bucket = ""
                bank = {"type": "file", "path": str(WORK / f"bank-rss{gib}g")}
            else:
                bucket = self.bucket(f"rss{gib}g")
                bank = dict(self.bank, bucket=bucket)
            row = self.child("ours", "backup", size, "ours-backup", {"url": self.url, "bank": bank, "name": "img", "parallelism": self.options.parallelism},
                             f"RSS check, {gib} GiB, {self.options.rss_bank} bank")
            if row["result"]["hashes"]["sha256"] != sha:
                raise RuntimeError(f"our backup of the {gib} GiB image has the wrong sha256")
            row = self.child("ours", "restore", size, "ours-restore", {"bank": bank, "name": "img", "parallelism": self.options.parallelism},
                             f"RSS check, {gib} GiB, {self.options.rss_bank} bank")
            if row["result"]["sha256"] != sha:
                raise RuntimeError(f"our restore of the {gib} GiB image is not byte-identical")
            self.stop_server()
            if bucket:
                self.cleanup_bucket(bucket)
            else:
                shutil.rmtree(bank["path"], ignore_errors=True)
            if not self.options.keep_images:
                remove_image(image)

    def cleanup_bucket(self, bucket: str) -> None:
        client = self.s3()
        for name in (bucket,):  # no multipart uploads here, so no Swift "+segments" container
            try:
                for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
                    keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
                    for start in range(0, len(keys), 1000):
                        client.delete_objects(Bucket=name, Delete={"Objects": keys[start:start + 1000], "Quiet": True})
                client.delete_bucket(Bucket=name)
            except client.exceptions.NoSuchBucket:
                continue
            except Exception as exc:  # pylint: disable=broad-except
                if "NoSuchBucket" not in str(exc):
                    log(f"could not remove bucket {name}: {exc}")
        if bucket in self.buckets:
            self.buckets.remove(bucket)

    def cleanup(self) -> None:
        self.stop_server()
        for bucket in list(self.buckets):
            self.cleanup_bucket(bucket)
        shutil.rmtree(WORK / "restic-restore", ignore_errors=True)
        shutil.rmtree(WORK / "restic-cache", ignore_errors=True)

    def report(self) -> Path:
        self.facts.update({
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "cpus": os.cpu_count(), "memory_gib": round(psutil.virtual_memory().total / GIB, 1),
            "cpu_model": platform.processor() or platform.machine(), "python": platform.python_version(),
            "restic": subprocess.run(["restic", "version"], capture_output=True, text=True, check=False).stdout.strip(),
            "bank": self.bank["endpoint_url"] + (" (moto)" if self.options.moto else " (Swift s3api)"),
            "load_average_at_end": os.getloadavg(),
        })
        path = WORK / f"results-{self.run_id}.json"
        path.write_text(json.dumps({"facts": self.facts, "rows": self.rows}, indent=1, sort_keys=True))
        print()
        print("| contender | operation | image | wall s | MiB/s | peak RSS MiB | client CPU s | Swift CPU s | others' requests | note |")
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
        for row in self.rows:
            print(f"| {row['contender']} | {row['operation']} | {row['image_gib']:g} GiB | {row['wall_s']:.1f} | {row['mib_s']:.0f} | "
                  f"{row['peak_rss_mib']:.0f} | {row['cpu_s']:.1f} | {row['server_cpu_s']:.1f} | {row.get('foreign_requests', '')} | {row['note']} |")
        print()
        for key, value in sorted(self.facts.items()):
            if not key.startswith("profile_"):
                print(f"- {key}: {value}")
        for key, value in sorted(self.facts.items()):
            if key.startswith("profile_"):
                print(f"\n{key} (share of samples, by innermost Python function):")
                for line in value:
                    print(f"  {line}")
        log(f"results in {path}")
        return path


def summarise_profile(path: Path, top: int = 18) -> list[str]:
    """Self time per innermost frame from py-spy's raw (collapsed) output."""
    if not path.exists():
        return ["(no profile written)"]
    leaves: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, dummy, count_text = line.rpartition(" ")
        try:
            count = int(count_text)
        except ValueError:
            continue
        frames = stack.split(";")
        leaf = frames[-1]
        thread = frames[0].split(" ")[0] if frames else "?"
        key = f"{leaf}  [{thread}]"
        leaves[key] = leaves.get(key, 0) + count
        total += count
    ranked = sorted(leaves.items(), key=lambda item: -item[1])[:top]
    return [f"{100 * count / total:5.1f} %  {name}" for name, count in ranked] + [f"({total} samples)"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parallelism", type=int, default=4)
    parser.add_argument("--main-size", type=int, default=4, help="GiB of the image every contender backs up (4 in the doc)")
    parser.add_argument("--rss-sizes", type=int, nargs="*", default=[1, 16], help="GiB images for the RSS check")
    parser.add_argument("--rss-bank", choices=("file", "s3"), default="file",
                        help="bank for the 1 and 16 GiB RSS check: a directory under .cache/bench (default) or the S3 bank")
    parser.add_argument("--skip-restic", action="store_true")
    parser.add_argument("--what-if", action="store_true", help="also back up with 16 MiB chunks (tests the report's ideas)")
    parser.add_argument("--skip-p8", action="store_true")
    parser.add_argument("--skip-sha512", action="store_true", help="skip our backup that checks the image's sha512 (Glance's os_hash_value)")
    parser.add_argument("--skip-main", action="store_true")
    parser.add_argument("--profile", action="store_true", help="also run our backup and restore under py-spy")
    parser.add_argument("--moto", action="store_true", help="use the moto S3 server instead of Swift's s3api")
    parser.add_argument("--keep-images", action="store_true")
    parser.add_argument("--no-probe", action="store_true", help="skip the boto3 checksum probe")
    options = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    bench = Bench(options)
    try:
        if not options.skip_main:
            bench.main_run()
        bench.rss_run()
        if options.what_if:
            bench.what_if_run()
        if options.profile:
            bench.profile_run()
        if not options.no_probe:
            bench.probe_run()
    finally:
        bench.report()
        bench.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
