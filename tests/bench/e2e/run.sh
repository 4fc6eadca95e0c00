#!/usr/bin/env bash
# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# `make bench-e2e`: the end-to-end race of issue 10 (tests/bench/e2e/bench_e2e.py). Never part of
# `make test`. Brings the devcloud and the bank server up if they are not (idempotent; never stops
# them: they are shared), installs python-swiftclient into the devcloud venv (Cinder's Swift backup
# driver needs it), then runs the race. Options: BENCH_E2E_RUNS, BENCH_E2E_VOLUMES,
# BENCH_E2E_CONTENDERS, BENCH_E2E_OPERATIONS (see bench_e2e.py).
set -euo pipefail
cd "$(dirname "$0")/../../.."
root=$PWD

if [ "$(id -u)" -ne 0 ]; then
    echo "bench-e2e: must run as root (it writes the volumes' files on the devcloud's NFS shares)" >&2
    exit 1
fi
# The race checks restored bytes on site B's NFS share and counts Glance's bytes in its file store:
# site B runs on NFS here (a devcloud on RBD is restarted on NFS).
export DEVCLOUD_SITE_B_BACKEND=${DEVCLOUD_SITE_B_BACKEND:-nfs}
if [ "$DEVCLOUD_SITE_B_BACKEND" != nfs ]; then
    echo "bench-e2e: site B must run on NFS (DEVCLOUD_SITE_B_BACKEND=nfs), not $DEVCLOUD_SITE_B_BACKEND" >&2
    exit 1
fi
make --no-print-directory devcloud-up
dcpy=$root/.devcloud/venv/bin/python
if ! "$dcpy" -c "import swiftclient" 2>/dev/null; then
    echo "bench-e2e: installing python-swiftclient into the devcloud venv"
    "$dcpy" -m pip install --quiet --disable-pip-version-check python-swiftclient
fi
# The collection is imported through the link setup-venv.sh makes.
mkdir -p .cache/collections/ansible_collections/openstack_dr
ln -sfn "$root" .cache/collections/ansible_collections/openstack_dr/bank

cd tests/bench/e2e
exec "$root/.venv/bin/python" bench_e2e.py "$@"
