#!/usr/bin/env bash
# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# `make bench-concurrency`: many volumes at once through the volume_backup and volume_restore roles
# (docs/benchmarks.md, "Many volumes at once"). Never part of `make test`. Needs the devcloud up
# (site A only; it never starts or stops the shared services) and root (it writes the source
# volumes' files on site A's NFS share). Options: BENCH_CONCURRENCY_LEVELS (1,2,4),
# BENCH_CONCURRENCY_VOLUMES (8), BENCH_CONCURRENCY_POLL (2 s); see bench_concurrency.py.
set -euo pipefail
cd "$(dirname "$0")/../../.."
root=$PWD

if [ "$(id -u)" -ne 0 ]; then
    echo "bench-concurrency: must run as root (it writes the volumes' files on site A's NFS share)" >&2
    exit 1
fi
if [ ! -f .devcloud/sites.yml ]; then
    echo "bench-concurrency: the devcloud is not up: run \`make devcloud-up\` first" >&2
    exit 1
fi
# The roles are imported through the link setup-venv.sh makes.
mkdir -p .cache/collections/ansible_collections/openstack_dr
ln -sfn "$root" .cache/collections/ansible_collections/openstack_dr/bank
exec "$root/.venv/bin/python" tests/bench/concurrency/bench_concurrency.py "$@"
