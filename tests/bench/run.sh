#!/usr/bin/env bash
# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# `make bench`: the benchmark of docs/benchmarks.md. Never part of `make test`.
# Starts the bank servers if needed (`make bank-up`, idempotent; never stops them: they are
# shared), installs restic from Debian and py-spy from PyPI into .cache/bench/tools, then runs
# tests/bench/bench.py with any arguments given here (BENCH_ARGS from make).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
py=$root/.venv/bin/python
work=$root/.cache/bench
mkdir -p "$work"

if ! command -v restic >/dev/null 2>&1; then
    echo "bench: installing restic from Debian"
    apt-get install -y restic >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y restic >/dev/null; }
fi
if ! command -v curl >/dev/null 2>&1; then
    apt-get install -y curl >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y curl >/dev/null; }
fi
if [ ! -x "$work/tools/bin/py-spy" ]; then
    echo "bench: installing py-spy into $work/tools"
    "$py" -m pip install --disable-pip-version-check -q --target "$work/tools" py-spy==0.4.3 || echo "bench: py-spy unavailable: no profile"
fi

# The bank servers belong to everyone: start them if they are down, never stop them here. The
# benchmark needs only Swift: when `make bank-up` fails on moto alone (a busy shared moto can miss
# its readiness deadline) but Swift answers and .devcloud/bank.yml exists, go on with Swift.
swift_ready() {
    curl -sf -o /dev/null http://127.0.0.1:"${BANK_SWIFT_PORT_BASE:-31680}"/healthcheck && [ -f .devcloud/bank.yml ]
}
tries=0
until make -s bank-up; do
    tries=$((tries + 1))
    if swift_ready; then
        echo "bench: make bank-up failed, but Swift is up and .devcloud/bank.yml exists: going on with Swift"
        break
    fi
    if [ "$tries" -ge 3 ]; then
        echo "bench: make bank-up failed $tries times" >&2
        exit 1
    fi
    echo "bench: make bank-up failed; retrying in 20 s"
    sleep 20
done

# The collection is imported through the symlink farm `make venv` made.
mkdir -p .cache/collections/ansible_collections/openstack_dr
ln -sfn "$root" .cache/collections/ansible_collections/openstack_dr/bank

# shellcheck disable=SC2086  # BENCH_ARGS is a list of options on purpose
exec "$py" tests/bench/bench.py --profile ${BENCH_ARGS:-} "$@"
