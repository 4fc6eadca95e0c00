# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What immutability costs: the same image backed up into two fresh buckets of the Ceph Object Gateway,
one plain and one with S3 Object Lock, side by side in one run.

Per bank: a first backup, an unchanged backup (the parent's locks cover it: no extra request), and an
unchanged backup that must extend every reused chunk's lock (forced here by asking for more days than
the first backup's lock plus extension, as a backup after the extension period would). Seconds and bank requests per
row; the figures go into docs/benchmarks.md by hand. The image is generated on the fly (half random,
a quarter zeros, a quarter compressible text), so nothing is written to local disk. The buckets are
emptied at the end (governance locks, removed with the owner's bypass).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
import typing as t
from pathlib import Path

import boto3
import botocore.exceptions
import yaml

from ansible_collections.openstack_dr.bank.plugins.module_utils._bank import open_bank
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.store import BackupStore

ROOT = Path(__file__).resolve().parents[3]
MIB = 1024 * 1024
CHUNK = 4 * MIB
SOURCE = {"volume": {"id": "bench-object-lock", "name": "bench"}}


def image(size: int, seed: int = 7) -> t.Iterator[bytes]:
    rng = random.Random(seed)
    text = b"openstack_dr.bank immutable bench line %d\n"
    done = 0
    while done < size:
        kind = rng.random()
        if kind < 0.5:
            piece = rng.randbytes(CHUNK)
        elif kind < 0.75:
            piece = bytes(CHUNK)
        else:
            piece = b"".join(text % i for i in range(CHUNK // 40))[:CHUNK].ljust(CHUNK, b".")
        piece = piece[:size - done]
        done += len(piece)
        yield piece


def run_backup(config: dict, name: str, size: int) -> dict:
    writer = BackupStore(open_bank(config)).backup_writer(name, source=SOURCE, chunk_size=CHUNK, parallelism=4)
    started = time.monotonic()
    manifest = writer.write(image(size))
    seconds = time.monotonic() - started
    return {"seconds": round(seconds, 2), "requests": dict(writer.stats.requests),
            "protected_until": manifest.document.get("protected_until")}


def empty(config: dict) -> None:
    s3 = boto3.client("s3", endpoint_url=config["endpoint_url"], aws_access_key_id=config["access_key"],
                      aws_secret_access_key=config["secret_key"], region_name=config["region"])
    while True:
        listing = s3.list_object_versions(Bucket=config["bucket"], MaxKeys=1000)
        versions = (listing.get("Versions") or []) + (listing.get("DeleteMarkers") or [])
        if not versions:
            break
        s3.delete_objects(Bucket=config["bucket"], BypassGovernanceRetention=True,
                          Delete={"Objects": [{"Key": v["Key"], "VersionId": v["VersionId"]} for v in versions], "Quiet": True})
    try:
        s3.delete_bucket(Bucket=config["bucket"])
    except botocore.exceptions.ClientError:
        pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-gib", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=2, help="each contender runs this many times, alternating")
    args = parser.parse_args()
    size = int(args.size_gib * 1024 * MIB)
    # BANK_DEVCLOUD_DIR points at another set of servers, as for the tests.
    servers = yaml.safe_load((Path(os.environ.get("BANK_DEVCLOUD_DIR") or ROOT / ".devcloud") / "bank.yml").read_text())
    if "rgw_s3" not in servers:
        print("bank.yml has no rgw_s3: start the devcloud (Ceph) and the bank server", file=sys.stderr)
        return 2
    lock = {"object_lock_days": 1, "object_lock_extension_days": 7, "object_lock_mode": "governance"}
    rows: dict[str, list] = {}
    for round_number in range(1, args.rounds + 1):
        # Fresh buckets per round, so every "first" is one; emptied at once, the gateway's disk is small.
        stamp = f"{time.strftime('%H%M%S')}-{round_number}"
        plain = dict(servers["rgw_s3"], bucket=f"bench-plain-{stamp}", create=True)
        locked = dict(servers["rgw_s3"], bucket=f"bench-locked-{stamp}", create=True, **lock)
        extended = dict(locked, object_lock_days=9, object_lock_extension_days=0)
        # Interleaved, so both contenders meet the same moments of a shared, noisy machine.
        runs = (("plain: first", plain, "first"), ("object lock: first", locked, "first"),
                ("plain: unchanged", plain, "unchanged"), ("object lock: unchanged", locked, "unchanged"),
                ("object lock: unchanged, every lock extended", extended, "extended"))
        try:
            for label, config, name in runs:
                rows.setdefault(label, []).append(run_backup(config, name, size))
                print(label, rows[label][-1], os.getloadavg(), file=sys.stderr, flush=True)
        finally:
            for config in (plain, locked):
                empty(config)
    best = {label: min(run["seconds"] for run in runs_of) for label, runs_of in rows.items()}
    ratios = {f"{kind} (object lock / plain, best of each)": round(best[f"object lock: {kind}"] / best[f"plain: {kind}"], 2)
              for kind in ("first", "unchanged")}
    ratios["unchanged, every lock extended / plain unchanged"] = round(
        best["object lock: unchanged, every lock extended"] / best["plain: unchanged"], 2)
    print(json.dumps({"size_gib": args.size_gib, "chunk_mib": CHUNK // MIB, "rows": rows, "ratios": ratios}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
