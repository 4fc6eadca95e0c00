# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""bank_sync, top to bottom.

open both banks -> the target becomes a replica of the source's configuration -> which chosen
complete backups the target lacks -> their chunks (verified) and then their manifests -> with
follow_deletions, the target's backups the source no longer holds deleted, then a prune -> per
source volume, the newest backup in each bank and the lag -> fail when a backup could not be
copied because the source is damaged.
"""

from __future__ import annotations

import typing as t

from ansible_collections.openstack_dr.bank.plugins.module_utils._bank import Bank, BankObject, open_bank
from ansible_collections.openstack_dr.bank.plugins.module_utils._bank.options import bank_secrets
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.documents import parse_utc
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.store import BackupStore
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.sync import BackupEntry, BankSync, FailedBackup, SyncReport
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.units import MIB
from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import BankMissingError, IntegrityError, InvalidInputError
from ansible_collections.openstack_dr.bank.plugins.module_utils._inputs import LOCK_TIMEOUT, PARALLELISM, check_names, check_number
from ansible_collections.openstack_dr.bank.plugins.module_utils._manifest import source_summary

# Results list at most this many damaged chunks per backup; the counts cover everything.
_LISTED_CHUNKS = 100
VANISHED = "deleted or replaced in the source while it was copied; the next run copies what the source then holds"


def sync_secrets(params: t.Mapping[str, t.Any]) -> set[str]:
    """The secrets inside O(source_bank.cloud) and O(target_bank.cloud), which no_log cannot reach."""
    return bank_secrets({"bank": params.get("source_bank")}) | bank_secrets({"bank": params.get("target_bank")})


def run_bank_sync(module: t.Any) -> dict:
    params = module.params
    check_number("lock_timeout", params["lock_timeout"], LOCK_TIMEOUT)
    check_number("parallelism", params["parallelism"], PARALLELISM)
    check_names(params["backups"], "backups")
    # The source is only read: never created, and read-only credentials are enough.
    target_config = params["target_bank"] if isinstance(params["target_bank"], dict) else {}
    if target_config.get("write_only") and params["follow_deletions"]:
        raise InvalidInputError("O(follow_deletions=true) deletes from the target, and O(target_bank.write_only) says its "
                                "credentials may not", option="target_bank.write_only")
    source = BackupStore(open_bank(params["source_bank"], read_only=True), params["encryption_passphrase"])
    # A wrong passphrase is refused before the target is opened, and so before it is created.
    source.check_access()
    target = BackupStore(open_target(params["target_bank"], module.check_mode), params["encryption_passphrase"])
    report = BankSync(source, target, select=selection(params["backups"]), follow_deletions=params["follow_deletions"],
                      parallelism=params["parallelism"], lock_wait_timeout=params["lock_timeout"],
                      check_mode=module.check_mode).run()
    result = sync_result(report, source, target, params["follow_deletions"])
    if report.failed:
        names = ", ".join(failed.entry.backup_name for failed in report.failed)
        raise IntegrityError(
            f"{len(report.failed)} backup(s) of {source.bank.description} were not copied because chunks of theirs are "
            f"damaged or missing in the source ({len(report.bad_chunks)} chunk(s)): {names}. The other backups were "
            f"{'checked' if module.check_mode else 'copied'}; see damaged.", **result)
    return result


class _TargetToCreate(Bank):
    """In check mode, the target that O(target_bank.create) would create: empty, and never written."""

    def __init__(self, description: str) -> None:
        self.description = f"{description} (to be created)"

    def put(self, key: str, data: bytes | bytearray | memoryview) -> None:
        raise RuntimeError("check mode writes nothing")

    def get(self, key: str) -> bytes:
        raise self.no_such_object(key)

    def exists(self, key: str) -> bool:
        return False

    def list(self, prefix: str = "") -> t.Iterator[BankObject]:
        return iter(())

    def delete_many(self, keys: t.Iterable[str]) -> int:
        raise RuntimeError("check mode deletes nothing")


def open_target(config: dict, check_mode: bool) -> Bank:
    """The target bank; in check mode a missing one is not created but predicted as an empty bank."""
    if not check_mode:
        return open_bank(config)
    try:
        return open_bank(config, read_only=True)
    except BankMissingError as missing:
        if not config.get("create"):
            raise BankMissingError(missing.bank_description, missing.what) from None
        return _TargetToCreate(missing.bank_description)


def selection(wanted: list[str] | None) -> t.Callable[[BackupEntry], bool] | None:
    """Backups named (by name or id) in ``wanted``, or of a source volume named (by name or id) there."""
    if not wanted:
        return None
    names = set(wanted)

    def chosen(entry: BackupEntry) -> bool:
        volume = source_summary(entry.source)["source_volume"]
        return bool(names & {entry.backup_id, entry.backup_name, volume.get("id"), volume.get("name")})

    return chosen


def _volume_of(entry: BackupEntry) -> dict:
    volume = source_summary(entry.source)["source_volume"]
    return {"id": volume.get("id"), "name": volume.get("name")}


def _summary(entry: BackupEntry) -> dict:
    return {"id": entry.backup_id, "name": entry.backup_name, "created_at": entry.created_at, "source_volume": _volume_of(entry)}


def _newest(entries: list[BackupEntry]) -> BackupEntry | None:
    return max(entries, key=lambda entry: entry.created_at) if entries else None


def volume_lags(report: SyncReport) -> list[dict]:
    """Per source volume: the newest chosen backup in each bank and the seconds the target lags behind."""
    groups: dict[tuple, dict[str, list[BackupEntry]]] = {}
    for side, entries in (("source", report.selected), ("target", report.in_target)):
        for entry in entries:
            volume = _volume_of(entry)
            groups.setdefault((volume["id"] or "", volume["name"] or ""), {"source": [], "target": []})[side].append(entry)
    lags = []
    for group in groups.values():
        source_newest, target_newest = _newest(group["source"]), _newest(group["target"])
        lag = None
        if source_newest is not None and target_newest is not None:
            source_time, target_time = parse_utc(source_newest.created_at), parse_utc(target_newest.created_at)
            if source_time is not None and target_time is not None:
                lag = int(max(0.0, source_time - target_time))
        target_ids = {entry.backup_id for entry in group["target"]}
        lags.append({
            "source_volume": _volume_of((source_newest or target_newest)),
            "source_newest": _summary(source_newest) if source_newest else None,
            "target_newest": _summary(target_newest) if target_newest else None,
            "lag_seconds": lag,
            "in_sync": source_newest is None or source_newest.backup_id in target_ids,
        })
    return sorted(lags, key=lambda item: (item["source_volume"]["name"] or "", item["source_volume"]["id"] or ""))


def _damaged(failed: FailedBackup) -> dict:
    return dict(_summary(failed.entry), chunks=[{"chunk": bad.chunk, "error": bad.error} for bad in failed.chunks[:_LISTED_CHUNKS]])


def sync_result(report: SyncReport, source: BackupStore, target: BackupStore, follow_deletions: bool) -> dict:
    result = {
        "changed": report.changed,
        "source": source.bank.description,
        "target": target.bank.description,
        "bank_config": report.bank_config,
        "copied": [_summary(entry) for entry in report.copied],
        "damaged": [_damaged(failed) for failed in report.failed],
        "vanished": [dict(_summary(entry), reason=VANISHED) for entry in report.vanished],
        "counts": {
            "backups_selected": len(report.selected),
            "backups_present": len(report.present),
            "backups_copied": len(report.copied),
            "backups_failed": len(report.failed),
            "backups_deleted": len(report.deleted),
            "chunks_copied": report.chunks_copied,
            "chunks_skipped": report.chunks_skipped,
            "chunks_corrupt": len(report.bad_chunks),
            "bytes_copied": report.bytes_copied,
        },
        "volumes": volume_lags(report),
        "stats": {"seconds": round(report.seconds, 3),
                  "mib_per_second": round(report.bytes_copied / MIB / report.seconds, 1) if report.seconds > 0 else None},
    }
    if follow_deletions:
        # A deletion removes the backup's own objects; the chunks no other backup uses go in the prune.
        result["deleted"] = [{"id": plan.backup_id, "name": plan.backup_name, "objects": len(plan.objects), "bytes": plan.object_bytes}
                             for plan in report.deleted]
        result["protected"] = [{"id": plan.backup_id, "name": plan.backup_name, "protected_until": plan.protected_until}
                               for plan in report.protected]
        pruned = report.pruned
        result["pruned"] = {"objects": pruned.objects, "chunks": pruned.chunks, "progress_objects": pruned.progress_objects,
                            "bytes": pruned.object_bytes}
    return result
