# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The race's Markdown report: medians per volume, contender and operation, ratios, and issue 10's targets."""

from __future__ import annotations

import os
import statistics
from pathlib import Path

from common import MIB, ROOT

OURS = ("ours-auto", "ours-raw")
PEERS = ("cinder-zstd", "cinder-zlib", "naive")
OPERATIONS = ("backup", "restore", "rebackup")
OPERATION_NAMES = {"backup": "backup at A", "restore": "restore at B", "rebackup": "unchanged re-backup"}


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def fmt(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def group(rows: list[dict]) -> dict[tuple[str, str, str], list[dict]]:
    groups: dict[tuple[str, str, str], list[dict]] = {}
    for row in rows:
        groups.setdefault((row["volume"], row["contender"], row["operation"]), []).append(row)
    return groups


def summary(rows: list[dict]) -> dict:
    ok = [row for row in rows if row["ok"]]
    walls = [row["wall_s"] for row in ok]
    restored = [row for row in ok if "identical" in row]
    notes = sorted({note for row in rows for note in row.get("notes", [])})
    short = sorted({row["identity"].get("short_by_bytes") for row in restored if row["identity"].get("short_by_bytes")})
    return {
        "runs": len(rows), "ok": len(ok), "wall": median(walls),
        "wall_range": (min(walls), max(walls)) if walls else None,
        "rss": median([row["peak_rss_mib"] for row in ok if row.get("peak_rss_mib")]),
        "bank": median([row.get("bank_bytes_added", row.get("bank_bytes")) / MIB for row in ok if "bank_bytes" in row]),
        "glance": median([sum(row.get("glance_bytes", {}).values()) / MIB for row in ok]),
        "load": median([row["max_load_1m"] for row in ok if "max_load_1m" in row]),
        "identical": f"{sum(1 for row in restored if row['identical'])}/{len(restored)}" if restored else "",
        "short": short, "padded_ok": all(row["identity"].get("identical_when_zero_padded", True) for row in restored),
        "errors": [row.get("error", "") for row in rows if not row["ok"]], "notes": notes,
    }


def identity_text(item: dict) -> str:
    if not item["identical"]:
        return ""
    text = item["identical"]
    if item["short"]:
        shorts = ", ".join(f"{value / MIB:g} MiB" for value in item["short"])
        text += f" (restored volume {shorts} short; data right when zero-padded: {'yes' if item['padded_ok'] else 'no'})"
    return text


def median_table(groups: dict) -> list[str]:
    lines = ["| volume | contender | operation | runs ok | wall s (median) | min-max | peak RSS MiB | bank MiB (stored / added) "
             "| Glance MiB | byte-identical | load 1m | notes |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---|---:|---|"]
    for (volume, contender, operation), rows in groups.items():
        item = summary(rows)
        span = f"{item['wall_range'][0]:.1f}-{item['wall_range'][1]:.1f}" if item["wall_range"] else ""
        notes = "; ".join(item["notes"] + [f"FAILED: {error[:160]}" for error in item["errors"]])
        lines.append(f"| {volume} | {contender} | {OPERATION_NAMES[operation]} | {item['ok']}/{item['runs']} | {fmt(item['wall'])} | {span} "
                     f"| {fmt(item['rss'], 0)} | {fmt(item['bank'])} | {fmt(item['glance'], 0)} | {identity_text(item)} "
                     f"| {fmt(item['load'])} | {notes} |")
    return lines


def walls(groups: dict, volume: str, contender: str) -> dict[str, float | None]:
    found = {op: summary(groups.get((volume, contender, op), [])).get("wall") for op in OPERATIONS}
    found["backup+restore"] = (found["backup"] + found["restore"]
                               if found["backup"] is not None and found["restore"] is not None else None)
    return found


def ratio(ours: float | None, peer: float | None) -> str:
    return "n/a" if ours is None or not peer else f"{ours / peer:.2f}x"


def ratio_table(groups: dict, volumes: list[str], contenders: set[str]) -> list[str]:
    peers = [peer for peer in PEERS if peer in contenders]

    def row(cells: list[str]) -> str:
        return "| " + " | ".join(cells) + " |"

    # One cell per column whatever the peers: a race of ours alone gives a table without ratio columns.
    lines = [row(["volume", "ours", "operation", "ours s"] + [f"ours/{peer}" for peer in peers]),
             row(["---", "---", "---", "---:"] + ["---:"] * len(peers))]
    for volume in volumes:
        peer_walls = {peer: walls(groups, volume, peer) for peer in peers}
        for ours in (name for name in OURS if name in contenders):
            mine = walls(groups, volume, ours)
            for op in ("backup", "restore", "backup+restore", "rebackup"):
                lines.append(row([volume, ours, OPERATION_NAMES.get(op, op), fmt(mine[op])]
                                 + [ratio(mine[op], peer_walls[peer][op]) for peer in peers]))
    return lines


def targets(groups: dict, volumes: list[str]) -> list[str]:
    """Issue 10's targets, for ours-auto against Cinder zstd (and its incremental)."""
    lines = []

    def check(text: str, value: float | None, limit: float) -> None:
        verdict = "n/a" if value is None else ("met" if value <= limit else f"MISSED by {value / limit:.2f}x")
        lines.append(f"- {text}: {fmt(value, 2)} (target <= {limit:g}): **{verdict}**")

    def quotient(a: float | None, b: float | None) -> float | None:
        return None if a is None or not b else a / b

    for volume, limit in (("4g", 1.0), ("16g", 0.5)):
        if volume not in volumes:
            continue
        ours, zstd = walls(groups, volume, "ours-auto"), walls(groups, volume, "cinder-zstd")
        check(f"{volume}: backup + restore, ours-auto / Cinder zstd", quotient(ours["backup+restore"], zstd["backup+restore"]), limit)
        if volume == "4g":
            check("4g: restore, ours-auto / Cinder zstd", quotient(ours["restore"], zstd["restore"]), 1.0)
            for peer in ("cinder-zstd", "cinder-zlib"):
                check(f"4g: unchanged re-backup, ours-auto / {peer} incremental",
                      quotient(ours["rebackup"], walls(groups, volume, peer)["rebackup"]), 2.0)
    ours_rows = [row for (volume, contender, op), rows in groups.items() if contender in OURS for row in rows if row["ok"]]
    if ours_rows:
        check("peak RSS of our module, MiB (largest row)", max(row.get("peak_rss_mib", 0) for row in ours_rows), 200)
    restores = [row for rows in groups.values() for row in rows if "identical" in row]
    bad = [f"{row['contender']} {row['volume']} run {row['run']}" for row in restores if not row["identical"]]
    lines.append(f"- every restore byte-identical: {len(restores) - len(bad)}/{len(restores)}"
                 + (f"; not: {', '.join(bad)}" if bad else ""))
    for volume in volumes:
        ours = summary(groups.get((volume, "ours-auto", "backup"), []))["bank"]
        for peer in ("cinder-zstd", "cinder-zlib"):
            theirs = summary(groups.get((volume, peer, "backup"), []))["bank"]
            if ours is not None and theirs:
                lines.append(f"- {volume}: bank bytes of a backup, ours-auto {ours:.1f} MiB vs {peer} {theirs:.1f} MiB: "
                             f"**{'met' if ours <= theirs else 'missed'}**")
    return lines


def phases_table(groups: dict) -> list[str]:
    lines = ["| volume | contender | operation | median seconds per phase (reported by the contender) |", "|---|---|---|---|"]
    for (volume, contender, operation), rows in groups.items():
        phases: dict[str, list[float]] = {}
        for row in rows:
            for name, value in (row.get("phases") or {}).items():
                if isinstance(value, (int, float)):
                    phases.setdefault(name, []).append(value)
        if phases:
            text = ", ".join(f"{name} {statistics.median(values):.1f}" for name, values in phases.items())
            lines.append(f"| {volume} | {contender} | {OPERATION_NAMES[operation]} | {text} |")
    return lines


def command(facts: dict) -> str:
    chosen = facts["options"]
    site_b = (facts.get("backends") or {}).get("site-b", "nfs")
    return ((f"DEVCLOUD_SITE_B_BACKEND={site_b} " if site_b != "nfs" else "")
            + f"BENCH_E2E_RUNS={chosen['runs']} BENCH_E2E_VOLUMES={','.join(chosen['volumes'])} "
            f"BENCH_E2E_CONTENDERS={','.join(chosen['contenders'])} BENCH_E2E_OPERATIONS={','.join(chosen['operations'])} "
            + (f"BENCH_E2E_REVISION={chosen['revision']} " if chosen.get("revision") else "") + "make bench-e2e")


def render(facts: dict, sources: dict, rows: list[dict], results: Path) -> str:
    groups = dict(sorted(group(rows).items(), key=lambda item: (
        facts["options"]["volumes"].index(item[0][0]), facts["options"]["contenders"].index(item[0][1]), OPERATIONS.index(item[0][2]))))
    volumes = facts["options"]["volumes"]
    lines = [f"## The end-to-end race, run {facts['run_id']} ({facts.get('finished_at', '')})", "",
             f"Reproduce: `{command(facts)}`", "",
             f"Collection at `{facts['revision']}`; transfer_format option present: {facts.get('transfer_format_supported')}; "
             f"{facts.get('cpus')} CPUs, Python {facts.get('python')}; bank {facts.get('bank')}; whole run {facts.get('wall_s')} s; "
             f"raw rows in `{os.path.relpath(results, ROOT)}`.", ""]
    backends = facts.get("backends") or {"site-a": "nfs", "site-b": "nfs"}
    where = ("with `rbd export` of the volume's RBD image" if backends.get("site-b") == "rbd"
             else "from the volume's file on B's NFS share")
    text = f"Site A on {backends.get('site-a')}, site B on {backends.get('site-b')} (restored bytes read {where})."
    if "backup" not in facts["options"]["operations"]:
        text += " Only the restores were raced: each contender's backup was made before, untimed."
    lines += [text, ""]
    if facts.get("stopped") or facts.get("interrupted"):
        lines += [f"**The run did not finish**: {facts.get('stopped') or 'interrupted'}.", ""]
    lines += ["Source volumes at site A: " + "; ".join(f"`{label}`: {source['layout']}" for label, source in sources.items()), ""]
    lines += median_table(groups) + [""]
    lines += ["Ratios of median wall times (below 1 = ours faster):", ""] + ratio_table(groups, volumes, set(facts["options"]["contenders"])) + [""]
    lines += ["Issue 10's targets (ours-auto):", ""] + targets(groups, volumes) + [""]
    lines += ["Phases:", ""] + phases_table(groups) + [""]
    lines += ["Columns: wall = the operator's wait (ours: the `ansible` command, start-up included; Cinder: from the API "
              "call to `available`, restore = export at A + import at B + restore; naive: its process). Peak RSS = the "
              "contender's own process (ours: the module worker `AnsiballZ_*`; Cinder: the cinder-backup doing the work, "
              "its high-water mark reset before the operation, so it includes what the long-lived service kept from "
              "earlier operations (`service_rss_before_mib` in the JSON); naive: its process). Bank = bytes listed in the "
              "contender's own bucket/container after a backup (after a re-backup: what it added). Glance = sizes of the "
              "images the operation created in Glance's store (both sites; an RBD store: the size Glance reports for each new "
              "image of its pool). Load = the highest 1-minute load average seen "
              "during the operation (2 cores, shared machine)."]
    return "\n".join(lines) + "\n"
