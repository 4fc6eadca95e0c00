#!/usr/bin/env bash
# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# `make bench-object-lock`: the cost of immutability (docs/benchmarks.md, Immutable banks). Never part of
# `make test`. Needs the devcloud's Ceph Object Gateway (`make devcloud-up`, then `make bank-up`).
# Arguments (BENCH_OBJECT_LOCK_ARGS from make) go to bench_object_lock.py, e.g. --size-gib 4.
set -euo pipefail
cd "$(dirname "$0")/../../.."
root=$PWD
mkdir -p .cache/collections/ansible_collections/openstack_dr
ln -sfn "$root" .cache/collections/ansible_collections/openstack_dr/bank
export PYTHONPATH="$root/.cache/collections${PYTHONPATH:+:$PYTHONPATH}"
# shellcheck disable=SC2086  # BENCH_OBJECT_LOCK_ARGS is a list of options on purpose
exec "$root/.venv/bin/python" tests/bench/object_lock/bench_object_lock.py ${BENCH_OBJECT_LOCK_ARGS:-} "$@"
