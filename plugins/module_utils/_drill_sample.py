# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which backups a restore test by sample restores: the newest per volume, or a seeded random pick."""

from __future__ import annotations

import random
import typing as t

from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import InvalidInputError

STRATEGIES = ("newest", "random")


def _volume_key(backup: t.Mapping[str, t.Any]) -> str:
    source = backup.get("source_volume") or {}
    return str(source.get("id") or source.get("name") or backup.get("name"))


def sample_backups(backups: t.Iterable[t.Mapping[str, t.Any]], count: int, strategy: str = "newest",
                   seed: t.Any = None, volumes: t.Iterable[str] = (), exclude: t.Iterable[str] = ()) -> list[dict[str, t.Any]]:
    """Up to ``count`` complete backups (0: all candidates), each with ``newest_backup_created_at`` of its volume.

    ``newest``: the newest complete backup of each source volume, newest volumes first.
    ``random``: ``count`` complete backups of any age, drawn with ``random.Random(seed)`` from the
    candidates sorted by id, so the same seed and the same bank give the same sample.
    ``volumes`` restricts the candidates to these source volume names or ids; a backup whose name
    contains one of ``exclude`` (e.g. a drill's read-back backups) is never picked.
    """
    if strategy not in STRATEGIES:
        raise InvalidInputError(f"strategy must be one of {', '.join(STRATEGIES)}, not {strategy!r}")
    if int(count) < 0:
        raise InvalidInputError(f"count must be 0 or more, got {count}")
    wanted = set(volumes or ())
    excluded = [text for text in exclude or () if text]
    complete = [dict(backup) for backup in backups
                if backup.get("status") == "complete" and backup.get("id")
                and not any(text in str(backup.get("name")) for text in excluded)
                and (not wanted or wanted & {(backup.get("source_volume") or {}).get("id"), (backup.get("source_volume") or {}).get("name")})]
    newest: dict[str, dict[str, t.Any]] = {}
    for backup in complete:
        key = _volume_key(backup)
        if key not in newest or str(backup.get("created_at")) > str(newest[key].get("created_at")):
            newest[key] = backup
    if strategy == "newest":
        picked = sorted(newest.values(), key=lambda backup: (str(backup.get("created_at")), str(backup["id"])), reverse=True)
        picked = picked[:int(count)] if count else picked
    else:
        candidates = sorted(complete, key=lambda backup: str(backup["id"]))
        size = min(int(count), len(candidates)) if count else len(candidates)
        picked = random.Random(str(seed)).sample(candidates, size)
    return [dict(backup, newest_backup_created_at=newest[_volume_key(backup)].get("created_at")) for backup in picked]
