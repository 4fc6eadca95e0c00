# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``make bench-scale``: what a backup, a deletion and a prune cost as the bank grows (docs/benchmarks.md, Scale).

Never part of ``make test``. Every measured step runs in its own process, so its peak RSS
(``ru_maxrss``) is its own; the bank is wrapped in a ``CountingBank``, so requests are counted by
kind as the engine asks for them. Scenarios:

- backup: the first backup of a volume (7/8 random chunks, 1/8 zero chunks), then an unchanged
  re-backup of it, into a file bank holding N real chunk objects (small, validly encoded), and into
  a file bank whose listing adds N simulated chunks (``sim_banks.ManyChunksBank``) for N beyond the disk;
- delete and retention: a file bank of 1,000 backups (100 volumes x 10), one backup deleted, then
  the listing a retention run starts with and the deletion of 10 backups with one prune;
- prune: a simulated 10 TiB bank (``sim_banks.PruneSimBank``, 2.6 M chunks, 1% garbage).

Everything it writes goes under .cache/bench/scale and is removed at the end; results go to
.cache/bench/scale-results.json and a Markdown table on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
WORK = ROOT / ".cache" / "bench" / "scale"
MIB = 1024 * 1024
CHUNK = 4 * MIB


def rss_mib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return round(usage.ru_utime + usage.ru_stime, 1)


def log(message: str) -> None:
    print(f"bench-scale: {message}", file=sys.stderr, flush=True)


# -- child side: one measured step -----------------------------------------------------------------

def _imports():
    from ansible_collections.openstack_dr.bank.plugins.module_utils import _bank_delete
    from ansible_collections.openstack_dr.bank.plugins.module_utils._bank.counting import CountingBank
    from ansible_collections.openstack_dr.bank.plugins.module_utils._bank.file import FileBank
    from ansible_collections.openstack_dr.bank.plugins.module_utils._engine import retention
    from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.store import BackupStore

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import sim_banks  # pylint: disable=import-outside-toplevel

    return types.SimpleNamespace(CountingBank=CountingBank, FileBank=FileBank, BackupStore=BackupStore,
                                 retention=retention, bank_delete=_bank_delete, sim=sim_banks)


