"""Two real OpenStack sites on 127.0.0.1 for the tests and the demo (run by up.sh/down.sh).

Runs with the devcloud venv's Python (.devcloud/venv/bin/python), as root:

    devcloud.py up        start RabbitMQ and both sites, register users, write clouds.yaml/sites.yml
    devcloud.py check     exit 0 when every API answers and every Cinder pool is reported
    devcloud.py running   exit 0 when every started process is still alive
    devcloud.py down      stop every process, unmount the shares, free the loop devices
    devcloud.py rss       print the summed RSS of the devcloud's processes (and the bank's)
    devcloud.py restart-site-b   site B alone, anew, on DEVCLOUD_SITE_B_BACKEND (site A keeps running)

Everything lives under .devcloud/ in the repository root (found from this file's path).
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import sysconfig
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import ceph as ceph_node  # tests/devcloud/ceph.py: the single-node Ceph (RBD for site B, RGW as a bank)

ROOT = Path(__file__).resolve().parents[2]
DC = (ROOT / ".devcloud").resolve()
VENV = DC / "venv"
STATE = DC / "state"
LOGS = DC / "logs"
PIDS = STATE / "pids"
BIN = STATE / "bin"
CLOUDS_YAML = DC / "clouds.yaml"
SITES_YML = DC / "sites.yml"

# Ports below Linux's ephemeral range (32768-60999): a listener there can find its port taken by
# one of the many short-lived client connections on 127.0.0.1 (seen: RabbitMQ's eaddrinuse).
RABBIT = {"amqp": 31610, "dist": 31611, "epmd": 31612, "ctl_min": 31690, "ctl_max": 31699}
RABBIT_USER, RABBIT_PASSWORD = "devcloud", "devcloud-rabbit"
ADMIN_PASSWORD = "devcloud-admin"
MEMBER_USER, MEMBER_PASSWORD = "dr-member", "devcloud-member"
SERVICE_PASSWORD = "devcloud-service"
PROJECT = "dr"
# Site A is on Cinder's NFS driver and Glance's file store; site B on Ceph RBD (Cinder's RBD driver,
# Glance's RBD store) or, with DEVCLOUD_SITE_B_BACKEND=nfs, like site A. The default type is named
# after the backend (nfs / rbd), so the type names differ between the sites as they do in real clouds.
SITE_B_BACKENDS = ("rbd", "nfs")
SITE_B_BACKEND_DEFAULT = "rbd"
BACKENDS_FILE = STATE / "backends.json"
QUOTAS = {"volumes": 10, "snapshots": 10, "gigabytes": 20}
SHARE_SIZE_GIB = 40
DB_SERVICES = ("keystone", "glance", "cinder")
# cinder-api, -scheduler and -volume write one sqlite file at once: wait for the lock (seconds) rather
# than fail with "database is locked" (sqlite's default is 5 s), and use WAL so readers never block.
SQLITE_BUSY_TIMEOUT = 60
# oslo.db opens every transaction with a deferred BEGIN. When such a transaction has read and then
# writes while another connection committed meanwhile, sqlite answers "database is locked" at once,
# without the busy wait, and the service loses the write: in CI a snapshot stayed `creating` for
# good. The hook (sqlite_immediate.py, copied into the devcloud venv and loaded by a .pth file) makes that BEGIN an immediate one, so
# the write lock is taken (and waited for) up front. Only the OpenStack services' sqlite3 is touched.
SQLITE_HOOK_MODULE = "devcloud_sqlite_immediate"
SQLITE_HOOK = Path(__file__).with_name("sqlite_immediate.py")

SITES = {
    "site-a": {"region": "RegionA", "keystone": 31620, "glance": 31621, "cinder": 31622, "extra_type": "gold-a"},
    "site-b": {"region": "RegionB", "keystone": 31630, "glance": 31631, "cinder": 31632, "extra_type": "gold-b"},
}

HTTP_TIMEOUT = 90
POOLS_TIMEOUT = 150
CEPH_TIMEOUT = 240


def wanted_backends() -> dict:
    """The backend of each site this up asks for: DEVCLOUD_SITE_B_BACKEND (rbd or nfs) for site B."""
    site_b = os.environ.get("DEVCLOUD_SITE_B_BACKEND", "").strip() or SITE_B_BACKEND_DEFAULT
    if site_b not in SITE_B_BACKENDS:
        raise DevcloudError("devcloud", f"DEVCLOUD_SITE_B_BACKEND must be one of {', '.join(SITE_B_BACKENDS)}, not {site_b!r}")
    return {"site-a": "nfs", "site-b": site_b}


def backend_of(name: str) -> str:
    """The backend a site runs on (recorded at up), else the one asked for."""
    try:
        return json.loads(BACKENDS_FILE.read_text())[name]
    except (OSError, ValueError, KeyError):
        return wanted_backends()[name]


def default_type(name: str) -> str:
    return backend_of(name)


class DevcloudError(Exception):
    """A service did not come up; names it and its log."""

    def __init__(self, service: str, message: str, log: Path | None = None):
        super().__init__(f"{service}: {message}")
        self.service = service
        self.message = message
        self.log = log


def log(msg: str) -> None:
    print(f"devcloud: {msg}", flush=True)


def tail(path: Path, lines: int = 25) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 16384))
            data = handle.read().decode("utf-8", "replace")
    except OSError as exc:
        return f"(cannot read {path}: {exc})"
    return "\n".join(data.splitlines()[-lines:])


def run(service: str, cmd: list[str], env: dict | None = None, timeout: float = 180) -> None:
    """Runs a one-shot command, its output appended to the service's log."""
    logfile = LOGS / f"{service}.log"
    with logfile.open("ab") as out:
        out.write(f"\n=== {' '.join(cmd)}\n".encode())
        out.flush()
        try:
            proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                  timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            raise DevcloudError(service, f"'{cmd[0]}' took more than {timeout} s", logfile) from exc
    if proc.returncode != 0:
        raise DevcloudError(service, f"'{' '.join(cmd[:3])}' exited {proc.returncode}", logfile)


def service_env(extra: dict | None = None) -> dict:
    env = dict(os.environ)
    env["PATH"] = f"{BIN}:{VENV / 'bin'}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    env.pop("OS_CLOUD", None)
    env.pop("OS_CLIENT_CONFIG_FILE", None)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONWARNINGS"] = "ignore::DeprecationWarning"
    if extra:
        env.update(extra)
    return env


