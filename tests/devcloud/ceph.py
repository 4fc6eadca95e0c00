"""A single-node Ceph for the devcloud: RBD for site B's Cinder and Glance, the Object Gateway as a bank.

Debian's Ceph 16.2 (packages installed by up.sh), no cephadm, no LVM: one monitor, one manager, one
BlueStore OSD on a sparse file, one radosgw (beast) - all on 127.0.0.1, ports 31640-31669. State in
.devcloud/ceph/ (deleted by down, the OSD file included), logs in .devcloud/logs/ceph-*.log.
Used by devcloud.py (up/check/running/down) and runnable alone, as root, with the devcloud venv's
Python or the system's:

    ceph.py up | check | running | down | status

See docs/devcloud.md ("Ceph").
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DC = (ROOT / ".devcloud").resolve()
CEPH = DC / "ceph"
LOGS = DC / "logs"
PIDS = CEPH / "pids"
CONF = CEPH / "ceph.conf"
INFO = CEPH / "ceph.yml"
BANK_RGW = CEPH / "bank-rgw.yml"  # merged into .devcloud/bank.yml by tests/servers/bank_servers.py
DIST_PACKAGES = Path("/usr/lib/python3/dist-packages")
# os-brick's RBD connector (Cinder's upload-to-image) reads the keyring only from
# /etc/ceph/<cluster>.client.<user>.keyring (OSSN-0085 removed the option to point elsewhere), as on a
# production host: up links Cinder's keyring there, down removes that link (never someone else's file).
ETC_CEPH = Path("/etc/ceph")
# That path is machine-wide, so Cinder's cephx user is named after this checkout: two checkouts (or a
# link a copied machine image kept from another one) never meet there.
CINDER_USER = "cinder-" + hashlib.sha256(str(ROOT).encode()).hexdigest()[:8]

# Below Linux's ephemeral range and clear of the devcloud's 316[1-3]x, the bank's 3168x/31700 and
# RabbitMQ's 3169x. Messenger ports: the OSD binds 8 (public, cluster, 2 heartbeats; v1 and v2), the
# manager 2; Ceph's default range 6800-7300 on every address would collide with anything.
PORTS = {"mon_v2": 31640, "mon_v1": 31641, "rgw": 31645, "ms_min": 31650, "ms_max": 31669}
MON_ADDR = f"[v2:127.0.0.1:{PORTS['mon_v2']},v1:127.0.0.1:{PORTS['mon_v1']}]"
RGW_URL = f"http://127.0.0.1:{PORTS['rgw']}"
# The OSD's block file is sparse: it costs what was written (it never shrinks) and is deleted by down.
OSD_SIZE_GIB = int(os.environ.get("DEVCLOUD_CEPH_OSD_GIB", "8"))
# The monitor warns below mon_data_avail_warn % free on its filesystem (default 30) and SHUTS ITSELF
# DOWN below mon_data_avail_crit (default 5). The shared disk here runs at 6-37 % free: 5 / 1.
MON_DATA_AVAIL_WARN = 5
MON_DATA_AVAIL_CRIT = 1
# osd_memory_target cannot go below 896 MiB.
OSD_MEMORY_TARGET = 939524096
POOLS = ("volumes", "images")
# cephx users, as the Ceph documentation's "Block Devices and OpenStack" gives them.
CLIENT_CAPS = {
    CINDER_USER: ["mon", "profile rbd", "osd", "profile rbd pool=volumes, profile rbd-read-only pool=images",
                  "mgr", "profile rbd pool=volumes"],
    "glance": ["mon", "profile rbd", "osd", "profile rbd pool=images", "mgr", "profile rbd pool=images"],
}
# The Object Gateway's bank user: S3 keys and a Swift subuser (test credentials on 127.0.0.1 only).
RGW_UID = "devcloud-bank"
RGW_ACCESS_KEY = "devcloud-rgw"
RGW_SECRET_KEY = "devcloud-rgw-secret"
RGW_SWIFT_USER = f"{RGW_UID}:swift"
RGW_SWIFT_KEY = "devcloud-rgw-swift"
RGW_REGION = "default"
# A second user for immutable banks: the protected site's write-only credentials. A bucket policy of the
# bank's owner grants it put, get, list and lock extension on a bucket, never delete (tests/e2e/test_object_lock.py).
RGW_SITE_A_UID = "devcloud-site-a"
RGW_SITE_A_ACCESS_KEY = "devcloud-site-a"
RGW_SITE_A_SECRET_KEY = "devcloud-site-a-secret"
# A versioned bucket created with S3 Object Lock enabled (for the immutable-bank work).
OBJECT_LOCK_BUCKET = "devcloud-object-lock"
DAEMONS = ("mon", "mgr", "osd", "rgw")
CMD_TIMEOUT = 60
READY_TIMEOUT = 120


class CephError(Exception):
    """Ceph did not come up; names the daemon (or step) and its log."""

    def __init__(self, service: str, message: str, log: Path | None = None):
        super().__init__(f"{service}: {message}")
        self.service = service
        self.message = message
        self.log = log


def log(msg: str) -> None:
    print(f"devcloud: ceph: {msg}", flush=True)


def env() -> dict:
    out = dict(os.environ)
    out["CEPH_CONF"] = str(CONF)
    out["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    for key in ("PYTHONHOME", "PYTHONPATH", "VIRTUAL_ENV"):
        out.pop(key, None)
    return out


def run(cmd: list[str], step: str, stdin: str | None = None, timeout: float = CMD_TIMEOUT) -> str:
    """A CLI call with a deadline (several Ceph commands wait forever for a missing daemon)."""
    logfile = LOGS / "ceph-setup.log"
    try:
        proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, env=env(), timeout=timeout,
                              check=False)
    except subprocess.TimeoutExpired as exc:
        raise CephError(step, f"'{' '.join(cmd[:4])}' took more than {timeout} s", logfile) from exc
    with logfile.open("a") as out:
        out.write(f"=== {' '.join(cmd)}\n{proc.stdout}{proc.stderr}")
    if proc.returncode != 0:
        raise CephError(step, f"'{' '.join(cmd[:4])}' exited {proc.returncode}: {proc.stderr.strip()[-300:]}", logfile)
    return proc.stdout


def ceph_json(*args: str, timeout: float = 20) -> dict:
    return json.loads(run(["ceph", "--connect-timeout", "10", *args, "-f", "json"], "ceph", timeout=timeout))


# --------------------------------------------------------------------------- configuration

def conf_text(fsid: str) -> str:
    logs = LOGS
    sections = {
        "global": {
            "fsid": fsid,
            "mon_host": MON_ADDR,
            "public_addr": "127.0.0.1",
            "cluster_addr": "127.0.0.1",
            "ms_bind_ipv4": "true",
            "ms_bind_ipv6": "false",
            "ms_bind_port_min": PORTS["ms_min"],
            "ms_bind_port_max": PORTS["ms_max"],
            "auth_cluster_required": "cephx",
            "auth_service_required": "cephx",
            "auth_client_required": "cephx",
            "auth_allow_insecure_global_id_reclaim": "false",
            # One OSD: one replica, placement across OSDs rather than hosts.
            "osd_pool_default_size": 1,
            "osd_pool_default_min_size": 1,
            "mon_allow_pool_size_one": "true",
            "mon_warn_on_pool_no_redundancy": "false",
            "osd_crush_chooseleaf_type": 0,
            # RGW creates 7 pools by itself: 32 PGs each would pass the PGs-per-OSD limit.
            "osd_pool_default_pg_num": 8,
            "osd_pool_default_pgp_num": 8,
            "osd_pool_default_pg_autoscale_mode": "off",
            "mon_max_pg_per_osd": 1000,
            "mon_data_avail_warn": MON_DATA_AVAIL_WARN,
            "mon_data_avail_crit": MON_DATA_AVAIL_CRIT,
            "mon_allow_pool_delete": "true",
            # Every default path is under /var or /etc: all of them here.
            "run_dir": CEPH / "run",
            "crash_dir": CEPH / "crash",
            "admin_socket": "$run_dir/$cluster-$name.asok",
            "mon_cluster_log_file": f"default={logs}/ceph.$channel.log cluster={logs}/ceph-cluster.log",
        },
        "mon": {"mon_data": CEPH / "mon" / "$cluster-$id", "keyring": "$mon_data/keyring",
                "log_file": logs / "ceph-mon.log"},
        "mgr": {"mgr_data": CEPH / "mgr" / "$cluster-$id", "keyring": "$mgr_data/keyring",
                "log_file": logs / "ceph-mgr.log"},
        "osd": {
            "osd_data": CEPH / "osd" / "$cluster-$id", "keyring": "$osd_data/keyring",
            "log_file": logs / "ceph-osd.log",
            "osd_objectstore": "bluestore",
            # A plain sparse file as the block device ($osd_data/block; setting bluestore_block_path to
            # that very path fails with "Too many levels of symbolic links").
            "bluestore_block_create": "true",
            "bluestore_block_size": OSD_SIZE_GIB * 1024 ** 3,
            "bluestore_fsck_on_mkfs": "false",
            "osd_memory_target": OSD_MEMORY_TARGET,
        },
        # Keyrings of the CLI tools, Cinder, Glance and radosgw: ceph.client.<name>.keyring.
        "client": {"keyring": CEPH / "$cluster.$name.keyring"},
        "client.rgw.a": {
            "rgw_frontends": f"beast endpoint=127.0.0.1:{PORTS['rgw']}",
            "rgw_data": CEPH / "rgw",
            "log_file": logs / "ceph-rgw.log",
            "rgw_swift_auth_entry": "auth",
        },
    }
    out = []
    for section, values in sections.items():
        out.append(f"[{section}]")
        out.extend(f"{key} = {value}" for key, value in values.items())
        out.append("")
    return "\n".join(out)


def keyring_path(client: str) -> Path:
    return CEPH / f"ceph.client.{client}.keyring"


# --------------------------------------------------------------------------- processes

def start(name: str, cmd: list[str]) -> subprocess.Popen:
    logfile = LOGS / f"ceph-{name}.log"
    with logfile.open("ab") as out:
        out.write(f"\n=== {time.strftime('%H:%M:%S')} {' '.join(cmd)}\n".encode())
        out.flush()
        # pylint: disable-next=consider-using-with
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env(),
                                cwd=CEPH, start_new_session=True)
    (PIDS / f"{name}.pid").write_text(f"{proc.pid}\n")
    # Until exec, the child's command line is still ours: pid_of() would not know it yet.
    deadline = time.monotonic() + 10
    while not pid_of(name) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    return proc


def pid_alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][0] != "Z"
    except OSError:
        return False


def pid_of(name: str) -> int | None:
    try:
        pid = int((PIDS / f"{name}.pid").read_text())
    except (OSError, ValueError):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    # A recycled pid running something else is not ours.
    return pid if str(CONF).encode() in cmdline and pid_alive(pid) else None


def ceph_pids() -> set[int]:
    """Our daemons: the pid files' process groups and anything whose command line names our ceph.conf."""
    groups = set()
    for name in DAEMONS:
        pid = pid_of(name)
        if pid:
            groups.add(pid)
    marker = str(CONF).encode()
    pids = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if os.getpgid(int(entry.name)) in groups or marker in (entry / "cmdline").read_bytes():
                pids.add(int(entry.name))
        except OSError:
            continue
    return pids


