#!/usr/bin/env bash
# `make demo`: a DR drill on the two-site devcloud, end to end, in a few minutes.
#   1. brings the devcloud (two OpenStack sites and the Swift bank server) up if it is not;
#   2. creates a 1 GiB demo volume at site A holding 320 MiB of known data (random, text, zeros);
#   3. runs playbooks/dr_drill.yml against the Swift bank through its S3 API: backup at site A,
#      restore at site B, read-back and hash comparison, RPO and RTO targets, cleanup, and the
#      evidence (JSON report, JUnit XML, Prometheus textfile) in .cache/demo/, whose paths it prints;
#   4. deletes the demo volume at site A.
# The devcloud stays up afterwards (`make devcloud-down` stops it). The drill removes its restored
# volume and its backups; nothing of the demo is left at either site or in the bank.
# DR_DEMO_SKIP_UP=1 skips step 1 (for a devcloud known to be up, or one started by other means).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
start=$SECONDS
say() { echo "demo: $*"; }

if [ "${DR_DEMO_SKIP_UP:-0}" = 1 ]; then
    say "DR_DEMO_SKIP_UP=1: not checking the devcloud"
else
    say "bringing the devcloud up (idempotent)"
    make --no-print-directory devcloud-up
fi

venv=$root/.venv
export PATH="$venv/bin:$PATH"
export OS_CLIENT_CONFIG_FILE=$root/.devcloud/clouds.yaml
export ANSIBLE_COLLECTIONS_PATH=$root/.cache/collections
export ANSIBLE_NOCOLOR=1 ANSIBLE_LOCALHOST_WARNING=0 ANSIBLE_INVENTORY_UNPARSED_WARNING=0
# The collection is used from this checkout, through the link setup-venv.sh makes.
mkdir -p .cache/collections/ansible_collections/openstack_dr
ln -sfn "$root" .cache/collections/ansible_collections/openstack_dr/bank

work=$(mktemp -d)
# The drill's evidence outlives the demo (the work dir does not); each run overwrites it.
evidence=$root/.cache/demo
mkdir -p "$evidence"
volume_name="dr-demo-$(date -u +%Y%m%d%H%M%S)"
delete_demo_volume() {
    python - "$volume_name" <<'PY' || say "WARNING: could not delete the demo volume $volume_name at site A"
import sys, time, openstack
conn = openstack.connect(cloud="site-a")
for volume in [v for v in conn.block_storage.volumes() if v.name == sys.argv[1]]:
    conn.block_storage.delete_volume(volume)
    conn.block_storage.wait_for_delete(volume, wait=600)
    print(f"demo: deleted the demo volume {volume.name} ({volume.id}) at site A")
PY
    rm -rf "$work"
}
trap delete_demo_volume EXIT

say "creating the demo volume $volume_name at site A (1 GiB: 320 MiB of random, text and zero data)"
python - "$volume_name" <<'PY'
import hashlib, io, random, sys, time, openstack

MIB = 1024 * 1024
name = sys.argv[1]
random_part = random.Random(name).randbytes(96 * MIB)
line = b"openstack_dr.bank demo: the quick brown fox jumps over the lazy dog %08d\n"
text = bytearray()
while len(text) < 96 * MIB:
    text += line % len(text)
payload = random_part + bytes(text[:96 * MIB]) + bytes(128 * MIB)
print(f"demo: payload {len(payload)} bytes, sha256 {hashlib.sha256(payload).hexdigest()}")

conn = openstack.connect(cloud="site-a")
image = conn.image.create_image(name=f"{name}-seed", disk_format="raw", container_format="bare", visibility="private")
try:
    # A sized (not chunked) upload: Glance under uWSGI refuses large chunks.
    response = conn.image.put(f"/images/{image.id}/file", data=io.BytesIO(payload),
                              headers={"Content-Type": "application/octet-stream", "Content-Length": str(len(payload))})
    response.raise_for_status()
    deadline = time.monotonic() + 300
    while conn.image.get_image(image).status != "active":
        if time.monotonic() > deadline:
            sys.exit("demo: the seed image did not become active")
        time.sleep(2)
    volume = conn.block_storage.create_volume(name=name, size=1, image_id=image.id)
    volume = conn.block_storage.wait_for_status(volume, "available", failures=["error"], interval=2, wait=600)
    print(f"demo: volume {volume.name} ({volume.id}) available at site A")
finally:
    conn.image.delete_image(image, ignore_missing=True)
PY

# Extra vars as an AWX job template would pass them; the bank's secrets stay in this 0600 file.
umask 077
python - "$volume_name" "$work/drill-vars.yml" "$evidence" <<'PY'
import sys, yaml
banks = yaml.safe_load(open(".devcloud/bank.yml"))
bank = dict(banks["swift_s3"], bucket="dr-demo", create=True)
extra = {
    "dr_bank": bank,
    "dr_encryption_passphrase": "dr-demo-passphrase",
    "dr_site_a_cloud": "site-a",
    "dr_site_b_cloud": "site-b",
    "dr_volumes": [sys.argv[1]],
    "dr_poll_interval": 3,
    # Generous targets for a loaded 2-core machine: the demo shows them checked, not missed.
    "dr_drill_rpo_target": 3600,
    "dr_drill_rto_target": 900,
    "dr_drill_json_path": f"{sys.argv[3]}/drill.json",
    "dr_drill_junit_path": f"{sys.argv[3]}/drill.xml",
    "dr_drill_metrics_path": f"{sys.argv[3]}/openstack_dr_bank_drill.prom",
}
yaml.safe_dump(extra, open(sys.argv[2], "w"))
PY

say "running playbooks/dr_drill.yml (backup at site A, restore at site B, proof, cleanup, report)"
drill_rc=0
ansible-playbook playbooks/dr_drill.yml -e "@$work/drill-vars.yml" || drill_rc=$?
# Written whether the drill passed or not: a failed drill's evidence says why.
say "drill evidence: JSON report $evidence/drill.json"
say "drill evidence: JUnit XML   $evidence/drill.xml"
say "drill evidence: Prometheus  $evidence/openstack_dr_bank_drill.prom"
[ "$drill_rc" = 0 ] || { say "the drill FAILED (exit $drill_rc)"; exit "$drill_rc"; }
say "done in $((SECONDS - start)) s; the devcloud is still up (make devcloud-down stops it)"