class Proc:
    """A started long-running service: own session (process group), pid file, log file."""

    def __init__(self, name: str, cmd: list[str], env: dict, cwd: Path | None = None):
        self.name = name
        self.log = LOGS / f"{name}.log"
        with self.log.open("ab") as out:
            out.write(f"\n=== {time.strftime('%H:%M:%S')} {' '.join(cmd)}\n".encode())
            out.flush()
            # pylint: disable-next=consider-using-with
            self.popen = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                          cwd=cwd or DC, start_new_session=True)
        (PIDS / f"{name}.pid").write_text(f"{self.popen.pid}\n")

    def check_alive(self) -> None:
        code = self.popen.poll()
        if code is not None:
            raise DevcloudError(self.name, f"exited with status {code} while starting", self.log)


def wait_for(what: str, predicate, timeout: float, procs: list[Proc], log_path: Path | None, interval: float = 0.5):
    """Polls predicate until it returns a truthy value; fails with the service's log after timeout."""
    deadline = time.monotonic() + timeout
    last_error = ""
    while True:
        for proc in procs:
            proc.check_alive()
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # pylint: disable=broad-exception-caught
            last_error = f" (last error: {type(exc).__name__}: {exc})"
        if time.monotonic() > deadline:
            raise DevcloudError(what, f"not ready after {timeout} s{last_error}", log_path)
        time.sleep(interval)


def http_answers(port: int) -> bool:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/", headers={"Connection": "close"})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status < 500
    except urllib.error.HTTPError as exc:
        return exc.code < 500


def tcp_answers(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=2):
        return True


# --------------------------------------------------------------------------- config files

def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def ini(sections: dict) -> str:
    out = []
    for section, values in sections.items():
        out.append(f"[{section}]")
        out.extend(f"{key} = {value}" for key, value in values.items())
        out.append("")
    return "\n".join(out)


def authtoken(site: dict, user: str) -> dict:
    keystone = f"http://127.0.0.1:{site['keystone']}"
    return {
        "www_authenticate_uri": f"{keystone}/v3",
        "auth_url": f"{keystone}/v3",
        "auth_type": "password",
        "project_domain_name": "Default",
        "user_domain_name": "Default",
        "project_name": "service",
        "username": user,
        "password": SERVICE_PASSWORD,
        "region_name": site["region"],
        "service_token_roles_required": "true",
    }


def uwsgi_ini(port: int, module: str, env: dict, extra: dict | None = None) -> str:
    values = {
        "http-socket": f"127.0.0.1:{port}",
        "wsgi": module,
        "master": "true",
        "processes": "1",
        "threads": "4",
        "enable-threads": "true",
        "lazy-apps": "true",
        "die-on-term": "true",
        "need-app": "true",
        "vacuum": "true",
        "buffer-size": "65535",
        "add-header": "Connection: close",
        "disable-logging": "true",
    }
    values.update(extra or {})
    lines = ["[uwsgi]"] + [f"{key} = {value}" for key, value in values.items()]
    lines += [f"env = {key}={value}" for key, value in env.items()]
    return "\n".join(lines) + "\n"


def site_dirs(name: str) -> dict:
    base = STATE / name
    return {
        "base": base,
        "etc": base / "etc",
        "keystone_conf": base / "etc" / "keystone" / "keystone.conf",
        "glance_dir": base / "etc" / "glance",
        "cinder_conf": base / "etc" / "cinder" / "cinder.conf",
        "share_img": base / "nfs-share.img",
        "mnt_base": base / "nfs-mnt",
        "share": f"127.0.0.1:/devcloud-{name}",
    }


def mount_point(name: str) -> Path:
    dirs = site_dirs(name)
    return dirs["mnt_base"] / hashlib.md5(dirs["share"].encode(), usedforsecurity=False).hexdigest()