def listening_ports() -> set[int]:
    """Our port range's listeners (IPv4 and IPv6), from /proc/net/tcp*."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            port = int(fields[1].rsplit(":", 1)[1], 16)
            if fields[3] == "0A" and PORTS["mon_v2"] <= port <= PORTS["ms_max"]:
                found.add(port)
    return found


def wait_for(what: str, predicate, timeout: float, daemons: list[str], logfile: Path, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        for name in daemons:
            if not pid_of(name):
                raise CephError(f"ceph-{name}", "exited while starting", LOGS / f"ceph-{name}.log")
        try:
            value = predicate()
            if value:
                return value
        except (CephError, OSError, ValueError, KeyError) as exc:
            last = f" (last: {exc})"
        if time.monotonic() > deadline:
            raise CephError(what, f"not ready after {timeout} s{last}", logfile)
        time.sleep(interval)


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


# --------------------------------------------------------------------------- bootstrap

def bootstrap() -> None:
    """A new cluster from nothing (about 30 s): monitor, manager, OSD, pools, users, radosgw."""
    started = time.monotonic()
    shutil.rmtree(CEPH, ignore_errors=True)
    for sub in ("run", "crash", "pids", "mon/ceph-a", "mgr/ceph-x", "osd/ceph-0", "rgw/ceph-rgw.a"):
        (CEPH / sub).mkdir(parents=True, exist_ok=True)
    LOGS.mkdir(parents=True, exist_ok=True)
    for old in LOGS.glob("ceph*.log"):
        old.unlink()
    fsid = str(uuid.uuid4())
    CONF.write_text(conf_text(fsid))

    # The monitor: keyrings (mon. and client.admin), a monmap with our one address, mkfs, start.
    mon_keyring = CEPH / "mon.keyring"
    admin_keyring = keyring_path("admin")
    run(["ceph-authtool", "--create-keyring", str(mon_keyring), "--gen-key", "-n", "mon.", "--cap", "mon", "allow *"],
        "ceph-mon mkfs")
    run(["ceph-authtool", "--create-keyring", str(admin_keyring), "--gen-key", "-n", "client.admin",
         "--cap", "mon", "allow *", "--cap", "osd", "allow *", "--cap", "mgr", "allow *", "--cap", "mds", "allow *"],
        "ceph-mon mkfs")
    run(["ceph-authtool", str(mon_keyring), "--import-keyring", str(admin_keyring)], "ceph-mon mkfs")
    monmap = CEPH / "monmap"
    run(["monmaptool", "--create", "--fsid", fsid, "--addv", "a", MON_ADDR, str(monmap)], "ceph-mon mkfs")
    run(["ceph-mon", "-c", str(CONF), "--mkfs", "-i", "a", "--monmap", str(monmap), "--keyring", str(mon_keyring)],
        "ceph-mon mkfs")
    start("mon", ["ceph-mon", "-f", "-c", str(CONF), "-i", "a"])
    wait_for("ceph-mon", lambda: ceph_json("mon", "stat"), 60, ["mon"], LOGS / "ceph-mon.log")

    # The manager (without one, `ceph -s` shows no pools and `ceph pg stat` waits forever).
    run(["ceph", "auth", "get-or-create", "mgr.x", "mon", "allow profile mgr", "osd", "allow *", "mds", "allow *",
         "-o", str(CEPH / "mgr" / "ceph-x" / "keyring")], "ceph-mgr")
    start("mgr", ["ceph-mgr", "-f", "-c", str(CONF), "-i", "x"])

    # The OSD, the way vstart.sh makes one: `osd new` with its secret, mkfs on the sparse file, keyring.
    osd_uuid = str(uuid.uuid4())
    secret = run(["ceph-authtool", "--gen-print-key"], "ceph-osd mkfs").strip()
    run(["ceph", "osd", "new", osd_uuid, "0", "-i", "-"], "ceph-osd mkfs", stdin=json.dumps({"cephx_secret": secret}))
    osd_data = CEPH / "osd" / "ceph-0"
    (osd_data / "keyring").write_text(f"[osd.0]\n\tkey = {secret}\n")
    run(["ceph-osd", "-c", str(CONF), "-i", "0", "--mkfs", "--key", secret, "--osd-uuid", osd_uuid], "ceph-osd mkfs",
        timeout=120)
    start("osd", ["ceph-osd", "-f", "-c", str(CONF), "-i", "0"])
    wait_for("ceph-osd", lambda: ceph_json("osd", "stat").get("num_up_osds") == 1, 90, ["mon", "osd"],
             LOGS / "ceph-osd.log")

    # RBD pools and the cephx users of Cinder and Glance.
    for pool in POOLS:
        run(["ceph", "osd", "pool", "create", pool, "8", "8"], f"pool {pool}")
        run(["rbd", "pool", "init", pool], f"pool {pool}", timeout=90)
    for client, caps in CLIENT_CAPS.items():
        run(["ceph", "auth", "get-or-create", f"client.{client}", *caps, "-o", str(keyring_path(client))],
            f"client.{client}")
    link_etc_keyring()

    # The Object Gateway and its bank user (S3 keys, a Swift subuser).
    run(["ceph", "auth", "get-or-create", "client.rgw.a", "mon", "allow rw", "osd", "allow rwx",
         "-o", str(keyring_path("rgw.a"))], "ceph-rgw")
    start("rgw", ["radosgw", "-f", "-c", str(CONF), "-n", "client.rgw.a"])
    wait_for("ceph-rgw", lambda: http_status(RGW_URL + "/") < 500, READY_TIMEOUT, ["mon", "mgr", "osd", "rgw"],
             LOGS / "ceph-rgw.log")
    run(["radosgw-admin", "user", "create", "--uid", RGW_UID, "--display-name", "devcloud bank",
         "--access-key", RGW_ACCESS_KEY, "--secret-key", RGW_SECRET_KEY], "ceph-rgw user", timeout=90)
    run(["radosgw-admin", "subuser", "create", "--uid", RGW_UID, "--subuser", RGW_SWIFT_USER, "--access", "full",
         "--key-type", "swift", "--secret-key", RGW_SWIFT_KEY], "ceph-rgw user", timeout=90)
    run(["radosgw-admin", "user", "create", "--uid", RGW_SITE_A_UID, "--display-name", "devcloud protected site",
         "--access-key", RGW_SITE_A_ACCESS_KEY, "--secret-key", RGW_SITE_A_SECRET_KEY], "ceph-rgw user", timeout=90)
    create_object_lock_bucket()
    wait_for("ceph health", healthy, READY_TIMEOUT, list(DAEMONS), LOGS / "ceph-cluster.log", interval=1)
    write_info()
    log(f"bootstrapped in {time.monotonic() - started:.0f} s (mon {MON_ADDR}, RGW {RGW_URL}, "
        f"OSD file {OSD_SIZE_GIB} GiB sparse)")


def etc_keyring() -> Path:
    return ETC_CEPH / keyring_path(CINDER_USER).name


def link_etc_keyring() -> None:
    link = etc_keyring()
    ours = keyring_path(CINDER_USER)
    if link.is_symlink() and os.readlink(link) == str(ours):
        return
    if link.is_symlink() and not link.exists():
        link.unlink()  # dangling: a removed checkout at this same path left it
    if link.exists() or link.is_symlink():
        raise CephError(f"client.{CINDER_USER}", f"{link} exists and is not ours: move it away (os-brick reads Cinder's keyring there)")
    ETC_CEPH.mkdir(parents=True, exist_ok=True)
    link.symlink_to(ours)


def unlink_etc_keyring() -> None:
    link = etc_keyring()
    if link.is_symlink() and os.readlink(link).startswith(str(CEPH) + "/"):
        link.unlink()


def create_object_lock_bucket() -> None:
    """The Object Lock bucket, through the test venv's boto3 (Ceph's CLI cannot set Object Lock)."""
    python = ROOT / ".venv" / "bin" / "python"
    if not python.exists():
        raise CephError("ceph-rgw", f"{python} is missing (make venv): needed to create the Object Lock bucket")
    script = (
        "import sys, boto3, botocore.config\n"
        "s3 = boto3.client('s3', endpoint_url=sys.argv[1], aws_access_key_id=sys.argv[2],"
        " aws_secret_access_key=sys.argv[3], region_name=sys.argv[4],"
        " config=botocore.config.Config(retries={'max_attempts': 10, 'mode': 'standard'}))\n"
        "try:\n"
        "    s3.create_bucket(Bucket=sys.argv[5], ObjectLockEnabledForBucket=True)\n"
        "except s3.exceptions.BucketAlreadyOwnedByYou:\n"
        "    pass\n"
        "lock = s3.get_object_lock_configuration(Bucket=sys.argv[5])['ObjectLockConfiguration']\n"
        "assert lock['ObjectLockEnabled'] == 'Enabled', lock\n"
        "assert s3.get_bucket_versioning(Bucket=sys.argv[5])['Status'] == 'Enabled'\n"
    )
    cmd = [str(python), "-c", script, RGW_URL, RGW_ACCESS_KEY, RGW_SECRET_KEY, RGW_REGION, OBJECT_LOCK_BUCKET]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=90, check=False, env=clean)
    if proc.returncode != 0:
        raise CephError("ceph-rgw", f"creating the Object Lock bucket failed: {proc.stderr.strip()[-400:]}",
                        LOGS / "ceph-rgw.log")


def healthy() -> bool:
    status = ceph_json("status")
    if status["health"]["status"] != "HEALTH_OK":
        return False
    pgs = status["pgmap"]
    states = {s["state_name"]: s["count"] for s in pgs.get("pgs_by_state", [])}
    return pgs["num_pgs"] > 0 and states.get("active+clean", 0) == pgs["num_pgs"]


def health_detail() -> str:
    try:
        status = ceph_json("health", "detail")
    except (CephError, ValueError) as exc:
        return str(exc)
    return "; ".join(f"{name}: {check['summary']['message']}" for name, check in status.get("checks", {}).items())


def link_bindings(venv: Path) -> None:
    """Debian's python3-rados/python3-rbd extension modules, linked into a venv of the same Python ABI."""
    probe = subprocess.run([str(venv / "bin" / "python"), "-c",
                            "import sysconfig; print(sysconfig.get_config_var('EXT_SUFFIX'));"
                            "print(sysconfig.get_paths()['platlib'])"],
                           capture_output=True, text=True, check=True, timeout=60)
    suffix, platlib = probe.stdout.split("\n")[:2]
    for module in ("rados", "rbd"):
        source = DIST_PACKAGES / f"{module}{suffix}"
        if not source.exists():
            raise CephError("ceph bindings", f"{source} is missing (python3-{module}, for the venv's ABI {suffix})")
        target = Path(platlib) / source.name
        if not target.is_symlink() or os.readlink(target) != str(source):
            target.unlink(missing_ok=True)
            target.symlink_to(source)
    check = subprocess.run([str(venv / "bin" / "python"), "-c", "import rados, rbd"], capture_output=True, text=True,
                           check=False, timeout=60)
    if check.returncode != 0:
        raise CephError("ceph bindings", f"the venv does not import rados/rbd: {check.stderr.strip()[-300:]}")


