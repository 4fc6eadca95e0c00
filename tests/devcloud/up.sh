#!/usr/bin/env bash
# `make devcloud-up`: two real OpenStack sites (Keystone, Glance, Cinder; site A on NFS, site B on Ceph RBD
# or NFS: DEVCLOUD_SITE_B_BACKEND), RabbitMQ and a single-node Ceph on 127.0.0.1, then the bank server. Installs what it needs on a fresh machine. Idempotent: when
# everything already runs and answers, it only checks. See docs/devcloud.md.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
dc="$root/.devcloud"
venv="$dc/venv"
here="$root/tests/devcloud"
start=$(date +%s)

say() { echo "devcloud: $*"; }

if [ "$(id -u)" -ne 0 ]; then
    say "FAILED: must run as root (loop mounts of the Cinder NFS shares need it)" >&2
    exit 1
fi
case "${DEVCLOUD_SITE_B_BACKEND:-}" in
    "" | rbd | nfs) ;;
    *) say "FAILED: DEVCLOUD_SITE_B_BACKEND must be rbd or nfs, not '$DEVCLOUD_SITE_B_BACKEND'" >&2; exit 1 ;;
esac
mkdir -p "$dc/logs"
# One up or down at a time in this checkout (several people and test runs may share it).
exec 9>"$dc/.lock"
if ! flock -w 600 9; then
    say "FAILED: another devcloud up/down still holds $dc/.lock after 600 s" >&2
    exit 1
fi
export DEVCLOUD_LOCK_HELD=1

# Already up and healthy: nothing to do but prove it.
if [ -x "$venv/bin/python" ] && [ -f "$venv/.installed" ] && "$venv/bin/python" "$here/devcloud.py" running >/dev/null 2>&1; then
    say "already running; checking"
    "$venv/bin/python" "$here/devcloud.py" check
    say "already up ($(($(date +%s) - start)) s)"
else
    # Half up (a crash, a failed up): clean first.
    "$here/down.sh" --quiet || true

    # Debian packages, installed once per machine: the one list of them. Ceph is pinned to the release
    # verified here (Debian 12's 16.2.15, any Debian revision of it); qemu-block-extra gives qemu-img
    # its rbd: driver; python3-rados/-rbd are linked into the venv (tests/devcloud/ceph.py).
    ceph_version='16.2.15+ds-0+deb12u*'
    packages=(rabbitmq-server qemu-utils e2fsprogs util-linux mount procps qemu-block-extra
              "ceph-mon=$ceph_version" "ceph-osd=$ceph_version" "ceph-mgr=$ceph_version" "radosgw=$ceph_version"
              "ceph-common=$ceph_version" "python3-rados=$ceph_version" "python3-rbd=$ceph_version")
    missing=()
    for spec in "${packages[@]}"; do
        pkg="${spec%%=*}"
        version='*'
        [ "$spec" = "$pkg" ] || version="${spec#*=}"
        # shellcheck disable=SC2254  # $version is a pattern
        case "$(dpkg-query -W -f='${Status} ${Version}' "$pkg" 2>/dev/null)" in
            "install ok installed "$version) ;;
            *) missing+=("$spec") ;;
        esac
    done
    apt_pid=""
    if [ "${#missing[@]}" -gt 0 ]; then
        # In the background, side by side with the pip install below.
        say "installing Debian packages: ${missing[*]}"
        # policy-rc.d keeps the package's own RabbitMQ from starting where the machine has one; we start ours.
        (
            t0=$(date +%s)
            set -e
            apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
            echo "apt: $(($(date +%s) - t0)) s"
        ) >"$dc/logs/apt.log" 2>&1 &
        apt_pid=$!
    fi

    # The OpenStack services, pinned, in their own venv; reinstalled when the pins change.
    want="$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)"
    if [ ! -f "$venv/.installed" ] || [ "$(cat "$venv/.installed")" != "$want" ]; then
        say "installing the OpenStack services into $venv (pinned: tests/devcloud/requirements.txt)"
        t0=$(date +%s)
        rm -rf "$venv"
        python3.11 -m venv "$venv" 2>/dev/null || python3 -m venv "$venv"
        # uWSGI is the one package compiled from source (about half a minute): build it beside the
        # install of the other pins (it has no dependencies; they share no files).
        grep -vi '^uwsgi==' "$here/requirements.txt" >"$dc/requirements-without-uwsgi.txt"
        "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps "$(grep -i '^uwsgi==' "$here/requirements.txt")" \
            >"$dc/logs/pip-uwsgi.log" 2>&1 &
        uwsgi_pid=$!
        if ! "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$dc/requirements-without-uwsgi.txt" >"$dc/logs/pip.log" 2>&1; then
            say "FAILED: pip install; log: $dc/logs/pip.log" >&2
            grep -v "^WARNING: Location" "$dc/logs/pip.log" | tail -20 >&2
            exit 1
        fi
        if ! wait "$uwsgi_pid" || [ ! -x "$venv/bin/uwsgi" ]; then
            say "FAILED: pip install uWSGI; log: $dc/logs/pip-uwsgi.log" >&2
            grep -v "^WARNING: Location" "$dc/logs/pip-uwsgi.log" | tail -20 >&2
            exit 1
        fi
        "$venv/bin/python" -W ignore -c "import keystone, glance, cinder, openstack, yaml" 2>/dev/null \
            || { say "FAILED: the venv does not import the services" >&2; exit 1; }
        echo "$want" >"$venv/.installed"
        say "venv installed ($(($(date +%s) - t0)) s)"
    fi

    if [ -n "$apt_pid" ]; then
        if ! wait "$apt_pid"; then
            say "FAILED: apt-get update/install; log: $dc/logs/apt.log" >&2
            tail -20 "$dc/logs/apt.log" >&2
            exit 1
        fi
        say "Debian packages installed ($(tail -1 "$dc/logs/apt.log"))"
    fi

    # Fresh logs for a fresh start: only ours (the bank server writes its own logs here too).
    rm -f "$dc/logs"/rabbitmq.log "$dc/logs"/erl_crash.dump "$dc/logs"/devcloud@localhost*.log "$dc/logs"/site-[ab]-*.log
    # Two tries: on a loaded machine sqlite can still refuse one service's start ("database is locked").
    attempt=1
    until "$venv/bin/python" "$here/devcloud.py" up; do
        if [ "$attempt" -ge 2 ]; then
            say "FAILED after $(($(date +%s) - start)) s; cleaning up (logs stay in $dc/logs)" >&2
            "$here/down.sh" --quiet || true
            exit 1
        fi
        say "start failed (attempt $attempt); cleaning up and trying once more" >&2
        "$here/down.sh" --quiet || true
        mkdir -p "$dc/logs/attempt-$attempt"
        mv "$dc/logs"/site-[ab]-*.log "$dc/logs/attempt-$attempt/" 2>/dev/null || true
        attempt=$((attempt + 1))
    done
    say "both sites up ($(($(date +%s) - start)) s)"
fi

if [ -f "$root/tests/servers/bank_servers.py" ]; then
    make --no-print-directory -C "$root" bank-up
else
    say "tests/servers/bank_servers.py does not exist yet: bank server skipped"
fi
say "ready in $(($(date +%s) - start)) s: export OS_CLIENT_CONFIG_FILE=$dc/clouds.yaml; details in $dc/sites.yml"