def configure_site(name: str) -> None:
    site = SITES[name]
    dirs = site_dirs(name)
    base = dirs["base"]
    venv_etc = VENV / "etc"
    for sub in ("etc/keystone", "etc/glance", "etc/cinder/rootwrap.d", "keystone-fernet", "keystone-credential",
                "glance-images", "glance-staging", "glance-tasks", "cinder-state", "locks", "nfs-mnt", "tmp"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    transport = f"rabbit://{RABBIT_USER}:{RABBIT_PASSWORD}@127.0.0.1:{RABBIT['amqp']}/{name}"

    write(dirs["keystone_conf"], ini({
        "DEFAULT": {"use_stderr": "true", "debug": "false"},
        "database": {"connection": f"sqlite:///{base}/keystone.sqlite?timeout={SQLITE_BUSY_TIMEOUT}",
                     "sqlite_synchronous": "false"},
        "token": {"provider": "fernet", "expiration": "14400"},
        "fernet_tokens": {"key_repository": f"{base}/keystone-fernet"},
        "fernet_receipts": {"key_repository": f"{base}/keystone-fernet"},
        "credential": {"key_repository": f"{base}/keystone-credential"},
        "oslo_concurrency": {"lock_path": f"{base}/locks"},
    }))
    write(base / "etc" / "keystone-uwsgi.ini", uwsgi_ini(
        site["keystone"], "keystone.wsgi.api:application",
        {"OS_KEYSTONE_CONFIG_DIR": str(dirs["keystone_conf"].parent)}))

    rbd = backend_of(name) == "rbd"
    shutil.copy(venv_etc / "glance" / "glance-api-paste.ini", dirs["glance_dir"] / "glance-api-paste.ini")
    write(dirs["glance_dir"] / "glance-api.conf", ini({
        "DEFAULT": {
            "use_stderr": "true", "debug": "false", "enabled_backends": "ceph:rbd" if rbd else "local:file",
            "bind_host": "127.0.0.1", "bind_port": site["glance"],
            "public_endpoint": f"http://127.0.0.1:{site['glance']}",
            "image_cache_dir": f"{base}/glance-cache",
            # Glance 2024.2+: Cinder reads an image's locations through the service-only locations API
            # (OSSN-0065), so neither show_image_direct_url nor the deprecated show_multiple_locations
            # exposes them to users (see docs/devcloud.md).
            **({"show_image_direct_url": "false", "show_multiple_locations": "false"} if rbd else {}),
        },
        "database": {"connection": f"sqlite:///{base}/glance.sqlite?timeout={SQLITE_BUSY_TIMEOUT}",
                     "sqlite_synchronous": "false"},
        **({"glance_store": {"default_backend": "ceph"}, "ceph": glance_rbd_store()} if rbd else {
            "glance_store": {"default_backend": "local"},
            "local": {"filesystem_store_datadir": f"{base}/glance-images"}}),
        "os_glance_staging_store": {"filesystem_store_datadir": f"{base}/glance-staging"},
        "os_glance_tasks_store": {"filesystem_store_datadir": f"{base}/glance-tasks"},
        "keystone_authtoken": authtoken(site, "glance"),
        "paste_deploy": {"flavor": "keystone", "config_file": f"{dirs['glance_dir']}/glance-api-paste.ini"},
        "oslo_messaging_notifications": {"driver": "noop"},
        "oslo_concurrency": {"lock_path": f"{base}/locks"},
    }))
    write(base / "etc" / "glance-uwsgi.ini", uwsgi_ini(
        site["glance"], "glance.wsgi.api:application",
        {"OS_GLANCE_CONFIG_DIR": str(dirs["glance_dir"])},
        # Cinder's upload-to-image sends 1 MiB chunks (glanceclient); uWSGI's default limit refuses them.
        {"http-chunked-input": "true", "http-raw-body": "true", "http-auto-chunked": "true",
         "chunked-input-limit": str(64 * 1024 * 1024), "socket-timeout": "120", "http-timeout": "600"}))

    cinder_etc = dirs["cinder_conf"].parent
    shutil.copy(venv_etc / "cinder" / "api-paste.ini", cinder_etc / "api-paste.ini")
    shutil.copy(venv_etc / "cinder" / "resource_filters.json", cinder_etc / "resource_filters.json")
    filters = (venv_etc / "cinder" / "rootwrap.d" / "volume.filters").read_text()
    filters = filters.replace(r"/etc/(?!\.\.).*", ".*").replace("/tmp/.*", ".*")
    write(cinder_etc / "rootwrap.d" / "volume.filters", filters)
    write(cinder_etc / "rootwrap.conf", ini({"DEFAULT": {
        "filters_path": f"{cinder_etc}/rootwrap.d",
        "exec_dirs": f"{BIN},{VENV / 'bin'},/sbin,/usr/sbin,/bin,/usr/bin,/usr/local/bin,/usr/local/sbin",
        "use_syslog": "False",
    }}))
    write(base / "nfs_shares", f"{dirs['share']}\n")
    helper = f"{VENV / 'bin' / 'privsep-helper'} --config-file {dirs['cinder_conf']}"
    write(dirs["cinder_conf"], ini({
        "DEFAULT": {
            "use_stderr": "true", "debug": "false",
            "transport_url": transport,
            "auth_strategy": "keystone",
            "host": f"devcloud-{name}",
            "my_ip": "127.0.0.1",
            "state_path": f"{base}/cinder-state",
            "image_conversion_dir": f"{base}/cinder-state/conversion",
            "api_paste_config": f"{cinder_etc}/api-paste.ini",
            # The filters users may list by (name, status, metadata...), as a packaged Cinder ships them.
            "resource_query_filters_file": f"{cinder_etc}/resource_filters.json",
            "rootwrap_config": f"{cinder_etc}/rootwrap.conf",
            "osapi_volume_listen": "127.0.0.1",
            "osapi_volume_listen_port": site["cinder"],
            "osapi_volume_workers": "1",
            "enabled_backends": backend_of(name),
            "default_volume_type": default_type(name),
            "glance_api_servers": f"http://127.0.0.1:{site['glance']}",
            "report_interval": "5",
            "periodic_interval": "10",
            "rpc_response_timeout": "120",
        },
        "database": {"connection": f"sqlite:///{base}/cinder.sqlite?timeout={SQLITE_BUSY_TIMEOUT}",
                     "sqlite_synchronous": "false"},
        "keystone_authtoken": authtoken(site, "cinder"),
        "oslo_concurrency": {"lock_path": f"{base}/locks"},
        "oslo_messaging_notifications": {"driver": "noop"},
        "coordination": {"backend_url": f"file://{base}/locks"},
        "privsep_osbrick": {"helper_command": helper},
        "cinder_sys_admin": {"helper_command": helper},
        **({"rbd": cinder_rbd_backend(), "glance": service_auth(site, "cinder")} if rbd else {"nfs": {
            "volume_driver": "cinder.volume.drivers.nfs.NfsDriver",
            "volume_backend_name": "nfs",
            "nfs_shares_config": f"{base}/nfs_shares",
            "nfs_mount_point_base": dirs["mnt_base"],
            "nfs_snapshot_support": "true",
            "nfs_sparsed_volumes": "true",
            "nas_secure_file_operations": "false",
            "nas_secure_file_permissions": "false",
            "max_over_subscription_ratio": "20.0",
        }}),
    }))


def glance_rbd_store() -> dict:
    """Glance's RBD store: pool `images`, cephx user `glance`."""
    return {
        "rbd_store_pool": "images",
        "rbd_store_user": "glance",
        "rbd_store_ceph_conf": ceph_node.CONF,
        "rbd_store_chunk_size": "8",
        # Zero chunks are not written: an uploaded 1 GiB volume with 3 MiB of data costs 3 MiB of OSD.
        "rbd_thin_provisioning": "true",
        "rados_connect_timeout": "30",
    }


def cinder_rbd_backend() -> dict:
    """Cinder's RBD driver on pool `volumes`, cephx user `cinder-<checkout hash>`, copy-on-write as in production."""
    return {
        "volume_driver": "cinder.volume.drivers.rbd.RBDDriver",
        "volume_backend_name": "rbd",
        "rbd_pool": "volumes",
        "rbd_user": ceph_node.CINDER_USER,
        "rbd_ceph_conf": ceph_node.CONF,
        # A volume from a snapshot stays a copy-on-write clone of it (not flattened), as in production:
        # deleting the snapshot first makes Cinder flatten that volume (a full copy), or fail
        # (SnapshotIsBusy) when it cannot.
        "rbd_flatten_volume_from_snapshot": "false",
        "rbd_max_clone_depth": "5",
        "rbd_store_chunk_size": "4",
        "rados_connect_timeout": "30",
        "report_discard_supported": "true",
        "max_over_subscription_ratio": "20.0",
    }


def service_auth(site: dict, user: str) -> dict:
    """[glance] of cinder.conf: the service user Cinder reads image locations with (Glance's locations
    API is for the `service` role only); without it Cinder cannot clone images and copies them."""
    keystone = f"http://127.0.0.1:{site['keystone']}/v3"
    return {"auth_type": "password", "auth_url": keystone, "username": user, "password": SERVICE_PASSWORD,
            "project_name": "service", "user_domain_name": "Default", "project_domain_name": "Default",
            "region_name": site["region"]}


def mount_share(name: str) -> None:
    dirs = site_dirs(name)
    target = mount_point(name)
    target.mkdir(parents=True, exist_ok=True)
    service = f"{name}-share"
    # discard: ext4 passes each freed extent to the loop device, which punches it out of the
    # image file, so the image shrinks back when Cinder deletes a volume file (without it, the
    # image kept every block ever written: 24 GB after a day of tests for 1 GB of volumes).
    if str(target) in Path("/proc/mounts").read_text():
        run(service, ["mount", "-o", "remount,discard", str(target)])
        return
    with dirs["share_img"].open("wb") as handle:
        handle.truncate(SHARE_SIZE_GIB * 1024 ** 3)
    run(service, ["mkfs.ext4", "-q", "-F", "-m", "0", "-E", "lazy_itable_init=1,nodiscard", str(dirs["share_img"])])
    run(service, ["mount", "-o", "loop,discard", str(dirs["share_img"]), str(target)])
    target.chmod(0o777)


# --------------------------------------------------------------------------- RabbitMQ

def rabbit_env() -> dict:
    home = STATE / "rabbitmq"
    return service_env({
        "HOME": str(home),
        "RABBITMQ_CONF_ENV_FILE": str(home / "rabbitmq-env.conf"),
        "RABBITMQ_CONFIG_FILE": str(home / "rabbitmq.conf"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(home / "enabled_plugins"),
        "RABBITMQ_MNESIA_BASE": str(home / "mnesia"),
        "RABBITMQ_LOG_BASE": str(LOGS),
        "RABBITMQ_LOGS": "-",
        "RABBITMQ_PID_FILE": str(home / "rabbitmq.pid"),
        "RABBITMQ_NODENAME": "devcloud@localhost",
        "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
        "RABBITMQ_NODE_PORT": str(RABBIT["amqp"]),
        "RABBITMQ_DIST_PORT": str(RABBIT["dist"]),
        "RABBITMQ_CTL_DIST_PORT_MIN": str(RABBIT["ctl_min"]),
        "RABBITMQ_CTL_DIST_PORT_MAX": str(RABBIT["ctl_max"]),
        "ERL_EPMD_ADDRESS": "127.0.0.1",
        "ERL_EPMD_PORT": str(RABBIT["epmd"]),
    })


def start_rabbit() -> Proc:
    home = STATE / "rabbitmq"
    (home / "mnesia").mkdir(parents=True, exist_ok=True)
    write(home / "rabbitmq-env.conf", "")
    write(home / "enabled_plugins", "[].\n")
    salt = os.urandom(4)
    digest = hashlib.sha256(salt + RABBIT_PASSWORD.encode()).digest()
    definitions = {
        "users": [{"name": RABBIT_USER, "password_hash": base64.b64encode(salt + digest).decode(),
                   "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": ""}],
        "vhosts": [{"name": name} for name in SITES],
        "permissions": [{"user": RABBIT_USER, "vhost": name, "configure": ".*", "write": ".*", "read": ".*"}
                        for name in SITES],
    }
    write(home / "definitions.json", json.dumps(definitions, indent=1))
    write(home / "rabbitmq.conf", "\n".join([
        f"listeners.tcp.default = 127.0.0.1:{RABBIT['amqp']}",
        "loopback_users = none",
        f"load_definitions = {home / 'definitions.json'}",
        "log.console = true",
        "log.console.level = info",
        "log.file = false",
        "",
    ]))
    return Proc("rabbitmq", ["/usr/lib/rabbitmq/bin/rabbitmq-server"], rabbit_env(), cwd=home)


# --------------------------------------------------------------------------- one site

def connect(name: str, admin: bool):
    import openstack  # pylint: disable=import-outside-toplevel
    site = SITES[name]
    auth = {"auth_url": f"http://127.0.0.1:{site['keystone']}/v3", "user_domain_name": "Default",
            "project_domain_name": "Default"}
    if admin:
        auth.update(username="admin", password=ADMIN_PASSWORD, project_name="admin")
    else:
        auth.update(username=MEMBER_USER, password=MEMBER_PASSWORD, project_name=PROJECT)
    return openstack.connect(auth=auth, region_name=site["region"], identity_api_version="3",
                             interface="public", load_yaml_config=False, load_envvars=False)


def register(name: str) -> None:
    """Projects, users, roles, services and endpoints, all in one process (fast)."""
    site = SITES[name]
    conn = connect(name, admin=True)
    ident = conn.identity
    roles = {role.name: role for role in ident.roles()}
    domain = ident.find_domain("default")

    def project(pname: str, desc: str):
        return ident.find_project(pname, domain_id=domain.id) or ident.create_project(
            name=pname, domain_id=domain.id, description=desc)

    def user(uname: str, password: str, proj, role_names: list[str]):
        obj = ident.find_user(uname, domain_id=domain.id) or ident.create_user(
            name=uname, password=password, domain_id=domain.id, default_project_id=proj.id)
        for role_name in role_names:
            conn.grant_role(roles[role_name].id, user=obj.id, project=proj.id)
        return obj

    service_project = project("service", "OpenStack services")
    dr_project = project(PROJECT, "Disaster recovery project")
    for svc_user in ("glance", "cinder"):
        user(svc_user, SERVICE_PASSWORD, service_project, ["admin", "service"])
    user(MEMBER_USER, MEMBER_PASSWORD, dr_project, ["member", "reader"])
    for stype, sname, url in (("image", "glance", f"http://127.0.0.1:{site['glance']}"),
                              ("block-storage", "cinderv3", f"http://127.0.0.1:{site['cinder']}/v3/%(project_id)s")):
        svc = next((s for s in ident.services() if s.type == stype), None) or ident.create_service(
            name=sname, type=stype, enabled=True)
        existing = {ep.interface for ep in ident.endpoints(service_id=svc.id)}
        for interface in ("public", "internal", "admin"):
            if interface not in existing:
                ident.create_endpoint(service_id=svc.id, interface=interface, url=url, region_id=site["region"])


def cinder_setup(name: str) -> None:
    """Volume types (default and a site-specific one) and the project quotas."""
    site = SITES[name]
    conn = connect(name, admin=True)
    project = conn.identity.find_project(PROJECT, domain_id="default")
    existing = {vtype.name for vtype in conn.block_storage.types()}
    backend = backend_of(name)
    for tname in (default_type(name), site["extra_type"]):
        if tname not in existing:
            conn.block_storage.create_type(name=tname, is_public=True,
                                           extra_specs={"volume_backend_name": backend},
                                           description=f"devcloud {name} type on the {backend.upper()} backend")
    # db sync's __DEFAULT__ type would be a third type at each site (with the same id at both, from
    # the database cache): with default_volume_type set, Cinder lets it go.
    legacy = conn.block_storage.find_type("__DEFAULT__")
    if legacy:
        conn.block_storage.delete_type(legacy)
    resp = conn.block_storage.put(f"/os-quota-sets/{project.id}", json={"quota_set": dict(QUOTAS)})
    if resp.status_code >= 300:
        raise DevcloudError(f"{name}-cinder-api", f"setting quotas failed: {resp.status_code} {resp.text}",
                            LOGS / f"{name}-cinder-api.log")


def pools(name: str) -> list:
    conn = connect(name, admin=True)
    try:
        return list(conn.block_storage.backend_pools())
    finally:
        conn.close()


def install_sqlite_hook() -> None:
    """Write the BEGIN IMMEDIATE hook (see SQLITE_HOOK) into the devcloud venv, loaded at interpreter start."""
    site_packages = Path(sysconfig.get_paths(vars={"base": str(VENV), "platbase": str(VENV)})["purelib"])
    shutil.copyfile(SQLITE_HOOK, site_packages / f"{SQLITE_HOOK_MODULE}.py")
    write(site_packages / f"{SQLITE_HOOK_MODULE}.pth", f"import {SQLITE_HOOK_MODULE}\n")


def db_cache() -> Path:
    """Freshly synced, still empty databases, kept across up/down until the pinned versions change."""
    pins = (ROOT / "tests" / "devcloud" / "requirements.txt").read_bytes()
    return DC / "cache" / f"db-{hashlib.sha256(pins).hexdigest()[:16]}"


def databases(name: str, env: dict) -> None:
    """The three sqlite databases: copied from the cache, or db_sync'ed side by side (and cached)."""
    base = site_dirs(name)["base"]
    sync_or_copy_databases(name, env)
    for svc in DB_SERVICES:
        database = sqlite3.connect(base / f"{svc}.sqlite")
        database.execute("PRAGMA journal_mode=WAL")
        database.close()


def sync_or_copy_databases(name: str, env: dict) -> None:
    base = site_dirs(name)["base"]
    cache = db_cache()
    if all((cache / f"{svc}.sqlite").exists() for svc in DB_SERVICES):
        for svc in DB_SERVICES:
            shutil.copyfile(cache / f"{svc}.sqlite", base / f"{svc}.sqlite")
        return
    dirs = site_dirs(name)
    venv_bin = VENV / "bin"
    sync_cmds = {
        "keystone": [str(venv_bin / "keystone-manage"), "--config-file", str(dirs["keystone_conf"]), "db_sync"],
        "glance": [str(venv_bin / "glance-manage"), "--config-dir", str(dirs["glance_dir"]), "db_sync"],
        "cinder": [str(venv_bin / "cinder-manage"), "--config-file", str(dirs["cinder_conf"]), "db", "sync"],
    }
    errors: list[DevcloudError] = []

    def sync(svc: str) -> None:
        try:
            run(f"{name}-{svc}", sync_cmds[svc], env)
        except DevcloudError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=sync, args=(svc,)) for svc in DB_SERVICES]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    if name == next(iter(SITES)):
        partial = cache.with_name(cache.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        for svc in DB_SERVICES:
            shutil.copyfile(base / f"{svc}.sqlite", partial / f"{svc}.sqlite")
        shutil.rmtree(cache, ignore_errors=True)
        partial.rename(cache)


def bring_up_site(name: str, rabbit_ready: threading.Event, rabbit_failed: list,
                  ceph_ready: threading.Event | None = None, ceph_failed: list | None = None) -> None:
    site = SITES[name]
    dirs = site_dirs(name)
    venv_bin = VENV / "bin"
    env = service_env()
    started: list[Proc] = []

    configure_site(name)
    if backend_of(name) == "nfs":
        mount_share(name)

    databases(name, env)
    # Fernet keys for tokens and credentials, as keystone-manage fernet_setup/credential_setup write
    # them (0 staged, 1 primary), without two more keystone-manage runs.
    for folder in (dirs["base"] / "keystone-fernet", dirs["base"] / "keystone-credential"):
        folder.chmod(0o700)
        for index in ("0", "1"):
            (folder / index).write_bytes(base64.urlsafe_b64encode(os.urandom(32)))
            (folder / index).chmod(0o600)
    keystone_url = f"http://127.0.0.1:{site['keystone']}/v3"
    run(f"{name}-keystone", [
        str(venv_bin / "keystone-manage"), "--config-file", str(dirs["keystone_conf"]),
        "bootstrap", "--bootstrap-password", ADMIN_PASSWORD, "--bootstrap-region-id", site["region"],
        "--bootstrap-admin-url", keystone_url, "--bootstrap-internal-url", keystone_url,
        "--bootstrap-public-url", keystone_url], env)

    uwsgi = str(venv_bin / "uwsgi")
    keystone = Proc(f"{name}-keystone", [uwsgi, "--ini", str(dirs["etc"] / "keystone-uwsgi.ini")], env)
    started.append(keystone)
    if backend_of(name) == "rbd":
        # Glance's and Cinder's RBD clients need the cluster (and the rados/rbd bindings in the venv).
        deadline = time.monotonic() + CEPH_TIMEOUT
        while not ceph_ready.wait(0.5):
            if ceph_failed:
                raise DevcloudError(f"{name}-glance", "Ceph failed to start", LOGS / "ceph-setup.log")
            if time.monotonic() > deadline:
                raise DevcloudError("ceph", f"not ready after {CEPH_TIMEOUT} s", LOGS / "ceph-setup.log")
    glance = Proc(f"{name}-glance", [uwsgi, "--ini", str(dirs["etc"] / "glance-uwsgi.ini")], env)
    started.append(glance)
    wait_for(f"{name}-keystone", lambda: http_answers(site["keystone"]), HTTP_TIMEOUT, [keystone], keystone.log)
    register(name)

    deadline = time.monotonic() + HTTP_TIMEOUT
    while not rabbit_ready.wait(0.5):
        if rabbit_failed:
            raise DevcloudError(f"{name}-cinder", "RabbitMQ failed to start", LOGS / "rabbitmq.log")
        if time.monotonic() > deadline:
            raise DevcloudError("rabbitmq", f"not ready after {HTTP_TIMEOUT} s", LOGS / "rabbitmq.log")
    cinder_bin = {svc: str(venv_bin / f"cinder-{svc}") for svc in ("api", "scheduler", "volume")}
    cinder = {svc: Proc(f"{name}-cinder-{svc}", [cinder_bin[svc], "--config-file", str(dirs["cinder_conf"])], env)
              for svc in ("api", "scheduler")}
    started += list(cinder.values())
    wait_for(f"{name}-glance", lambda: http_answers(site["glance"]), HTTP_TIMEOUT, [glance], glance.log)
    wait_for(f"{name}-cinder-api", lambda: http_answers(site["cinder"]), HTTP_TIMEOUT, [cinder["api"]],
             cinder["api"].log)
    # cinder-volume rewrites rows of the shared sqlite file as it starts; sqlite refuses at once (no busy
    # wait) a write that races another service's transaction, so it starts after the API has settled.
    cinder["volume"] = Proc(f"{name}-cinder-volume", [cinder_bin["volume"], "--config-file", str(dirs["cinder_conf"])], env)
    started.append(cinder["volume"])
    wait_for(f"{name}-cinder-api", lambda: cinder_setup(name) or True, 60, [cinder["api"]], cinder["api"].log,
             interval=2)
    wait_for(f"{name}-cinder-volume (no backend pool reported)", lambda: pools(name), POOLS_TIMEOUT,
             started, cinder["volume"].log, interval=2)


# --------------------------------------------------------------------------- outputs

def write_outputs() -> None:
    import yaml  # pylint: disable=import-outside-toplevel
    clouds = {}
    sites = {}
    for name, site in SITES.items():
        auth_url = f"http://127.0.0.1:{site['keystone']}/v3"
        common = {"region_name": site["region"], "interface": "public", "identity_api_version": 3}
        clouds[name] = {"auth": {"auth_url": auth_url, "username": MEMBER_USER, "password": MEMBER_PASSWORD,
                                 "project_name": PROJECT, "user_domain_name": "Default",
                                 "project_domain_name": "Default"}, **common}
        clouds[f"{name}-admin"] = {"auth": {"auth_url": auth_url, "username": "admin", "password": ADMIN_PASSWORD,
                                            "project_name": "admin", "user_domain_name": "Default",
                                            "project_domain_name": "Default"}, **common}
        sites[name] = {
            "cloud": name,
            "admin_cloud": f"{name}-admin",
            "region": site["region"],
            "project": PROJECT,
            "member_user": MEMBER_USER,
            "ports": {"keystone": site["keystone"], "glance": site["glance"], "cinder": site["cinder"]},
            "endpoints": {"identity": auth_url, "image": f"http://127.0.0.1:{site['glance']}",
                          "block_storage": f"http://127.0.0.1:{site['cinder']}/v3"},
            "quotas": dict(QUOTAS),
            "volume_types": {"default": default_type(name), "extra": site["extra_type"],
                             "all": [default_type(name), site["extra_type"]]},
            # nfs: Cinder's NfsDriver + Glance's file store; rbd: Cinder's RBDDriver + Glance's RBD store.
            "backend": backend_of(name),
            "volume_backend": backend_of(name),
            "image_store": "rbd" if backend_of(name) == "rbd" else "file",
            **({"share_mount": str(mount_point(name)), "share_image": str(site_dirs(name)["share_img"])}
               if backend_of(name) == "nfs" else {
                "ceph": {"conf": str(ceph_node.CONF), "volume_pool": "volumes", "image_pool": "images",
                         "cinder_user": ceph_node.CINDER_USER, "glance_user": "glance"}}),
            "logs": {svc: str(LOGS / f"{name}-{svc}.log")
                     for svc in ("keystone", "glance", "cinder-api", "cinder-scheduler", "cinder-volume")},
        }
    CLOUDS_YAML.write_text(yaml.safe_dump({"clouds": clouds}, sort_keys=False))
    CLOUDS_YAML.chmod(0o600)
    info = {
        "clouds_yaml": str(CLOUDS_YAML),
        "bank_yml": str(DC / "bank.yml"),
        "logs_dir": str(LOGS),
        "rabbitmq": {"port": RABBIT["amqp"], "vhosts": list(SITES), "log": str(LOGS / "rabbitmq.log")},
        "ceph": ceph_node.info(),
        "sites": sites,
    }
    SITES_YML.write_text("# Written by tests/devcloud/devcloud.py up: what the tests need to know.\n"
                         + yaml.safe_dump(info, sort_keys=False))


# --------------------------------------------------------------------------- commands

def expected_procs() -> list[str]:
    names = ["rabbitmq"]
    for name in SITES:
        names += [f"{name}-{svc}" for svc in ("keystone", "glance", "cinder-api", "cinder-scheduler", "cinder-volume")]
    return names


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][0] != "Z"
    except OSError:
        return False