# --------------------------------------------------------------------------- outputs

def info() -> dict:
    """What sites.yml says about Ceph."""
    return {
        "conf": str(CONF),
        "fsid": conf_fsid(),
        "mon": MON_ADDR,
        "ports": {"mon": [PORTS["mon_v2"], PORTS["mon_v1"]], "rgw": PORTS["rgw"], "messenger": [PORTS["ms_min"], PORTS["ms_max"]]},
        "pools": list(POOLS),
        "users": {client: {"name": f"client.{client}", "keyring": str(keyring_path(client))} for client in CLIENT_CAPS},
        "osd_file": str(CEPH / "osd" / "ceph-0" / "block"),
        "osd_file_gib": OSD_SIZE_GIB,
        "mon_data_avail": {"warn": MON_DATA_AVAIL_WARN, "crit": MON_DATA_AVAIL_CRIT},
        "rgw": {"url": RGW_URL, "s3_region": RGW_REGION, "swift_auth_url": f"{RGW_URL}/auth/1.0",
                "object_lock_bucket": OBJECT_LOCK_BUCKET, "banks": ["rgw_s3", "rgw_s3_site_a", "rgw_swift"]},
        "logs": {name: str(LOGS / f"ceph-{name}.log") for name in DAEMONS},
    }


def bank_entries() -> dict:
    """`bank` option dicts (without bucket/container), as the bank server writes its own."""
    return {
        "rgw_s3": {"type": "s3", "endpoint_url": RGW_URL, "region": RGW_REGION,
                   "access_key": RGW_ACCESS_KEY, "secret_key": RGW_SECRET_KEY},
        # Owns no bucket: only what a bucket policy grants it (the protected site of an immutable bank).
        "rgw_s3_site_a": {"type": "s3", "endpoint_url": RGW_URL, "region": RGW_REGION,
                          "access_key": RGW_SITE_A_ACCESS_KEY, "secret_key": RGW_SITE_A_SECRET_KEY},
        "rgw_swift": {"type": "swift", "cloud": {"auth_type": "v1password", "auth": {
            "auth_url": f"{RGW_URL}/auth/1.0", "username": RGW_SWIFT_USER, "password": RGW_SWIFT_KEY}}},
    }


