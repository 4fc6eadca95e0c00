#!/usr/bin/env bash
# `make test`: install, start the real services, run every test and quality gate, always stop.
set -euo pipefail
cd "$(dirname "$0")/.."
make --no-print-directory venv
stop_services() {
    make --no-print-directory devcloud-down || true
    make --no-print-directory bank-down || true
}
trap stop_services EXIT
make --no-print-directory bank-up
make --no-print-directory devcloud-up
if ! tests/pytest.sh tests/unit tests/e2e --durations=25; then
    # CI keeps only this output: show what the services logged as errors.
    echo "=== errors logged by the devcloud services (full logs: .devcloud/logs/) ==="
    .devcloud/venv/bin/python tests/devcloud/devcloud.py errors || true
    exit 1
fi
tests/quality.sh