def cmd_running() -> int:
    for name in expected_procs():
        pidfile = PIDS / f"{name}.pid"
        if not pidfile.exists() or not pid_alive(int(pidfile.read_text())):
            print(f"devcloud: {name} is not running")
            return 1
    if not ceph_node.running():
        print("devcloud: ceph is not running")
        return 1
    for name, wanted in wanted_backends().items():
        if backend_of(name) != wanted:
            print(f"devcloud: {name} runs on {backend_of(name)}, DEVCLOUD_SITE_B_BACKEND asks for {wanted}")
            return 1
    return 0


def cmd_check() -> int:
    try:
        ceph_node.check()
    except ceph_node.CephError as exc:
        raise DevcloudError(exc.service, exc.message, exc.log) from exc
    for name, site in SITES.items():
        for svc in ("keystone", "glance", "cinder"):
            port = site[svc]
            log_file = LOGS / f"{name}-{svc}{'-api' if svc == 'cinder' else ''}.log"
            try:
                if not http_answers(port):
                    raise DevcloudError(f"{name}-{svc}", f"port {port} answers with a server error", log_file)
            except OSError as exc:
                raise DevcloudError(f"{name}-{svc}", f"port {port} does not answer: {exc}", log_file) from exc
        if not pools(name):
            raise DevcloudError(f"{name}-cinder-volume", "no backend pool reported", LOGS / f"{name}-cinder-volume.log")
    for path in (CLOUDS_YAML, SITES_YML):
        if not path.exists():
            raise DevcloudError("devcloud", f"{path} is missing")
    return 0