def conf_fsid() -> str:
    match = re.search(r"^fsid = (\S+)$", CONF.read_text(), re.M)
    return match.group(1) if match else ""


def write_info() -> None:
    # JSON is YAML: no PyYAML needed where this runs with the system's Python.
    INFO.write_text(json.dumps(info(), indent=1) + "\n")
    BANK_RGW.write_text("# Written by tests/devcloud/ceph.py: merged into bank.yml by the bank server.\n"
                        + json.dumps(bank_entries(), indent=1) + "\n")


# --------------------------------------------------------------------------- commands

def running() -> bool:
    return all(pid_of(name) for name in DAEMONS) and CONF.exists() and INFO.exists() and etc_keyring().is_symlink()


def check() -> None:
    for name in DAEMONS:
        if not pid_of(name):
            raise CephError(f"ceph-{name}", "is not running", LOGS / f"ceph-{name}.log")
    try:
        ok = healthy()
    except (CephError, ValueError, KeyError) as exc:
        raise CephError("ceph", f"status does not answer: {exc}", LOGS / "ceph-mon.log") from exc
    if not ok:
        raise CephError("ceph", f"not HEALTH_OK with all PGs active+clean: {health_detail()}",
                        LOGS / "ceph-cluster.log")
    try:
        answer = http_status(RGW_URL + "/")
    except OSError as exc:
        raise CephError("ceph-rgw", f"{RGW_URL} does not answer: {exc}", LOGS / "ceph-rgw.log") from exc
    if answer >= 500:
        raise CephError("ceph-rgw", f"{RGW_URL} answers with a server error", LOGS / "ceph-rgw.log")


