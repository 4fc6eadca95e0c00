#!/usr/bin/env bash
# `make devcloud-down`: stops the bank server, both sites and Ceph (deleting its state and OSD file),
# unmounts the shares, frees the loop devices. Safe to run at any time, also when nothing is up. Logs stay in .devcloud/logs/.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root" || exit 1
dc="$root/.devcloud"
venv="$dc/venv"
quiet=false
[ "${1:-}" = "--quiet" ] && quiet=true
say() { $quiet || echo "devcloud: $*"; }
status=0
mkdir -p "$dc"
if [ -z "${DEVCLOUD_LOCK_HELD:-}" ]; then
    # One up or down at a time in this checkout (up.sh holds the lock when it calls us).
    exec 9>"$dc/.lock"
    if ! flock -w 600 9; then
        echo "devcloud: FAILED: another devcloud up/down still holds $dc/.lock after 600 s" >&2
        exit 1
    fi
fi

if ! $quiet; then
    if [ -f "$root/tests/servers/bank_servers.py" ]; then
        make --no-print-directory -C "$root" bank-down || status=1
    else
        say "tests/servers/bank_servers.py does not exist yet: bank server skipped"
    fi
fi

if [ -x "$venv/bin/python" ]; then
    "$venv/bin/python" "$root/tests/devcloud/devcloud.py" down || status=1
else
    # No venv (removed by hand): Ceph's own script needs only the standard library.
    python3 "$root/tests/devcloud/ceph.py" down || status=1
fi
if [ ! -x "$venv/bin/python" ] && [ -d "$dc/state" ]; then
    # No venv: unmount and free what is left with plain tools.
    grep " $dc/state/" /proc/mounts | while read -r _ target _; do umount -l "$target"; done
    for img in "$dc"/state/*/nfs-share.img; do
        [ -e "$img" ] || continue
        losetup -j "$img" | cut -d: -f1 | while read -r dev; do losetup -d "$dev"; done
    done
    rm -rf "$dc/state"
fi
if [ "$status" -eq 0 ]; then say "down"; else say "down, with problems (see above)" >&2; fi
exit "$status"