def cmd_up() -> int:
    for path in (STATE, LOGS, PIDS, BIN):
        path.mkdir(parents=True, exist_ok=True)
    stub = BIN / "mount.nfs"
    write(stub, "#!/bin/sh\n# devcloud: the NFS shares are loop-mounted ext4; the NFS driver only checks this exists.\nexit 1\n")
    stub.chmod(0o755)
    started = time.monotonic()
    BACKENDS_FILE.write_text(json.dumps(wanted_backends()) + "\n")
    install_sqlite_hook()
    rabbit = start_rabbit()
    rabbit_ready = threading.Event()
    rabbit_failed: list = []
    ceph_ready = threading.Event()
    ceph_failed: list = []
    failures: list[BaseException] = []

    def ceph_thread() -> None:
        try:
            ceph_node.link_bindings(VENV)
            ceph_node.up()
            ceph_ready.set()
            log(f"ceph ready ({time.monotonic() - started:.0f} s)")
        except ceph_node.CephError as exc:
            ceph_failed.append(exc)
            failures.append(DevcloudError(exc.service, exc.message, exc.log))
        except BaseException as exc:  # pylint: disable=broad-exception-caught
            ceph_failed.append(exc)
            failures.append(exc)

    def rabbit_wait() -> None:
        try:
            wait_for("rabbitmq", lambda: tcp_answers(RABBIT["amqp"]), HTTP_TIMEOUT, [rabbit], rabbit.log)
            rabbit_ready.set()
            log(f"rabbitmq ready ({time.monotonic() - started:.0f} s)")
        except BaseException as exc:  # pylint: disable=broad-exception-caught
            rabbit_failed.append(exc)
            failures.append(exc)

    def site_thread(name: str) -> None:
        try:
            bring_up_site(name, rabbit_ready, rabbit_failed, ceph_ready, ceph_failed)
            log(f"{name} ready ({time.monotonic() - started:.0f} s)")
        except BaseException as exc:  # pylint: disable=broad-exception-caught
            failures.append(exc)

    threads = [threading.Thread(target=rabbit_wait), threading.Thread(target=ceph_thread)]
    threads += [threading.Thread(target=site_thread, args=(n,)) for n in SITES]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        errors = [f for f in failures if isinstance(f, DevcloudError)]
        raise errors[0] if errors else failures[0]
    write_outputs()
    cmd_check()
    log(f"both sites ready in {time.monotonic() - started:.0f} s (site B on {backend_of('site-b')}); clouds: {CLOUDS_YAML}; "
        f"sites: {SITES_YML}")
    return 0