def up() -> None:
    """Idempotent: a running, healthy cluster is only checked; anything else is torn down and rebuilt."""
    if os.geteuid() != 0:
        raise CephError("ceph", "must run as root")
    for tool in ("ceph-mon", "ceph-osd", "ceph-mgr", "radosgw", "rbd"):
        if not shutil.which(tool, path=env()["PATH"]):
            raise CephError("ceph", f"{tool} is not installed (tests/devcloud/up.sh installs the Debian packages)")
    if running():
        try:
            check()
            log("already running; healthy")
            return
        except CephError as exc:
            log(f"running but not healthy ({exc}): rebuilding")
    down(quiet=True)
    busy = listening_ports()
    if busy:
        raise CephError("ceph", f"ports {sorted(busy)} (our range {PORTS['mon_v2']}-{PORTS['ms_max']}) are taken "
                        "by processes this script did not start")
    try:
        bootstrap()
    except CephError as exc:
        detail = health_detail() if pid_of("mon") else ""
        if detail:
            exc.message += f" (health: {detail})"
        raise


def down(quiet: bool = False) -> bool:
    """Stops every daemon, deletes .devcloud/ceph (the OSD file included); True when nothing is left."""
    started = time.monotonic()
    stopped = 0
    for sig, grace in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        pids = ceph_pids()
        stopped = max(stopped, len(pids))
        for pid in pids:
            try:
                os.kill(pid, sig)
            except OSError:
                pass
        deadline = time.monotonic() + grace
        while pids and time.monotonic() < deadline:
            pids = {pid for pid in pids if pid_alive(pid)}
            time.sleep(0.2)
        if not pids:
            break
    problems = []
    left = {pid for pid in ceph_pids() if pid_alive(pid)}
    if left:
        problems.append(f"processes still alive: {sorted(left)}")
    ports = listening_ports()
    if ports and not left:
        # Another program's listeners in our range are not ours to stop; say so.
        problems.append(f"ports still listening in {PORTS['mon_v2']}-{PORTS['ms_max']}: {sorted(ports)}")
    if not left:
        unlink_etc_keyring()
        shutil.rmtree(CEPH, ignore_errors=True)
        if CEPH.exists():
            problems.append(f"{CEPH} could not be deleted")
    for problem in problems:
        print(f"devcloud: ceph: down: {problem}", file=sys.stderr)
    if stopped and not quiet:
        log(f"stopped {stopped} processes, deleted {CEPH} ({time.monotonic() - started:.1f} s)")
    return not problems


def status() -> int:
    for name in DAEMONS:
        pid = pid_of(name)
        print(f"ceph-{name}: {'running, pid ' + str(pid) if pid else 'stopped'}")
    if pid_of("mon"):
        print(run(["ceph", "--connect-timeout", "10", "-s"], "ceph", timeout=20))
    return 0 if running() else 1


def main() -> int:
    command = sys.argv[1] if len(sys.argv) == 2 else ""
    commands = {"up": lambda: up() or 0, "check": lambda: check() or 0, "running": lambda: 0 if running() else 1,
                "down": lambda: 0 if down() else 1, "status": status}
    if command not in commands:
        print(f"usage: {sys.argv[0]} {'|'.join(commands)}", file=sys.stderr)
        return 2
    LOGS.mkdir(parents=True, exist_ok=True)
    try:
        return commands[command]()
    except CephError as exc:
        print(f"devcloud: FAILED: {exc.service}: {exc.message}", file=sys.stderr)
        if exc.log:
            print(f"devcloud: log: {exc.log}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
