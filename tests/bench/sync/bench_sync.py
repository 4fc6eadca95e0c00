# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""bank_sync's speed and peak memory on the local servers: file -> S3 (moto), then that replica -> S3
(Swift's S3 API), and file -> S3 with Object Lock (moto), at two bank sizes, so the figures show
whether memory grows with the bank.

The source is a file bank of one backup per 64 MiB of random (incompressible) data in 4 MiB chunks,
written through the engine. Each sync runs in a fresh Python process (the engine's BankSync, as the
module runs it, parallelism 4) that reports its seconds and its peak RSS (``VmHWM``, which a new
program starts afresh, unlike ``ru_maxrss``, which Linux carries over from the forking parent); a
baseline process opens both banks and lists the source without copying, so the sync's own share is the
difference.
The buckets are deleted at the end. The figures go into docs/bank-sync.md by hand.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import yaml

from ansible_collections.openstack_dr.bank.plugins.module_utils._bank import open_bank
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.store import BackupStore
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.sync import BankSync

ROOT = Path(__file__).resolve().parents[3]
# Emptying a versioned bucket (governance locks yield to the owner's bypass) is the Object Lock bench's.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "object_lock"))
from bench_object_lock import empty as empty_bucket  # noqa: E402  pylint: disable=wrong-import-position
MIB = 1024 * 1024
CHUNK = 4 * MIB
BACKUP_MIB = 64
PARALLELISM = 4


def child(spec: dict) -> None:
    """In a fresh process: one sync (or, for the baseline, only opening and listing both banks)."""
    source = BackupStore(open_bank(spec["source"]))
    target = BackupStore(open_bank(spec["target"]))
    started = time.monotonic()
    if spec["baseline"]:
        source.open_codec()
        for dummy in source.stored_chunks():
            pass
        counts = {}
    else:
        report = BankSync(source, target, parallelism=PARALLELISM).run()
        counts = {"backups_copied": len(report.copied), "chunks_copied": report.chunks_copied, "bytes_copied": report.bytes_copied}
    seconds = time.monotonic() - started
    peak_mib = peak_rss_kib() / 1024
    print(json.dumps({"seconds": round(seconds, 2), "peak_rss_mib": round(peak_mib, 1), **counts}))


def peak_rss_kib() -> int:
    """This program's peak resident set (VmHWM), in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def run_child(source: dict, target: dict, baseline: bool = False) -> dict:
    spec = json.dumps({"source": source, "target": target, "baseline": baseline})
    done = subprocess.run([sys.executable, __file__, "--child"], input=spec, capture_output=True, text=True, check=True, timeout=3600)
    row = json.loads(done.stdout)
    if row.get("bytes_copied"):
        row["mib_per_second"] = round(row["bytes_copied"] / MIB / row["seconds"], 1)
    return row


def fill(config: dict, mib: int) -> None:
    """One backup per BACKUP_MIB of random data, never the same chunk twice."""
    store = BackupStore(open_bank(dict(config, create=True)))
    rng = random.Random(mib)
    for index in range(mib // BACKUP_MIB):
        writer = store.backup_writer(f"bench-{index}", source={"volume": {"id": f"vol-{index}", "name": f"bench-{index}"}},
                                     chunk_size=CHUNK, parallelism=PARALLELISM)
        writer.write(rng.randbytes(CHUNK) for dummy in range(BACKUP_MIB * MIB // CHUNK))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--sizes-mib", default="64,320", help="bank sizes, comma-separated, multiples of 64")
    args = parser.parse_args()
    if args.child:
        child(json.loads(sys.stdin.read()))
        return 0
    servers = yaml.safe_load((Path(os.environ.get("BANK_DEVCLOUD_DIR") or ROOT / ".devcloud") / "bank.yml").read_text())
    results = []
    for mib in (int(value) for value in args.sizes_mib.split(",")):
        stamp = uuid.uuid4().hex[:8]
        moto = dict(servers["moto"], bucket=f"bench-sync-moto-{stamp}", create=True)
        swift_s3 = dict(servers["swift_s3"], bucket=f"bench-sync-swift-{stamp}", create=True)
        locked = dict(servers["moto"], bucket=f"bench-sync-locked-{stamp}", create=True, object_lock_days=1,
                      object_lock_extension_days=0, object_lock_mode="governance")
        with tempfile.TemporaryDirectory(prefix="bench-sync-") as directory:
            source = {"type": "file", "path": str(Path(directory) / "bank"), "create": True}
            fill(source, mib)
            try:
                rows = {"baseline (open and list, no copy)": run_child(source, moto, baseline=True),
                        "file -> S3 (moto)": run_child(source, moto),
                        "S3 (moto) -> S3 (Swift's S3 API)": run_child(dict(moto, create=False), swift_s3),
                        "file -> S3 with Object Lock (moto)": run_child(source, locked)}
            finally:
                for config in (moto, swift_s3, locked):
                    try:
                        empty_bucket(config)
                    except Exception as exc:  # pylint: disable=broad-exception-caught
                        print(f"could not remove {config['bucket']}: {exc}", file=sys.stderr)
        results.append({"bank_mib": mib, "rows": rows})
        print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    print(json.dumps({"chunk_mib": CHUNK // MIB, "parallelism": PARALLELISM, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