def devcloud_pids() -> set[int]:
    """Processes started by the devcloud: pid files' process groups, plus anything naming our directory."""
    pids: set[int] = set()
    groups: set[int] = set()
    if PIDS.exists():
        for pidfile in PIDS.glob("*.pid"):
            try:
                groups.add(int(pidfile.read_text()))
            except ValueError:
                continue
    # The bank server (tests/servers) keeps its files in .devcloud/ too: match only our state and venv.
    markers = (str(STATE).encode() + b"/", str(VENV).encode() + b"/")
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        pid = int(entry.name)
        try:
            cmdline = (entry / "cmdline").read_bytes()
            if os.getpgid(pid) in groups or any(marker in cmdline for marker in markers):
                pids.add(pid)
        except OSError:
            continue
    return pids


def cmd_restart_site_b() -> int:
    """Site B alone, anew, on the backend DEVCLOUD_SITE_B_BACKEND asks for; site A, RabbitMQ, Ceph and
    the bank keep running (site B's volumes, images and projects are gone: a new Keystone, new databases)."""
    if cmd_running_quiet("site-a") or not ceph_node.running():
        raise DevcloudError("devcloud", "restart-site-b needs a running devcloud: run `make devcloud-up`")
    restart_site("site-b", wanted_backends()["site-b"])
    write_outputs()
    cmd_check()
    return 0


