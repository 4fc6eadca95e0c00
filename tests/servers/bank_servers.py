# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Start or stop the real object stores the bank tests use: `bank_servers.py up|down|status`.

- OpenStack Swift 2.38.3 all-in-one (tempauth + s3api, no memcached) installed into
  .devcloud/swift-venv, data in .devcloud/swift/, logs in .devcloud/logs/.
- A moto S3 server from the test venv (the Python running this script).
Writes .devcloud/bank.yml with ready-to-use `bank` option dicts (swift_s3, swift, moto, and
rgw_s3, rgw_swift while the devcloud's Ceph runs), without bucket or container: each test adds its own. `up` is idempotent; `down` leaves
nothing running. Ports can be moved with BANK_SWIFT_PORT_BASE (default 31680: the proxy;
account/container/object on +1/+2/+3) and BANK_MOTO_PORT (default 31700); the state
(data, logs, pids, bank.yml) by BANK_DEVCLOUD_DIR (default .devcloud), so a second set of
servers can run beside the first. The Swift venv is always .devcloud/swift-venv.
"""

from __future__ import annotations

import base64
import fcntl
import getpass
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEVCLOUD = Path(os.environ.get("BANK_DEVCLOUD_DIR") or ROOT / ".devcloud").resolve()
SWIFT_VENV = ROOT / ".devcloud" / "swift-venv"
SWIFT_DIR = DEVCLOUD / "swift"
ETC = SWIFT_DIR / "etc"
DEVICES = SWIFT_DIR / "srv"
LOGS = DEVCLOUD / "logs"
PIDS = DEVCLOUD / "bank-pids"
BANK_YML = DEVCLOUD / "bank.yml"

HOST = "127.0.0.1"
# Below Linux's ephemeral range (32768-60999), where a client socket once took a server's port.
PROXY_PORT = int(os.environ.get("BANK_SWIFT_PORT_BASE", "31680"))
SWIFT_PORTS = {"proxy": PROXY_PORT, "account": PROXY_PORT + 1, "container": PROXY_PORT + 2, "object": PROXY_PORT + 3}
MOTO_PORT = int(os.environ.get("BANK_MOTO_PORT", "31700"))

# Swift and the dependencies it was verified with (PyECLib's wheel bundles liberasurecode).
SWIFT_REQUIREMENTS = [
    "swift==2.38.3", "eventlet==0.41.3", "greenlet==3.5.6", "PasteDeploy==3.1.0", "pyeclib==1.8.0",
    "lxml==6.1.3", "xattr==1.3.0", "cryptography==50.0.2", "cffi==2.1.1", "pycparser==3.12",
    "dnspython==2.9.2", "requests==2.34.2", "urllib3==2.8.0", "idna==3.20", "certifi==2026.10.19.post1",
    "charset-normalizer==3.5.3",
]
INSTALL_DEADLINE = 600
READY_DEADLINE = 60
STOP_DEADLINE = 15

S3_ACCESS_KEY = "test:tester"
S3_SECRET_KEY = "testing"


class ServerError(RuntimeError):
    pass


def log(message: str) -> None:
    print(f"bank-servers: {message}", flush=True)


# --- Swift installation and configuration -------------------------------------------------------


def install_swift() -> None:
    stamp = SWIFT_VENV / (".installed-" + base64.b32encode("\n".join(SWIFT_REQUIREMENTS).encode()).decode()[:16].lower())
    if stamp.exists():
        return
    log(f"installing Swift into {SWIFT_VENV.relative_to(ROOT)}")
    python = SWIFT_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(SWIFT_VENV)], check=True, timeout=120)
    LOGS.mkdir(parents=True, exist_ok=True)
    with open(LOGS / "swift-install.log", "wb") as out:
        result = subprocess.run(
            [str(python), "-m", "pip", "install", "--disable-pip-version-check", *SWIFT_REQUIREMENTS],
            stdout=out, stderr=subprocess.STDOUT, timeout=INSTALL_DEADLINE, check=False,
        )
    if result.returncode != 0:
        raise ServerError(f"installing Swift failed; see {LOGS / 'swift-install.log'}")
    for old in SWIFT_VENV.glob(".installed-*"):
        old.unlink()
    stamp.touch()


def check_xattrs() -> None:
    probe = DEVICES / ".xattr-probe"
    probe.touch()
    try:
        os.setxattr(probe, "user.swift.probe", b"1")
    except OSError as exc:
        raise ServerError(f"{DEVICES} does not support user xattrs, which Swift needs: {exc}") from exc
    finally:
        probe.unlink()


def write_if_changed(path: Path, text: str) -> None:
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def configure_swift() -> None:
    for directory in (ETC, DEVICES / "d1", SWIFT_DIR / "cache", LOGS, PIDS):
        directory.mkdir(parents=True, exist_ok=True)
    check_xattrs()
    common = (
        "[DEFAULT]\n"
        f"swift_dir = {ETC}\ndevices = {DEVICES}\nmount_check = false\nbind_ip = {HOST}\n"
        f"user = {getpass.getuser()}\nworkers = 1\nrecon_cache_path = {SWIFT_DIR / 'cache'}\nlog_level = INFO\n"
    )
    write_if_changed(ETC / "swift.conf", (
        "[swift-hash]\nswift_hash_path_prefix = devcloud\nswift_hash_path_suffix = devcloud\n\n"
        "[storage-policy:0]\nname = Policy-0\ndefault = yes\n"
    ))
    for server in ("account", "container", "object"):
        extra = "disable_fallocate = true\n" if server == "object" else ""
        write_if_changed(ETC / f"{server}-server.conf", (
            f"{common}bind_port = {SWIFT_PORTS[server]}\nlog_name = {server}-server\n{extra}\n"
            f"[pipeline:main]\npipeline = healthcheck {server}-server\n\n"
            f"[app:{server}-server]\nuse = egg:swift#{server}\n\n"
            "[filter:healthcheck]\nuse = egg:swift#healthcheck\n"
        ))
    key_file = SWIFT_DIR / "fernet.key"
    if not key_file.exists():
        key_file.write_text(base64.urlsafe_b64encode(os.urandom(32)).decode())
    filters = {
        "catch_errors": "", "gatekeeper": "", "healthcheck": "", "proxy-logging": "", "listing_formats": "",
        "bulk": "delete_concurrency = 4\n", "copy": "", "dlo": "", "versioned_writes": "", "symlink": "",
        "s3api": "location = us-east-1\nmax_upload_part_num = 10000\n",
        # Fernet tokens are self-contained: no memcached needed.
        "tempauth": f"user_test_tester = testing .admin\nfernet_key_k1 = {key_file.read_text()}\nactive_fernet_key_id = k1\n",
        "slo": "max_manifest_segments = 10000\n",
    }
    proxy = (
        f"{common}bind_port = {SWIFT_PORTS['proxy']}\nlog_name = proxy-server\n\n"
        "[pipeline:main]\npipeline = catch_errors gatekeeper healthcheck proxy-logging listing_formats bulk s3api tempauth"
        " copy slo dlo versioned_writes symlink proxy-logging proxy-server\n\n"
        "[app:proxy-server]\nuse = egg:swift#proxy\naccount_autocreate = true\n"
        # One node of each kind: never stop talking to it for a minute after a restart.
        "error_suppression_interval = 1\n\n"
    )
    for name, settings in filters.items():
        egg = name.replace("-", "_")
        proxy += f"[filter:{name}]\nuse = egg:swift#{egg}\n{settings}\n"
    write_if_changed(ETC / "proxy-server.conf", proxy)
    builder_tool = SWIFT_VENV / "bin" / "swift-ring-builder"
    # Rings hold the servers' ports: rebuild them when the ports were moved.
    ports_stamp = ETC / "ring-ports"
    ports = " ".join(str(SWIFT_PORTS[s]) for s in ("account", "container", "object"))
    if not ports_stamp.exists() or ports_stamp.read_text() != ports:
        for old in list(ETC.glob("*.ring.gz")) + list(ETC.glob("*.builder")):
            old.unlink()
        ports_stamp.write_text(ports)
    for server in ("account", "container", "object"):
        if (ETC / f"{server}.ring.gz").exists():
            continue
        builder = str(ETC / f"{server}.builder")
        with open(LOGS / "swift-rings.log", "ab") as out:
            for args in (
                ["create", "8", "1", "1"],
                ["add", "--region", "1", "--zone", "1", "--ip", HOST, "--port", str(SWIFT_PORTS[server]), "--device", "d1", "--weight", "100"],
                ["rebalance"],
            ):
                # rebalance exits 1 on warnings with a valid ring: judge by the ring file instead.
                subprocess.run([str(builder_tool), builder, *args], stdout=out, stderr=subprocess.STDOUT, timeout=60, check=False)
        if not (ETC / f"{server}.ring.gz").exists():
            raise ServerError(f"building the Swift {server} ring failed; see {LOGS / 'swift-rings.log'}")


# --- processes ------------------------------------------------------------------------------------


def pid_of(name: str) -> int | None:
    pid_file = PIDS / f"{name}.pid"
    try:
        pid = int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    marker = pid_file.read_text().split(maxsplit=1)[1] if len(pid_file.read_text().split(maxsplit=1)) > 1 else ""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None
    # A recycled pid running something else is not ours.
    return pid if marker.strip() and marker.strip() in cmdline else None


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((HOST, port)) == 0


def start(name: str, argv: list[str], marker: str, port: int) -> None:
    if pid_of(name):
        return
    if port_in_use(port):
        raise ServerError(f"{name}: port {port} on {HOST} is already in use by a process this script did not start "
                          f"(another checkout's servers?); stop it or move the ports (BANK_SWIFT_PORT_BASE, BANK_MOTO_PORT)")
    log_path = LOGS / f"{name}.log"
    with open(log_path, "ab") as out:
        out.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(argv)}\n".encode())
        out.flush()
        # A session of its own: `down` can stop the server and the workers it forked together.
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, cwd=str(DEVCLOUD))
    (PIDS / f"{name}.pid").write_text(f"{process.pid} {marker}\n")


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def wait_ready(name: str, url: str) -> None:
    deadline = time.monotonic() + READY_DEADLINE
    while time.monotonic() < deadline:
        if http_ok(url):
            return
        if not pid_of(name):
            raise ServerError(f"{name} exited while starting; see {LOGS / (name + '.log')}")
        time.sleep(0.2)
    raise ServerError(f"{name} not ready at {url} after {READY_DEADLINE} s; see {LOGS / (name + '.log')}")


def stop(name: str) -> None:
    pid = pid_of(name)
    pid_file = PIDS / f"{name}.pid"
    if pid:
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + STOP_DEADLINE
        while time.monotonic() < deadline and _group_alive(pid):
            time.sleep(0.1)
        if _group_alive(pid):
            log(f"{name} (pid {pid}) ignored SIGTERM for {STOP_DEADLINE} s: SIGKILL")
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + STOP_DEADLINE
            while time.monotonic() < deadline and _group_alive(pid):
                time.sleep(0.1)
        log(f"stopped {name} (pid {pid})")
    pid_file.unlink(missing_ok=True)


def _group_alive(pgid: int) -> bool:
    # Reap our own child if it is one; otherwise probe the process group.
    try:
        os.waitpid(pgid, os.WNOHANG)
    except ChildProcessError:
        pass
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # Zombies still count for killpg: look for a live member.
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


# --- commands -------------------------------------------------------------------------------------


def bank_configs() -> dict:
    swift_url = f"http://{HOST}:{PROXY_PORT}"
    return {
        "swift_s3": {
            "type": "s3", "endpoint_url": swift_url, "region": "us-east-1",
            "access_key": S3_ACCESS_KEY, "secret_key": S3_SECRET_KEY,
        },
        "swift": {
            "type": "swift",
            "cloud": {"auth_type": "v1password", "auth": {"auth_url": f"{swift_url}/auth/v1.0", "username": "test:tester", "password": "testing"}},
        },
        "moto": {
            "type": "s3", "endpoint_url": f"http://{HOST}:{MOTO_PORT}", "region": "us-east-1",
            "access_key": "moto", "secret_key": "moto",
        },
    }


# The devcloud's Ceph Object Gateway (tests/devcloud/ceph.py writes this while it runs): rgw_s3, rgw_swift.
RGW_BANKS = ROOT / ".devcloud" / "ceph" / "bank-rgw.yml"


def write_bank_yml() -> None:
    import yaml  # pylint: disable=import-outside-toplevel  # the test venv has PyYAML (ansible-core needs it)

    configs = bank_configs()
    if RGW_BANKS.exists():
        configs.update({name: config for name, config in yaml.safe_load(RGW_BANKS.read_text()).items() if name not in configs})
    text = "# Written by tests/servers/bank_servers.py up: `bank` option dicts without bucket/container.\n"
    text += yaml.safe_dump(configs, sort_keys=True, default_flow_style=False)
    tmp = BANK_YML.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, BANK_YML)


def up() -> None:
    started = time.monotonic()
    for directory in (DEVCLOUD, LOGS, PIDS):
        directory.mkdir(parents=True, exist_ok=True)
    install_swift()
    configure_swift()
    bin_dir = SWIFT_VENV / "bin"
    for server in ("account", "container", "object", "proxy"):
        conf = ETC / f"{server}-server.conf"
        start(f"swift-{server}", [str(bin_dir / f"swift-{server}-server"), str(conf), "-v"], str(conf), SWIFT_PORTS[server])
    moto = Path(sys.executable).parent / "moto_server"
    start("moto", [str(moto), "-H", HOST, "-p", str(MOTO_PORT)], f"-p {MOTO_PORT}", MOTO_PORT)
    for server, port in SWIFT_PORTS.items():
        wait_ready(f"swift-{server}", f"http://{HOST}:{port}/healthcheck")
    wait_ready("moto", f"http://{HOST}:{MOTO_PORT}/")  # ListBuckets: 200 when S3 is served
    write_bank_yml()
    log(f"ready in {time.monotonic() - started:.1f} s: Swift http://{HOST}:{PROXY_PORT} (Swift and S3 API), "
        f"moto http://{HOST}:{MOTO_PORT}; configs in {BANK_YML}")


def down() -> None:
    for name in ("moto", "swift-proxy", "swift-object", "swift-container", "swift-account"):
        stop(name)
    BANK_YML.unlink(missing_ok=True)


def status() -> int:
    code = 0
    for name in ("swift-account", "swift-container", "swift-object", "swift-proxy", "moto"):
        pid = pid_of(name)
        print(f"{name}: {'running, pid ' + str(pid) if pid else 'stopped'}")
        code |= 0 if pid else 1
    return code


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[1] not in ("up", "down", "status"):
        print(f"usage: {argv[0]} up|down|status", file=sys.stderr)
        return 2
    try:
        DEVCLOUD.mkdir(parents=True, exist_ok=True)
        with open(DEVCLOUD / "bank-servers.lock", "w", encoding="utf-8") as lock:
            # Concurrent up/down from several shells run one after the other, never interleaved.
            fcntl.flock(lock, fcntl.LOCK_EX)
            if argv[1] == "up":
                up()
            elif argv[1] == "down":
                down()
            else:
                return status()
    except (ServerError, subprocess.SubprocessError, OSError) as exc:
        print(f"bank-servers: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