def volume_pieces(seed: int, gib: float):
    """The volume: 4 MiB pieces, every 8th all zeros, the others random from ``seed``."""
    rng = random.Random(seed)
    for index in range(int(gib * 1024 * MIB // CHUNK)):
        yield bytes(CHUNK) if index % 8 == 7 else rng.randbytes(CHUNK)


def open_bank(lib, spec: dict):
    if spec["kind"] == "sim":
        return lib.sim.ManyChunksBank(spec["path"], spec["count"])
    return lib.FileBank(spec["path"], create=True, fsync=False)


def child_backup(lib, args: dict) -> dict:
    counting = lib.CountingBank(open_bank(lib, args["bank"]))
    store = lib.BackupStore(counting)
    baseline = rss_mib()
    started = time.monotonic()
    writer = store.backup_writer(args["name"], source={"volume": {"id": args["volume"]}}, chunk_size=CHUNK, parallelism=2)
    size = int(args["gib"] * 1024 * MIB)
    writer.write_chunks(volume_pieces(args["seed"], args["gib"]), expected_size=size)
    writer.commit()
    stats = writer.stats
    return {"seconds": round(time.monotonic() - started, 2), "requests": counting.snapshot(), "rss_mib": rss_mib(),
            "baseline_rss_mib": baseline, "chunks": stats.chunks, "data_chunks": stats.chunks - stats.zero_chunks,
            "chunks_written": stats.chunks_written, "chunks_checked": stats.chunks_checked,
            "duplicate_chunks": stats.duplicate_chunks, "parents": writer._stored.parents,  # pylint: disable=protected-access
            "listed": writer._stored.listed}  # pylint: disable=protected-access


def fill_chunks(lib, path: str, count: int) -> None:
    """``count`` real chunk objects: small plaintexts, encoded by the bank's codec, named by their ids."""
    store = lib.BackupStore(lib.FileBank(path, create=True, fsync=False))
    codec = store.open_codec(initialise=True)
    made = set()
    for index in range(count):
        plaintext = b"fill %d" % index
        digest = codec.identity(plaintext)
        hex_id = digest.hex()
        directory = os.path.join(path, "chunks", hex_id[:2])
        if hex_id[:2] not in made:
            os.makedirs(directory, exist_ok=True)
            made.add(hex_id[:2])
        with open(os.path.join(directory, hex_id), "wb") as handle:
            handle.write(codec.encode(digest, plaintext))


def make_backups(lib, path: str, volumes: int, per_volume: int) -> None:
    """``volumes * per_volume`` backups of 2 MiB (1 MiB chunks): one chunk shared by a volume's backups, one of their own."""
    store = lib.BackupStore(lib.FileBank(path, create=True, fsync=False))
    for day in range(per_volume):
        for number in range(volumes):
            shared = random.Random(number).randbytes(MIB)
            own = random.Random(f"{number}-{day}").randbytes(MIB)
            writer = store.backup_writer(f"vol{number}-day{day}", source={"volume": {"id": f"vol{number}"}}, chunk_size=MIB,
                                         parallelism=1)
            writer.write_chunks(iter((shared, own)), expected_size=2 * MIB)
            writer.commit()


def _module(**params):
    defaults = {"bank": {}, "encryption_passphrase": None, "backup": None, "backups": None, "prune": False, "lock_timeout": 60}
    return types.SimpleNamespace(params=dict(defaults, **params), check_mode=False)


def child_delete(lib, args: dict) -> dict:
    counting = lib.CountingBank(lib.FileBank(args["path"], fsync=False))
    lib.bank_delete.open_bank = lambda config: counting
    started = time.monotonic()
    result = lib.bank_delete.run_bank_delete(_module(backup=args["backup"]))
    return {"seconds": round(time.monotonic() - started, 2), "requests": counting.snapshot(), "bytes_read": counting.bytes_read,
            "rss_mib": rss_mib(), "deleted_objects": result["deleted"]["objects"], "chunks_referenced": result["deleted"]["chunks_referenced"]}


def child_retention(lib, args: dict) -> dict:
    counting = lib.CountingBank(lib.FileBank(args["path"], fsync=False))
    store = lib.BackupStore(counting)
    started = time.monotonic()
    listed = store.list_backups()  # what bank_backup_info does before the role chooses
    listing = {"requests": counting.snapshot(), "bytes_read": counting.bytes_read, "backups": len(listed),
               "seconds": round(time.monotonic() - started, 2)}
    before = dict(counting.counts)
    read_before = counting.bytes_read
    lib.bank_delete.open_bank = lambda config: counting
    started = time.monotonic()
    result = lib.bank_delete.run_bank_delete(_module(backups=args["backups"], prune=True))
    requests = {kind: counting.counts[kind] - before[kind] for kind in before}
    return {"listing": listing, "seconds": round(time.monotonic() - started, 2), "requests": requests,
            "bytes_read": counting.bytes_read - read_before, "rss_mib": rss_mib(),
            "deleted": sum(1 for entry in result["backups"] if entry["objects"]), "pruned_chunks": result["pruned"]["chunks"],
            "manifests_read": requests["get"]}


def child_prune(lib, args: dict) -> dict:
    sim = lib.sim.PruneSimBank(args["chunks"])
    lib.BackupStore(sim).open_codec(initialise=True)  # bank.json, read once by the prune as in a real bank
    counting = lib.CountingBank(sim)
    baseline = rss_mib()
    started = time.monotonic()
    plan = lib.retention.prune(lib.BackupStore(counting))
    expected_garbage = sim.chunks - sim.referenced
    if plan.chunks != expected_garbage or sim.deleted_chunks != expected_garbage or plan.referenced_chunks != sim.referenced:
        raise AssertionError(f"prune removed {plan.chunks} chunks, {expected_garbage} expected")
    return {"seconds": round(time.monotonic() - started, 1), "requests": counting.snapshot(), "rss_mib": rss_mib(),
            "baseline_rss_mib": baseline, "chunks": sim.chunks, "manifests": sim.manifests, "referenced": sim.referenced,
            "pruned_chunks": plan.chunks, "progress_objects": plan.progress_objects,
            "tib": round(sim.chunks * CHUNK / (1 << 40), 1)}


CHILDREN = {"backup": child_backup, "delete": child_delete, "retention": child_retention, "prune": child_prune,
            "fill": lambda lib, args: fill_chunks(lib, args["path"], args["count"]) or {},
            "make_backups": lambda lib, args: make_backups(lib, args["path"], args["volumes"], args["per_volume"]) or {}}


def child_main(kind: str, args: dict) -> None:
    lib = _imports()
    before = cpu_seconds()
    result = CHILDREN[kind](lib, args)
    # The machine may be shared: CPU seconds tell the cost when wall time is stretched by others.
    result["cpu_seconds"] = round(cpu_seconds() - before, 1)
    print(json.dumps(result), flush=True)


# -- parent side: the scenarios ----------------------------------------------------------------------

def run_child(kind: str, **args) -> dict:
    completed = subprocess.run([sys.executable, __file__, "--child", kind, json.dumps(args)], check=True,
                               stdout=subprocess.PIPE, text=True)
    return json.loads(completed.stdout.strip().splitlines()[-1])


def bench_backups(file_counts: list[int], sim_counts: list[int], gib: float) -> list[dict]:
    rows = []
    for kind, count in [("file", count) for count in file_counts] + [("sim", count) for count in sim_counts]:
        path = str(WORK / f"bank-{kind}-{count}")
        shutil.rmtree(path, ignore_errors=True)
        try:
            if kind == "file" and count:
                log(f"filling a file bank with {count} chunk objects")
                started = time.monotonic()
                run_child("fill", path=path, count=count)
                log(f"filled in {time.monotonic() - started:.0f} s")
            spec = {"kind": kind, "path": path, "count": count}
            for step, name in (("first", "vol-a-1"), ("unchanged", "vol-a-2")):
                log(f"{step} backup of {gib} GiB into a {kind} bank of {count} chunks")
                result = run_child("backup", bank=spec, name=name, volume="vol-a", seed=1, gib=gib)
                rows.append(dict(result, bank=kind, bank_chunks=count, step=step))
                log(json.dumps(rows[-1]))
        finally:
            shutil.rmtree(path, ignore_errors=True)
    return rows


def bench_retention(volumes: int, per_volume: int) -> dict:
    path = str(WORK / "bank-backups")
    shutil.rmtree(path, ignore_errors=True)
    try:
        log(f"making {volumes * per_volume} backups")
        started = time.monotonic()
        run_child("make_backups", path=path, volumes=volumes, per_volume=per_volume)
        log(f"made in {time.monotonic() - started:.0f} s")
        delete = run_child("delete", path=path, backup="vol0-day0")
        log(json.dumps(delete))
        doomed = [f"vol{number}-day0" for number in range(1, 11)]
        retention = run_child("retention", path=path, backups=doomed)
        log(json.dumps(retention))
        return {"backups": volumes * per_volume, "delete": delete, "retention": retention}
    finally:
        shutil.rmtree(path, ignore_errors=True)


def counts(text: str) -> list[int]:
    return [int(value) for value in text.split(",") if value]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--child", nargs=2, metavar=("KIND", "JSON"), help=argparse.SUPPRESS)
    parser.add_argument("--volume-gib", type=float, default=1.0)
    parser.add_argument("--file-banks", default="0,100000,1000000", help="chunk counts of real file banks")
    parser.add_argument("--sim-banks", default="2600000", help="chunk counts of simulated banks")
    parser.add_argument("--prune-chunks", type=int, default=2_600_000)
    parser.add_argument("--only", default="backup,retention,prune")
    options = parser.parse_args()
    if options.child:
        child_main(options.child[0], json.loads(options.child[1]))
        return
    WORK.mkdir(parents=True, exist_ok=True)
    only = options.only.split(",")
    results: dict = {"volume_gib": options.volume_gib, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    try:
        if "backup" in only:
            results["backups"] = bench_backups(counts(options.file_banks), counts(options.sim_banks), options.volume_gib)
        if "retention" in only:
            results["retention"] = bench_retention(100, 10)
        if "prune" in only:
            log(f"prune of a simulated bank of {options.prune_chunks} chunks")
            results["prune"] = run_child("prune", chunks=options.prune_chunks)
            log(json.dumps(results["prune"]))
    finally:
        shutil.rmtree(WORK, ignore_errors=True)
    out = ROOT / ".cache" / "bench" / "scale-results.json"
    out.write_text(json.dumps(results, indent=1))
    report(results)


def report(results: dict) -> None:
    def requests(counts: dict) -> str:
        return ", ".join(f"{kind} {value}" for kind, value in counts.items() if value) + f" (total {sum(counts.values())})"

    print(f"\n### Backup of a {results['volume_gib']} GiB volume\n")
    print("| bank | chunks in bank | backup | requests by kind | HEADs | uploaded | peak RSS MiB | wall s | CPU s |")
    print("|---|---:|---|---|---:|---:|---:|---:|---:|")
    for row in results.get("backups", []):
        print(f"| {row['bank']} | {row['bank_chunks']:,} | {row['step']} | {requests(row['requests'])} | {row['chunks_checked']} | "
              f"{row['chunks_written']} | {row['rss_mib']} | {row['seconds']} | {row['cpu_seconds']} |")
    if "retention" in results:
        retention = results["retention"]
        delete, kept = retention["delete"], retention["retention"]
        print(f"\n### Bank of {retention['backups']} backups\n")
        print("| step | requests by kind | bytes read | peak RSS MiB | wall s |")
        print("|---|---|---:|---:|---:|")
        print(f"| delete one backup | {requests(delete['requests'])} | {delete['bytes_read']:,} | {delete['rss_mib']} | {delete['seconds']} |")
        listing = kept["listing"]
        print(f"| list the backups (retention's first step) | {requests(listing['requests'])} | {listing['bytes_read']:,} | | "
              f"{listing['seconds']} |")
        print(f"| delete 10 + one prune ({kept['pruned_chunks']} chunks) | {requests(kept['requests'])} | {kept['bytes_read']:,} | "
              f"{kept['rss_mib']} | {kept['seconds']} |")
    if "prune" in results:
        prune = results["prune"]
        print(f"\n### Prune of a simulated {prune['tib']} TiB bank\n")
        print(f"{prune['chunks']:,} chunks, {prune['manifests']} manifests, {prune['referenced']:,} referenced, "
              f"{prune['pruned_chunks']:,} pruned: peak RSS {prune['rss_mib']} MiB (baseline {prune['baseline_rss_mib']}), "
              f"{prune['seconds']} s ({prune['cpu_seconds']} CPU s), requests {requests(prune['requests'])}")


if __name__ == "__main__":
    main()
