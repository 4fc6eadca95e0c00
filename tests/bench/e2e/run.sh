#!/usr/bin/env bash
# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# `make bench-e2e`: the end-to-end race of issue 10 (tests/bench/e2e/bench_e2e.py). Never part of
# `make test`. Brings the devcloud and the bank server up if they are not (idempotent; never stops
# them: they are shared), installs python-swiftclient into the devcloud venv (Cinder's Swift backup
# driver needs it), then runs the race. Options: BENCH_E2E_RUNS, BENCH_E2E_VOLUMES,
# BENCH_E2E_CONTENDERS, BENCH_E2E_OPERATIONS (see bench_e2e.py), DEVCLOUD_SITE_B_BACKEND (nfs, the
# default, or rbd).
set -euo pipefail
cd "$(dirname "$0")/../../.."
root=$PWD

if [ "$(id -u)" -ne 0 ]; then
    echo "bench-e2e: must run as root (it writes the source volumes' files on site A's NFS share)" >&2
    exit 1
fi
# Site B's backend: nfs (the default here) or rbd, asked for explicitly (DEVCLOUD_SITE_B_BACKEND=rbd).
# A running devcloud is never switched: when it runs site B on another backend (recorded by
# tests/devcloud/devcloud.py up in .devcloud/state/backends.json) the race refuses to start.
export DEVCLOUD_SITE_B_BACKEND=${DEVCLOUD_SITE_B_BACKEND:-nfs}
case "$DEVCLOUD_SITE_B_BACKEND" in
    nfs|rbd) ;;
    *) echo "bench-e2e: DEVCLOUD_SITE_B_BACKEND must be nfs or rbd, not $DEVCLOUD_SITE_B_BACKEND" >&2; exit 1 ;;
esac
dcpy=$root/.devcloud/venv/bin/python
backends=$root/.devcloud/state/backends.json
if [ -f "$backends" ]; then
    running=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1])).get("site-b", ""))' "$backends" 2>/dev/null || true)
    if [ -n "$running" ] && [ "$running" != "$DEVCLOUD_SITE_B_BACKEND" ]; then
        echo "bench-e2e: the devcloud runs site B on $running ($backends), this race asks for $DEVCLOUD_SITE_B_BACKEND" >&2
        echo "bench-e2e: not switching a devcloud others may use. Race on $running (DEVCLOUD_SITE_B_BACKEND=$running)," >&2
        echo "bench-e2e: or switch site B yourself when nobody uses it (docs/devcloud.md, restart-site-b) and run again" >&2
        exit 1
    fi
fi
# Running on the asked backend, or not running: `up` only checks a running devcloud (and the bank),
# and starts a stopped one on the asked backend.
make --no-print-directory devcloud-up
if ! "$dcpy" -c "import swiftclient" 2>/dev/null; then
    echo "bench-e2e: installing python-swiftclient into the devcloud venv"
    "$dcpy" -m pip install --quiet --disable-pip-version-check python-swiftclient
fi
# The collection is imported through the link setup-venv.sh makes.
mkdir -p .cache/collections/ansible_collections/openstack_dr
ln -sfn "$root" .cache/collections/ansible_collections/openstack_dr/bank

cd tests/bench/e2e
exec "$root/.venv/bin/python" bench_e2e.py "$@"
