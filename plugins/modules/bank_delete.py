#!/usr/bin/python
# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: bank_delete
short_description: Delete a backup from a bank
version_added: 0.1.0
description:
  - Removes the backup's manifest first (so an interrupted deletion never leaves a backup that looks
    complete), then its in-progress object. That takes a few requests whatever the bank holds.
  - The backup's chunks stay until a prune (O(prune=true), in the same run or later), which reclaims those
    no other complete backup references. O(backups) deletes several backups, then prunes once.
  - Holds the bank exclusively while it works, and waits for running backups to finish first, so it
    never removes an object that a backup being written at that moment relies on.
  - With O(prune=true), also removes every chunk that no complete backup references (of deleted backups, or
    uploaded by a failed backup that was not resumed) and every in-progress object, in one pass over the
    bank whatever the number of deleted backups. A backup that failed can still be run again afterwards;
    it then uploads its chunks anew.
  - Needs no OpenStack cloud, only the bank.
author:
  - openstack_dr.bank contributors (@openstack-dr)
extends_documentation_fragment:
  - openstack_dr.bank._attributes
  - openstack_dr.bank._bank
attributes:
  check_mode:
    support: full
    details: Reports the objects and bytes that would be removed (deleted and pruned); with O(prune=true), the
      prediction counts the chunks only the deleted backups used, as the real run removes them.
  diff_mode:
    support: none
  idempotent:
    support: full
    details: A backup that is already gone, and a bank with nothing to prune, give RV(ignore:changed=false).
options:
  backup:
    description:
      - Name or id of the backup to delete.
      - Required unless O(backups) or O(prune=true) is given.
    type: str
  backups:
    description:
      - Names or ids of several backups to delete, one after the other (the results are in RV(backups)),
        before the prune when O(prune=true). The C(openstack_dr.bank.bank_retention) role deletes this way.
      - Mutually exclusive with O(backup).
    type: list
    elements: str
  lock_timeout:
    description:
      - Seconds to wait for running backups and deletions to finish before giving up with nothing removed,
        from V(0) to V(86400).
      - A lock left by a run whose process is gone from this host is broken at once; one from another host
        when its heartbeat (renewed every 30 s) has stood still for 2 minutes while this run waits, so
        a value below V(120) never breaks a foreign lock. A live run's lock is never broken.
    type: int
    default: 600
  prune:
    description:
      - Also remove every chunk no complete backup references (those of deleted backups, and the leftovers of
        backups that never completed) and every in-progress object; see the description.
      - Reads every manifest once, then lists the chunks once, deleting in batches. Its memory is 32 bytes per
        referenced chunk (about 90 MiB for 10 TiB of 4 MiB chunks). Interrupted, it has removed only
        unreferenced chunks, so every complete backup stays restorable; run it again to finish.
      - Waits for running backups, like a deletion; a manifest that cannot be read stops the prune with
        nothing removed.
      - In a versioned S3 bucket (every bank with O(bank.object_lock_days) is one) a delete only hides an object
        behind a delete marker. There the prune lists versions instead and removes every version of what it
        reclaims, the earlier versions of an object it keeps when they hold the same bytes (same ETag), and the
        delete markers nothing is left behind. It never tries to remove a version Object Lock still protects (one
        HEAD per candidate version); a prune after RV(pruned.locked_until) reclaims it.
      - An object a complete backup needs whose current version was replaced by different bytes, or hidden by a
        delete marker, keeps every version and is named in RV(pruned.suspect_keys), as someone may have tampered with
        the bank (restores read past such changes to the locked versions).
    type: bool
    default: false
seealso:
  - module: openstack_dr.bank.bank_backup_info
  - module: openstack_dr.bank.volume_glance_backup
"""

EXAMPLES = r"""
- name: Delete an old backup and reclaim its chunks
  openstack_dr.bank.bank_delete:
    backup: database-data-2026-10-01
    prune: true
    bank:
      type: file
      path: /srv/dr-bank

- name: Reclaim the chunks of backups deleted earlier, and what failed backups left behind
  openstack_dr.bank.bank_delete:
    prune: true
    bank: "{{ dr_bank }}"

