#!/usr/bin/env bash
# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# bank_sync's speed and peak memory (docs/bank-sync.md). Never part of `make test`. Needs the bank
# servers (`make bank-up`). Arguments go to bench_sync.py, e.g. --sizes-mib 64,320.
set -euo pipefail
cd "$(dirname "$0")/../../.."
root=$PWD
mkdir -p .cache/collections/ansible_collections/openstack_dr
ln -sfn "$root" .cache/collections/ansible_collections/openstack_dr/bank
export PYTHONPATH="$root/.cache/collections${PYTHONPATH:+:$PYTHONPATH}"
exec "$root/.venv/bin/python" tests/bench/sync/bench_sync.py "$@"
