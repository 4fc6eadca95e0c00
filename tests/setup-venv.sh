#!/usr/bin/env bash
# Creates .venv with the pinned tools and libraries the tests, the demo and the benchmark use.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv
if [ ! -x "$venv/bin/python" ]; then
    python3.11 -m venv "$venv" 2>/dev/null || python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
"$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/requirements.txt 2>&1 \
    | grep -v "^WARNING: Location" || true
# pip's exit status is lost in the pipe above: prove the install instead.
"$venv/bin/python" -c "import ansible, boto3, openstack, zstandard, cryptography, moto, pytest"
# The collection must be importable as ansible_collections.openstack_dr.bank.
mkdir -p .cache/collections/ansible_collections/openstack_dr
ln -sfn "$PWD" .cache/collections/ansible_collections/openstack_dr/bank
# The image format tests drive qemu-img (they fail without it, so CI must have it).
if ! command -v qemu-img >/dev/null; then
    sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get install -y -qq qemu-utils >/dev/null 2>&1 \
        || { "${sudo[@]}" apt-get update -qq && "${sudo[@]}" apt-get install -y -qq qemu-utils; }
fi
command -v qemu-img >/dev/null
touch "$venv/.installed"