- name: See what deleting a backup would free
  openstack_dr.bank.bank_delete:
    backup: database-data-2026-10-01
    bank: "{{ dr_bank }}"
  check_mode: true
  register: would_free
"""

RETURN = r"""
backup:
  description: Id and name of the backup (the name is null when the backup had no manifest).
  returned: when O(backup) is given
  type: dict
  sample: {"id": "0b7c3f3e-2a57-5d0e-9a43-5b0f8a6f4a11", "name": "database-data-2026-10-01"}
backups:
  description:
    - What deleting each of O(backups) removed, or would remove in check mode, in their order.
    - Each has the keys of RV(deleted) and the backup's RV(backups[].id) and RV(backups[].name) (null when it had no
      manifest).
  returned: when O(backups) is given
  type: list
  elements: dict
  contains:
    id:
      description: Id of the backup.
      type: str
    name:
      description: Name of the backup, null when it had no manifest.
      type: str
deleted:
  description: What deleting O(backup) removed, or would remove in check mode.
  returned: when O(backup) is given
  type: dict
  contains:
    objects:
      description: Number of bank objects.
      type: int
    chunks:
      description: Number of chunks the deletion itself removed; always V(0), a prune reclaims them.
      type: int
    chunks_referenced:
      description:
        - Number of distinct chunks the backup referenced. Those no other complete backup uses are removed by the
          next prune (RV(pruned.chunks) when O(prune=true)).
      type: int
    bytes:
      description: Bytes of those objects in the bank.
      type: int
    keys:
      description: The keys of those objects (the first 1000), manifest first.
      type: list
      elements: str
    protected_until:
      description:
        - In a bank with O(bank.object_lock_days), the date (UTC, C(YYYY-MM-DDTHH:MM:SSZ)) until which the backup's
          objects are locked, when that is still ahead. Such a backup is kept whole (nothing is tried, the task
          does not fail and does not count it as changed) and can be deleted after that date.
        - Null otherwise.
      type: str
pruned:
  description: What the prune removed, or would remove in check mode.
  returned: when O(prune=true)
  type: dict
  contains:
    objects:
      description: Number of bank objects.
      type: int
    chunks:
      description: Number of chunks no complete backup referenced.
      type: int
    referenced_chunks:
      description: Number of distinct chunks the complete backups left in the bank reference (all kept).
      type: int
    progress_objects:
      description: Number of in-progress objects of backups that never completed.
      type: int
    bytes:
      description: Bytes of those objects in the bank.
      type: int
    keys:
      description: The keys of those objects (the first 1000), chunks first; in a versioned bucket, in key order
        (a key appears once per version removed).
      type: list
      elements: str
    old_versions:
      description: In a versioned bucket, how many of RV(pruned.objects) were earlier versions or delete markers; 0 elsewhere.
      type: int
    locked_versions:
      description: In a bank with Object Lock, versions kept because their lock is still ahead; 0 elsewhere.
      type: int
    locked_until:
      description: The latest retain-until date (UTC) among RV(pruned.locked_versions); a prune after it reclaims them.
        Null when none was kept.
      type: str
    suspect_keys:
      description:
        - Keys (the first 1000) a complete backup or the bank needs whose current version differs from an earlier one or
          is hidden by a delete marker; all their versions were kept. Empty in an unversioned bank.
        - Compare the versions (C(aws s3api list-object-versions)); the backup's restore reads the locked version.
      type: list
      elements: str
"""

from ansible_collections.openstack_dr.bank.plugins.module_utils._bank.options import bank_argument_spec, bank_secrets
from ansible_collections.openstack_dr.bank.plugins.module_utils._bank_delete import run_bank_delete
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.locks import DEFAULT_LOCK_WAIT_TIMEOUT
from ansible_collections.openstack_dr.bank.plugins.module_utils._runner import run_module


def argument_spec() -> dict:
    return dict(
        bank_argument_spec(),
        backup=dict(type="str"),
        backups=dict(type="list", elements="str"),
        lock_timeout=dict(type="int", default=int(DEFAULT_LOCK_WAIT_TIMEOUT)),
        prune=dict(type="bool", default=False),
    )


def main() -> None:
    run_module(argument_spec(), run_bank_delete, secrets=bank_secrets, mutually_exclusive=[("backup", "backups")])


if __name__ == "__main__":
    main()
