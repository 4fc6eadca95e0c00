#!/usr/bin/env bash
# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# `make bench-scale`: the scale figures of docs/benchmarks.md (Scale). Never part of `make test`.
# Needs no service: file banks under .cache/bench/scale (removed at the end) and simulated banks.
# Arguments (BENCH_SCALE_ARGS from make) go to bench_scale.py, e.g. --file-banks 0,100000 --only backup.
set -euo pipefail
cd "$(dirname "$0")/../../.."
root=$PWD
# The collection is imported through the symlink farm `make venv` made.
mkdir -p .cache/collections/ansible_collections/openstack_dr
ln -sfn "$root" .cache/collections/ansible_collections/openstack_dr/bank
export PYTHONPATH="$root/.cache/collections${PYTHONPATH:+:$PYTHONPATH}"
# shellcheck disable=SC2086  # BENCH_SCALE_ARGS is a list of options on purpose
exec "$root/.venv/bin/python" tests/bench/scale/bench_scale.py ${BENCH_SCALE_ARGS:-} "$@"