def restart_site(name: str, backend: str) -> None:
    started = time.monotonic()
    groups = {int(pidfile.read_text()) for pidfile in PIDS.glob(f"{name}-*.pid")}
    marker = (str(STATE / name) + "/").encode()
    for sig, grace in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        pids = {pid for pid in devcloud_pids() if pid_alive(pid) and of_site(pid, groups, marker)}
        for pid in pids:
            try:
                os.kill(pid, sig)
            except OSError:
                pass
        deadline = time.monotonic() + grace
        while pids and time.monotonic() < deadline:
            pids = {pid for pid in pids if pid_alive(pid)}
            time.sleep(0.2)
    for target in [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()
                   if line.split()[1].startswith(str(STATE / name) + "/")]:
        subprocess.run(["umount", "-l", target], check=False, timeout=30)
    img = site_dirs(name)["share_img"]
    out = subprocess.run(["losetup", "-j", str(img)], capture_output=True, text=True, check=False).stdout
    for line in out.splitlines():
        subprocess.run(["losetup", "-d", line.split(":")[0]], check=False)
    for pidfile in PIDS.glob(f"{name}-*.pid"):
        pidfile.unlink()
    shutil.rmtree(STATE / name, ignore_errors=True)
    recorded = {site: backend_of(site) for site in SITES}
    BACKENDS_FILE.write_text(json.dumps({**recorded, name: backend}) + "\n")
    for old in LOGS.glob(f"{name}-*.log"):
        old.unlink()
    ceph_node.link_bindings(VENV)
    ready = threading.Event()
    ready.set()
    bring_up_site(name, ready, [], ready, [])
    log(f"{name} restarted on {backend_of(name)} in {time.monotonic() - started:.0f} s")


