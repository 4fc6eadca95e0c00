#!/usr/bin/python
# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: bank_backup_info
short_description: List and verify the backups in a bank
version_added: 0.1.0
description:
  - Lists the backups of a bank, newest first, including those still in progress with the bytes done
    so far and the time of their last update, so an operator can watch a long backup run with C(async).
  - Can verify backups; V(presence) checks every chunk exists, V(data) reads, decrypts and hashes every
    chunk (or a random share of them).
  - Verifying a backup with a RV(backups[].protected_until) date (a bank with O(bank.object_lock_days)) also checks
    that its manifest and every chunk it uses are locked at least until that date (one HEAD per object); an object
    whose current version is locked for less, or not at all, is listed in C(short_locks) and the backup is not C(ok).
  - Returns an empty list when nothing matches.
author:
  - openstack_dr.bank contributors (@openstack-dr)
extends_documentation_fragment:
  - openstack_dr.bank._attributes
  - openstack_dr.bank._bank
attributes:
  check_mode:
    support: full
    details: Reads only, in check mode too.
  diff_mode:
    support: none
  idempotent:
    support: full
options:
  backup:
    description:
      - Only the backup of this name or id.
    type: str
  source_volume:
    description:
      - Only backups of the volume of this id or name at the source site.
    type: str
  verify:
    description:
      - V(none) lists only; V(presence) checks every chunk of each complete backup exists; V(data) reads and checks them.
    type: str
    default: none
    choices: [none, presence, data]
  verify_percent:
    description:
      - With O(verify=data), the share of chunks to read, picked at random; above V(0) and at most V(100).
    type: float
    default: 100.0
seealso:
  - module: openstack_dr.bank.volume_glance_backup
  - module: openstack_dr.bank.bank_delete
"""

EXAMPLES = r"""
- name: List the backups of one volume
  openstack_dr.bank.bank_backup_info:
    source_volume: database-data
    bank: "{{ dr_bank }}"
  register: found

- name: Read back a tenth of the chunks of every backup
  openstack_dr.bank.bank_backup_info:
    verify: data
    verify_percent: 10
    bank: "{{ dr_bank }}"
    encryption_passphrase: "{{ vault_bank_passphrase }}"
"""

RETURN = r"""
backups:
  description: The backups, newest first.
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: Backup id.
      type: str
    name:
      description: Backup name.
      type: str
    status:
      description:
        - V(complete), V(in_progress), V(failed) (an interrupted backup that the next run resumes), or
          V(stalled) (in progress, but not updated for 15 minutes, or at once when its process is gone from
          this host, so its run was killed or hangs; the next run resumes it, and
          M(openstack_dr.bank.bank_delete) with O(openstack_dr.bank.bank_delete#module:prune=true)
          removes what it left).
      type: str
    description:
      description: Description given at backup time.
      type: str
    created_at:
      description: When the backup started, UTC.
      type: str
    completed_at:
      description: When it completed, UTC; null while in progress.
      type: str
    protected_until:
      description:
        - In a bank with O(bank.object_lock_days) (S3 Object Lock), the date until which every object of the backup
          is locked (UTC); null in other banks and while in progress.
      type: str
    stored_bytes:
      description: Bytes the backup wrote into the bank when it was made; null while in progress.
      type: int
    updated_at:
      description: Last update of the backup, UTC.
      type: str
    size:
      description: Size of the volume image in bytes (null when not yet known).
      type: int
    bytes_done:
      description: Bytes read so far.
      type: int
    bytes_total:
      description: Bytes to read in all.
      type: int
    source_volume:
      description: Id, name, size, volume type, bootable flag and availability zone of the source volume.
      type: dict
    source_cloud:
      description: Cloud and region of the source volume.
      type: dict
    hashes:
      description: Whole-image hashes of a complete backup.
      type: dict
    stats:
      description: Figures of the run that made the backup.
      type: dict
    error:
      description: Why a failed backup failed.
      type: str
      returned: when failed
    verification:
      description:
        - With O(verify), the result; C(ok), C(chunks), C(checked_chunks), C(missing_chunks), C(damaged_chunks).
        - For a backup with RV(backups[].protected_until), also C(checked_locks) (objects whose lock was read) and
          C(short_locks), a list of C(key) and C(locked_until) (null when not locked) of those locked for less.
      type: dict
      returned: when verified
"""

from ansible_collections.openstack_dr.bank.plugins.module_utils._bank.options import bank_argument_spec, bank_secrets
from ansible_collections.openstack_dr.bank.plugins.module_utils._bank_backup_info import run_bank_backup_info
from ansible_collections.openstack_dr.bank.plugins.module_utils._runner import run_module


def argument_spec() -> dict:
    return dict(
        bank_argument_spec(),
        backup=dict(type="str"),
        source_volume=dict(type="str"),
        verify=dict(type="str", default="none", choices=["none", "presence", "data"]),
        verify_percent=dict(type="float", default=100.0),
    )


def main() -> None:
    run_module(argument_spec(), run_bank_backup_info, secrets=bank_secrets)


if __name__ == "__main__":
    main()
