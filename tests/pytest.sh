#!/usr/bin/env bash
# Runs pytest with the collection importable and pytest-ansible kept from writing into the checkout.
set -euo pipefail
cd "$(dirname "$0")/.."
export ANSIBLE_COLLECTIONS_PATH="$PWD/.cache/collections"
cd .cache/collections/ansible_collections/openstack_dr/bank
exec "$OLDPWD/.venv/bin/python" -m pytest --ansible-unit-inject-only -p no:cacheprovider "$@"