def of_site(pid: int, groups: set[int], marker: bytes) -> bool:
    try:
        return os.getpgid(pid) in groups or marker in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def cmd_running_quiet(name: str) -> int:
    """0 when every process of one site runs."""
    for svc in ("keystone", "glance", "cinder-api", "cinder-scheduler", "cinder-volume"):
        pidfile = PIDS / f"{name}-{svc}.pid"
        if not pidfile.exists() or not pid_alive(int(pidfile.read_text())):
            return 1
    return 0


def cmd_down() -> int:
    started = time.monotonic()
    # SIGTERM to every process group (RabbitMQ 3.10 stops cleanly on SIGTERM), SIGKILL what is left.
    stopped = 0
    # A short grace: oslo.service would wait up to graceful_shutdown_timeout (60 s) for cinder-volume.
    for sig, grace in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        pids = devcloud_pids()
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
    if shutil.which("epmd"):
        subprocess.run(["epmd", "-kill"], env=rabbit_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=10, check=False)
    leftovers = {pid for pid in devcloud_pids() if pid_alive(pid)}
    # Unmount every share under our state directory, then free its loop device.
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()
              if line.split()[1].startswith(str(STATE) + "/")]
    for target in sorted(mounts, reverse=True):
        subprocess.run(["umount", "-l", target], check=False, timeout=30)
    if STATE.exists():
        for img in STATE.glob("*/nfs-share.img"):
            out = subprocess.run(["losetup", "-j", str(img)], capture_output=True, text=True, check=False).stdout
            for line in out.splitlines():
                subprocess.run(["losetup", "-d", line.split(":")[0]], check=False)
    problems = []
    # Ceph after the services that are its clients (site B's Cinder and Glance).
    if not ceph_node.down():
        problems.append("ceph left something behind (see above)")
    if leftovers:
        problems.append(f"processes still alive: {sorted(leftovers)}")
    still_mounted = [line for line in Path("/proc/mounts").read_text().splitlines() if str(STATE) in line]
    if still_mounted:
        problems.append(f"still mounted: {still_mounted}")
    if not problems:
        shutil.rmtree(STATE, ignore_errors=True)
        for path in (CLOUDS_YAML, SITES_YML):
            path.unlink(missing_ok=True)
    for problem in problems:
        print(f"devcloud: down: {problem}", file=sys.stderr)
    if stopped or mounts:
        log(f"stopped {stopped} processes, unmounted {len(mounts)} shares ({time.monotonic() - started:.1f} s)")
    return 1 if problems else 0


def pid_groups(folder: Path) -> set[int]:
    groups = set()
    for pidfile in folder.glob("*.pid") if folder.exists() else []:
        try:
            groups.add(int(pidfile.read_text().split()[0]))
        except (ValueError, IndexError, OSError):
            continue
    return groups


def cmd_rss() -> int:
    """Sums VmRSS of the devcloud's processes (pid-file process groups, which hold RabbitMQ's Erlang
    helpers too, and anything naming our directory) and of the bank server's (.devcloud/bank-pids
    process groups). epmd (daemonized, about 1.6 MiB) is not counted."""
    ours = pid_groups(PIDS)
    bank = pid_groups(DC / "bank-pids")
    marker = str(DC).encode() + b"/"
    totals = {"devcloud": 0, "ceph": 0, "bank": 0}
    ceph_marker = str(ceph_node.CONF).encode()
    rows = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            pgid = os.getpgid(int(entry.name))
            cmdline = (entry / "cmdline").read_bytes()
            status = (entry / "status").read_text()
        except OSError:
            continue
        if pgid in bank or b"swift-venv" in cmdline:
            kind = "bank"
        elif ceph_marker in cmdline:
            kind = "ceph"
        elif pgid in ours or marker in cmdline:
            kind = "devcloud"
        else:
            continue
        match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
        if match:
            kib = int(match.group(1))
            totals[kind] += kib
            rows.append((kib, entry.name, kind, cmdline.replace(b"\0", b" ").decode(errors="replace")[:100]))
    for kib, pid, kind, cmd in sorted(rows, reverse=True):
        print(f"{kib / 1024:8.1f} MiB {pid:>7} {kind:8} {cmd}")
    print(f"devcloud (RabbitMQ + both sites): {totals['devcloud'] / 1024:.0f} MiB; ceph: {totals['ceph'] / 1024:.0f} MiB; "
          f"bank: {totals['bank'] / 1024:.0f} MiB; "
          f"total: {sum(totals.values()) / 1024:.0f} MiB RSS in {len(rows)} processes")
    return 0


# An oslo.log error line that opens a message ("... ERROR cinder.volume.manager [req-...] Failed ..."),
# not one of the traceback lines that follow it.
ERROR_LINE = re.compile(r"^\S+ \S+ \d+ (ERROR|CRITICAL) \S+ \[")
REQUEST_CONTEXT = re.compile(r"\[(None )?req-[^\]]*\] ")


def cmd_errors() -> int:
    """A digest of every service's logged errors: printed by `make test` when a test fails, because CI
    keeps only the output, not .devcloud/logs/."""
    for log_path in sorted(LOGS.glob("site-[ab]-*.log")):
        messages = [line.rstrip() for line in log_path.read_text(errors="replace").splitlines() if ERROR_LINE.match(line)]
        if not messages:
            continue
        print(f"--- {log_path.name}: {len(messages)} error(s); the last ones:")
        for message in messages[-5:]:
            print(f"  {REQUEST_CONTEXT.sub('', message)[:400]}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["up", "check", "running", "down", "rss", "errors", "restart-site-b"])
    args = parser.parse_args()
    commands = {"up": cmd_up, "check": cmd_check, "running": cmd_running, "down": cmd_down, "rss": cmd_rss,
                "errors": cmd_errors, "restart-site-b": cmd_restart_site_b}
    try:
        return commands[args.command]()
    except DevcloudError as exc:
        print(f"devcloud: FAILED: {exc.service}: {exc.message}", file=sys.stderr)
        if exc.log:
            print(f"devcloud: log: {exc.log}\n--- last lines of {exc.log} ---\n{tail(exc.log)}\n---", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
